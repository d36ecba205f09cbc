//! Sending one HTTP request: the `HttpClient` trait the registry logic speaks to, and its one
//! implementation, curl, so that HTTPS, proxies and CA certificates work as elsewhere on the
//! machine. Another backend is one more type implementing the trait.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::sys::docker::Secret;
use crate::sys::process::{self, Io};
use crate::sys::registry::Credentials;

/// Sends a request and returns the answer, or why there was none.
pub trait HttpClient: Send + Sync {
    fn send(&self, request: &Request<'_>) -> Result<Response, HttpError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
}

/// How a request proves who sends it.
#[derive(Clone, Copy)]
pub enum Authorization<'a> {
    Bearer(&'a Secret),
    Stored(&'a Credentials),
}

pub struct Request<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, &'a str)>,
    /// URL-encoded into the query string.
    pub query: Vec<(&'static str, String)>,
    pub body: Option<&'a str>,
    pub authorization: Option<Authorization<'a>>,
    /// False for TLS without certificate verification (an insecure registry).
    pub verify_tls: bool,
}

impl<'a> Request<'a> {
    pub fn get(url: String) -> Request<'a> {
        Request {
            method: Method::Get,
            url,
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            authorization: None,
            verify_tls: true,
        }
    }
}

/// An HTTP answer: its status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The status line after the protocol: `404 Not Found`.
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer, each with the client's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Worth another try: the name did not resolve, the connection failed, timed out or broke
    /// off.
    Transient(String),
    /// The TLS handshake failed (also worth another try); `plain_http` when the server spoke
    /// plain HTTP instead.
    TlsHandshake { said: String, plain_http: bool },
    /// Another try would fail alike (a certificate that cannot be verified, ...).
    Failed(String),
    /// The client did not run, or what came back is not HTTP.
    Broken(String),
}

/// Asks through the curl program, with a time limit on each request.
pub struct Curl {
    timeout: Duration,
}

const INSTALL_CURL: &str = "Install curl (Debian: apt-get install curl); it asks the registry what it holds";

/// curl's exit codes (`man curl`, EXIT CODES) for failures worth another try.
const COULDNT_RESOLVE_HOST: i32 = 6;
const COULDNT_CONNECT: i32 = 7;
const OPERATION_TIMEDOUT: i32 = 28;
const SSL_CONNECT_ERROR: i32 = 35;
const GOT_NOTHING: i32 = 52;
const SEND_ERROR: i32 = 55;
const RECV_ERROR: i32 = 56;

impl Curl {
    pub fn new(timeout: Duration) -> Curl {
        Curl { timeout }
    }

    fn args(&self, request: &Request<'_>, body: Option<&Path>) -> Vec<String> {
        let secs = self.timeout.as_secs().max(1).to_string();
        let mut args: Vec<String> =
            ["--silent", "--show-error", "--include", "--max-time", &secs, "--config", "-"]
                .map(String::from)
                .to_vec();
        match request.method {
            // `--data-urlencode` alone would make it a POST.
            Method::Get if !request.query.is_empty() => args.push("--get".into()),
            Method::Get => {}
            Method::Put => args.extend(["--request".into(), "PUT".into()]),
        }
        for (name, value) in &request.headers {
            args.extend(["--header".into(), format!("{name}: {value}")]);
        }
        for (name, value) in &request.query {
            args.extend(["--data-urlencode".into(), format!("{name}={value}")]);
        }
        if let Some(body) = body {
            args.extend(["--data-binary".into(), format!("@{}", body.display())]);
        }
        if !request.verify_tls {
            args.push("--insecure".into());
        }
        args.push(request.url.clone());
        args
    }
}

impl HttpClient for Curl {
    /// Secrets reach curl only on stdin, as curl configuration; so the body goes in a file.
    fn send(&self, request: &Request<'_>) -> Result<Response, HttpError> {
        let body =
            request.body.map(tempfile_with).transpose().map_err(|e| HttpError::Broken(format!("{e:#}")))?;
        let args = self.args(request, body.as_ref().map(|file| file.0.as_path()));
        let config = request.authorization.map(curl_config).unwrap_or_default();
        // curl's own --max-time ends it first; the supervisor's limit is a backstop.
        let backstop = self.timeout + Duration::from_secs(5);
        let out = process::run("curl", &args, Io::Capture(Some(config.as_bytes())), backstop, INSTALL_CURL)
            .map_err(|e| HttpError::Broken(format!("{e:#}")))?;
        if out.timed_out.is_some() || !out.success {
            let said = match out.timed_out {
                Some(limit) => format!("curl did not finish within {}s", limit.as_secs()),
                None => out.error_line().to_string(),
            };
            return Err(failure(out.code, said));
        }
        parse_response(&out.stdout)
            .ok_or_else(|| HttpError::Broken(format!("{} gave an answer that is not HTTP", request.url)))
    }
}

/// What curl's exit code says of a failure; `said` is its message (`curl: (7) Failed to
/// connect ...`).
fn failure(code: Option<i32>, said: String) -> HttpError {
    match code {
        // curl has no exit code of its own for a plain-HTTP answer on a TLS port: OpenSSL's
        // "wrong version number" is the only sign of it.
        Some(SSL_CONNECT_ERROR) => {
            HttpError::TlsHandshake { plain_http: said.contains("wrong version number"), said }
        }
        // No exit code (stopped at its time limit), or no answer this time.
        None
        | Some(
            COULDNT_RESOLVE_HOST | COULDNT_CONNECT | OPERATION_TIMEDOUT | GOT_NOTHING | SEND_ERROR
            | RECV_ERROR,
        ) => HttpError::Transient(said),
        Some(_) => HttpError::Failed(said),
    }
}

/// The curl configuration that sends `authorization`.
fn curl_config(authorization: Authorization<'_>) -> String {
    match authorization {
        Authorization::Bearer(token) => {
            config_line("header", &format!("Authorization: Bearer {}", token.expose()))
        }
        Authorization::Stored(Credentials::Basic(auth)) => {
            config_line("header", &format!("Authorization: Basic {}", auth.expose()))
        }
        Authorization::Stored(Credentials::Password { user, secret }) => {
            config_line("user", &format!("{user}:{}", secret.expose()))
        }
    }
}

/// A curl configuration line (`header = "..."`), quoted as curl reads it.
fn config_line(option: &str, value: &str) -> String {
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"").replace(['\n', '\r'], "");
    format!("{option} = \"{quoted}\"\n")
}

/// A file holding `text`, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_with(text: &str) -> anyhow::Result<TempFile> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("xtask-manifest-{}-{n}.json", std::process::id()));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(TempFile(path))
}

/// The last header block of `curl --include` output (a proxy's CONNECT answer or a `100
/// Continue` come first) and the body after it.
pub fn parse_response(raw: &str) -> Option<Response> {
    let mut rest = raw;
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").or_else(|| rest.split_once("\n\n"))?;
        if body.starts_with("HTTP/") {
            rest = body;
            continue;
        }
        let mut lines = head.lines();
        let status_line = lines.next()?.trim().to_string();
        if !status_line.starts_with("HTTP/") {
            return None;
        }
        let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let status_line = status_line.split_once(' ').map_or(status_line.clone(), |(_, s)| s.to_string());
        return Some(Response { status, status_line, headers, body: body.to_string() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_header_block_counts() {
        let r = parse_response(
            "HTTP/1.1 200 Connection established\r\n\r\nHTTP/2 404 \r\nx: y\r\n\r\n{\"errors\":[]}",
        )
        .expect("an HTTP answer");
        assert_eq!((r.status, r.header("X")), (404, Some("y")));
        assert_eq!(r.body, "{\"errors\":[]}");
        assert!(parse_response("garbage").is_none());
    }

    #[test]
    fn config_lines_quote_what_curl_would_misread() {
        assert_eq!(config_line("user", "u:p\"a\\ss"), "user = \"u:p\\\"a\\\\ss\"\n");
        assert_eq!(config_line("header", "A: b\nc"), "header = \"A: bc\"\n");
    }

    #[test]
    fn failures_are_told_apart_by_curls_exit_code() {
        let plain = "curl: (35) error:0A00010B:SSL routines::wrong version number";
        assert_eq!(
            failure(Some(35), plain.into()),
            HttpError::TlsHandshake { said: plain.into(), plain_http: true }
        );
        let other = "curl: (35) OpenSSL SSL_connect: Connection reset by peer";
        assert_eq!(
            failure(Some(35), other.into()),
            HttpError::TlsHandshake { said: other.into(), plain_http: false }
        );
        // The words count only with exit code 35.
        assert!(matches!(failure(Some(56), plain.into()), HttpError::Transient(_)));
        for code in [None, Some(6), Some(7), Some(28), Some(52), Some(55), Some(56)] {
            assert!(matches!(failure(code, "curl: (35)".into()), HttpError::Transient(_)), "{code:?}");
        }
        for code in [3, 22, 60] {
            assert!(matches!(failure(Some(code), "x".into()), HttpError::Failed(_)), "{code}");
        }
    }

    #[test]
    fn curl_arguments_follow_the_request() {
        let curl = Curl::new(Duration::from_secs(30));
        let mut token = Request::get("https://t/token".into());
        token.query = vec![("service", "reg".into()), ("scope", "repository:x:pull".into())];
        assert_eq!(
            curl.args(&token, None)[7..],
            [
                "--get",
                "--data-urlencode",
                "service=reg",
                "--data-urlencode",
                "scope=repository:x:pull",
                "https://t/token"
            ]
        );
        let put = Request {
            method: Method::Put,
            headers: vec![("Content-Type", "application/x")],
            body: Some("{}"),
            verify_tls: false,
            ..Request::get("https://r/v2/x/manifests/t".into())
        };
        assert_eq!(
            curl.args(&put, Some(Path::new("/nonexistent/m.json"))),
            [
                "--silent",
                "--show-error",
                "--include",
                "--max-time",
                "30",
                "--config",
                "-",
                "--request",
                "PUT",
                "--header",
                "Content-Type: application/x",
                "--data-binary",
                "@/nonexistent/m.json",
                "--insecure",
                "https://r/v2/x/manifests/t"
            ]
        );
    }
}
