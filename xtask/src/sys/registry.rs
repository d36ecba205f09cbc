//! The registry's own word on what it holds: whether a tag exists and which digest it holds,
//! read from the OCI distribution API's status codes, error codes and Docker-Content-Digest
//! header, never guessed from a CLI's text (`docker manifest inspect` reports "no such
//! manifest" for a 401 or a TLS failure as well as for a missing tag).
//!
//! Asked through curl, so HTTPS, proxies and CA certificates work as elsewhere on the machine;
//! with the credentials the container CLI stored at login (config files and credential
//! helpers); over plain HTTP exactly where the engine would use it (`Docker::transport`). A
//! secret reaches curl only on stdin, as curl configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::sys::docker::{Client, Docker, Secret};
use crate::sys::env::Env;
use crate::sys::gha::Log;
use crate::sys::process::{self, sleep_unless_interrupted, Io};
use crate::sys::retry::{self, Backoff};

/// How the engine reaches a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tls,
    /// The engine's settings call it insecure: TLS without verification, then plain HTTP.
    Insecure,
}

/// What a registry holds under a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// The manifest's digest (Docker-Content-Digest) and, for an image manifest, its config's
    /// digest, which is the image id the engine gave the image it built; and the manifest itself
    /// (its media type and bytes), which another tag can be given as it is.
    Present { digest: String, config: Option<String>, manifest: Manifest },
    /// 404 with MANIFEST_UNKNOWN or NAME_UNKNOWN: the registry says it has no such tag.
    Absent,
}

/// A manifest as the registry serves it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub media_type: String,
    pub body: String,
}

/// Why a question got no "present" or "absent": never to be read as either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// 401: no credentials are stored for the host, or it refused them.
    Unauthorized { stored: bool, said: String },
    /// 403: the credentials may not read the repository.
    Denied(String),
    /// No answer, or a failure worth retrying (timeouts, 429, 5xx) that outlasted the retries.
    Unreachable(String),
    /// An answer that means neither (a 404 without a registry error code, a 400, ...).
    Unexpected(String),
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unanswered::Unauthorized { said, .. }
            | Unanswered::Denied(said)
            | Unanswered::Unreachable(said)
            | Unanswered::Unexpected(said) => f.write_str(said),
        }
    }
}

impl std::error::Error for Unanswered {}

/// Credentials as the CLI stored them.
pub enum Credentials {
    /// The `auth` field of a config file: base64 of `user:password`, used as it is.
    Basic(Secret),
    /// A user and secret from a credential helper.
    Password { user: String, secret: Secret },
}

impl Credentials {
    /// The curl configuration that sends them.
    fn config(&self) -> String {
        match self {
            Credentials::Basic(auth) => {
                config_line("header", &format!("Authorization: Basic {}", auth.expose()))
            }
            Credentials::Password { user, secret } => {
                config_line("user", &format!("{user}:{}", secret.expose()))
            }
        }
    }
}

fn bearer(token: &Secret) -> String {
    config_line("header", &format!("Authorization: Bearer {}", token.expose()))
}

/// A connection to one registry host for the length of a run.
pub struct Registry {
    host: String,
    transport: Transport,
    credentials: Option<Credentials>,
    timeout: Duration,
    backoff: Backoff,
    log: Log,
    /// The scheme that answered (an insecure registry may speak either).
    scheme: Mutex<Option<&'static str>>,
    /// Bearer tokens by repository, once the registry's token service gave one.
    tokens: Mutex<BTreeMap<String, Secret>>,
}

const INSTALL_CURL: &str = "Install curl (Debian: apt-get install curl); it asks the registry what it holds";
/// Every manifest type, image indexes included: distribution answers MANIFEST_UNKNOWN ("OCI
/// manifest found, but accept header does not support OCI manifests") for a tag that exists
/// when its type is left out, as podman's pushes are OCI.
const ACCEPT: &str = "Accept: application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

impl Registry {
    /// The registry behind `registry` (`host[/namespace]`) as `docker` reaches it, with the
    /// credentials it stored.
    pub fn connect(docker: &Docker, env: &Env, registry: &str, log: Log) -> anyhow::Result<Registry> {
        let host = crate::model::oci::registry_host(registry);
        let transport = docker.transport(registry)?;
        let credentials = stored_credentials(docker.client()?, env, host, docker.timeouts.command)?;
        Ok(Registry {
            host: host.to_string(),
            transport,
            credentials,
            timeout: docker.timeouts.command,
            backoff: docker.backoff,
            log,
            scheme: Mutex::new(None),
            tokens: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// What the registry holds under `repository:tag`, retrying transient failures.
    pub fn tag(&self, repository: &str, tag: &str) -> Result<Tag, Unanswered> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        self.retrying("GET", &path, || {
            let response = self.send(repository, &Request::Get, &path)?;
            judge(&self.host, &format!("GET {path}"), &response, self.credentials.is_some())
        })
    }

    /// Gives `tag` the manifest another tag of `repository` holds, as it is (same bytes, same
    /// digest), the way `crane tag` does: no layer is sent again. Returns the digest the
    /// registry answers with.
    pub fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> Result<String, Unanswered> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        let body = tempfile_with(&manifest.body).map_err(|e| Unanswered::Unexpected(format!("{e:#}")))?;
        let request = Request::Put { content_type: &manifest.media_type, body: &body.0 };
        self.retrying("PUT", &path, || {
            let response = self.send(repository, &request, &path)?;
            match response.status {
                200 | 201 => response.header("docker-content-digest").map(String::from).ok_or_else(|| {
                    Attempt::Final(Unanswered::Unexpected(format!(
                        "{} took PUT {path} but named no digest",
                        self.host
                    )))
                }),
                _ => Err(judge(&self.host, &format!("PUT {path}"), &response, self.credentials.is_some())
                    .err()
                    .unwrap_or_else(|| {
                        Attempt::Final(Unanswered::Unexpected(format!(
                            "PUT {path}: {}",
                            response.status_line
                        )))
                    })),
            }
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are used up, logging
    /// each retry.
    fn retrying<T>(
        &self,
        method: &str,
        path: &str,
        mut attempt: impl FnMut() -> Result<T, Attempt>,
    ) -> Result<T, Unanswered> {
        let mut retries = 0;
        loop {
            let failure = match attempt() {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Final(why)) => return Err(why),
                Err(Attempt::Transient(said)) => said,
            };
            if retries == self.backoff.retries {
                let after = retry::after_retries(retries);
                return Err(Unanswered::Unreachable(format!(
                    "{method} {path} on {}{after}: {failure}",
                    self.host
                )));
            }
            retries += 1;
            let wait = self.backoff.delay(retries, retry::jitter());
            self.log.warning(&format!(
                "registry {}: {method} {path} failed ({failure}); retry {retries} of {} in {:.1}s",
                self.host,
                self.backoff.retries,
                wait.as_secs_f64()
            ));
            if sleep_unless_interrupted(wait).is_err() {
                return Err(Unanswered::Unreachable("interrupted by a signal".into()));
            }
        }
    }

    /// One request, with the authentication the registry asks for. Tokens are kept by scope:
    /// one that may pull is asked for again when a push needs more.
    fn send(&self, repository: &str, request: &Request<'_>, path: &str) -> Result<Response, Attempt> {
        let scope = |c: &Challenge| {
            c.params.get("scope").cloned().unwrap_or_else(|| format!("repository:{repository}:pull"))
        };
        let cached = self.tokens.lock().unwrap().get(&request.scope(repository)).map(bearer);
        let mut response = self.on_registry(request, path, cached.as_deref().unwrap_or_default())?;
        if response.status == 401 {
            let authorization = match response.header("www-authenticate").and_then(parse_challenge) {
                Some(c) if c.scheme.eq_ignore_ascii_case("bearer") => {
                    let token = self.token(&c, repository)?;
                    let config = bearer(&token);
                    self.tokens.lock().unwrap().insert(scope(&c), token);
                    Some(config)
                }
                Some(c) if c.scheme.eq_ignore_ascii_case("basic") => {
                    self.credentials.as_ref().map(Credentials::config)
                }
                _ => None,
            };
            if let Some(config) = authorization {
                response = self.on_registry(request, path, &config)?;
            }
        }
        Ok(response)
    }

    /// A token from the registry's token service, for the scope the challenge names (pulling
    /// `repository` when it names none).
    fn token(&self, challenge: &Challenge, repository: &str) -> Result<Secret, Attempt> {
        let Some(realm) = challenge.params.get("realm") else {
            return Err(Attempt::Final(Unanswered::Unexpected(format!(
                "{} asked for a bearer token without naming its token service",
                self.host
            ))));
        };
        let mut args = vec!["--get".to_string()];
        if let Some(service) = challenge.params.get("service") {
            args.extend(["--data-urlencode".into(), format!("service={service}")]);
        }
        let scope =
            challenge.params.get("scope").cloned().unwrap_or_else(|| format!("repository:{repository}:pull"));
        args.extend(["--data-urlencode".into(), format!("scope={scope}")]);
        let config = self.credentials.as_ref().map(Credentials::config).unwrap_or_default();
        let response = self.curl(&args, realm, &config)?;
        match response.status {
            200 => {}
            401 | 403 => {
                let said = format!("the token service {realm} answered {}", response.status_line);
                return Err(Attempt::Final(Unanswered::Unauthorized {
                    stored: self.credentials.is_some(),
                    said,
                }));
            }
            429 | 500..=599 => {
                return Err(Attempt::Transient(format!("token service: {}", response.status_line)))
            }
            _ => {
                return Err(Attempt::Final(Unanswered::Unexpected(format!(
                    "the token service {realm} answered {}",
                    response.status_line
                ))))
            }
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: Option<TokenAnswer> = serde_json::from_str(&response.body).ok();
        match answer.and_then(|a| a.token.or(a.access_token)) {
            Some(token) => Ok(Secret::new(token)),
            None => Err(Attempt::Final(Unanswered::Unexpected(format!(
                "the token service {realm} answered without a token"
            )))),
        }
    }

    /// Sends `request` for `path` to the registry, over the scheme the engine would use.
    fn on_registry(&self, request: &Request<'_>, path: &str, config: &str) -> Result<Response, Attempt> {
        let known = *self.scheme.lock().unwrap();
        let schemes: Vec<&'static str> = match (known, self.transport) {
            (Some(scheme), _) => vec![scheme],
            (None, Transport::Tls) => vec!["https"],
            (None, Transport::Insecure) => vec!["https", "http"],
        };
        let mut last = None;
        for scheme in schemes {
            let mut args = request.curl_args();
            if scheme == "https" && self.transport == Transport::Insecure {
                args.push("--insecure".into());
            }
            match self.curl(&args, &format!("{scheme}://{}{path}", self.host), config) {
                Ok(response) => {
                    *self.scheme.lock().unwrap() = Some(scheme);
                    return Ok(response);
                }
                // Plain HTTP where TLS was tried: curl's "SSL connect error". The engine falls
                // back to HTTP for an insecure registry; so do we.
                Err(Attempt::Transient(said)) if said.contains("(35)") => {
                    last = Some(Attempt::Transient(said))
                }
                Err(other) => return Err(other),
            }
        }
        // A registry that answers TLS in plain HTTP is not down: the engine's settings do not
        // call it insecure, so it is asked (and would be pushed to) over TLS.
        match last {
            Some(Attempt::Transient(said)) if self.transport == Transport::Tls && said.contains("wrong version number") => {
                Err(Attempt::Final(Unanswered::Unreachable(format!(
                    "{said}; {} answers in plain HTTP, and the engine's settings do not call it insecure: \
                     for a plain-HTTP registry add it to docker's \"insecure-registries\" (daemon.json) or to \
                     podman's registries.conf with `insecure = true`",
                    self.host
                ))))
            }
            last => Err(last.unwrap_or_else(|| Attempt::Transient("no scheme to try".into()))),
        }
    }

    /// Runs curl; secrets go in `config`, which reaches curl on stdin.
    fn curl(&self, args: &[String], url: &str, config: &str) -> Result<Response, Attempt> {
        let secs = self.timeout.as_secs().max(1).to_string();
        let mut full: Vec<String> =
            ["--silent", "--show-error", "--include", "--max-time", &secs, "--config", "-"]
                .map(String::from)
                .to_vec();
        full.extend(args.iter().cloned());
        full.push(url.to_string());
        // curl's own --max-time ends it first; the supervisor's limit is a backstop.
        let backstop = self.timeout + Duration::from_secs(5);
        let out = process::run("curl", &full, Io::Capture(Some(config.as_bytes())), backstop, INSTALL_CURL)
            .map_err(|e| Attempt::Final(Unanswered::Unexpected(format!("{e:#}"))))?;
        if out.timed_out.is_some() || !out.success {
            // curl says `curl: (7) Failed to connect ...`; its exit code classifies it.
            let said = match out.timed_out {
                Some(limit) => format!("curl did not finish within {}s", limit.as_secs()),
                None => out.error_line().to_string(),
            };
            return match out.code {
                // Resolve, connect, TLS handshake, time limit, empty or broken answers.
                None | Some(6 | 7 | 28 | 35 | 52 | 55 | 56) => Err(Attempt::Transient(said)),
                Some(_) => Err(Attempt::Final(Unanswered::Unreachable(said))),
            };
        }
        parse_response(&out.stdout).ok_or_else(|| {
            Attempt::Final(Unanswered::Unexpected(format!("{url} gave an answer that is not HTTP")))
        })
    }
}

/// What is sent to the registry.
enum Request<'a> {
    Get,
    /// A manifest, from a file (stdin carries curl's configuration).
    Put {
        content_type: &'a str,
        body: &'a std::path::Path,
    },
}

impl Request<'_> {
    fn curl_args(&self) -> Vec<String> {
        match self {
            Request::Get => vec!["--header".to_string(), ACCEPT.to_string()],
            Request::Put { content_type, body } => vec![
                "--request".into(),
                "PUT".into(),
                "--header".into(),
                format!("Content-Type: {content_type}"),
                "--data-binary".into(),
                format!("@{}", body.display()),
            ],
        }
    }

    /// The token scope a request needs (the key of the kept tokens).
    fn scope(&self, repository: &str) -> String {
        match self {
            Request::Get => format!("repository:{repository}:pull"),
            Request::Put { .. } => format!("repository:{repository}:pull,push"),
        }
    }
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

/// One question's outcome before retries.
enum Attempt {
    Transient(String),
    Final(Unanswered),
}

impl From<Unanswered> for Attempt {
    fn from(u: Unanswered) -> Attempt {
        Attempt::Final(u)
    }
}

/// Reads the answer to a manifest `request` (`GET /v2/<name>/manifests/<tag>`, or a PUT). Pure.
fn judge(host: &str, request: &str, response: &Response, stored: bool) -> Result<Tag, Attempt> {
    let codes = error_codes(&response.body);
    let said = || {
        let codes = if codes.is_empty() { String::new() } else { format!(" {}", codes.join(", ")) };
        format!("{host} answered {request} with {}{codes}", response.status_line)
    };
    match response.status {
        200 => {
            let Some(digest) = response.header("docker-content-digest") else {
                return Err(Unanswered::Unexpected(format!(
                    "{} but no Docker-Content-Digest header",
                    said()
                ))
                .into());
            };
            #[derive(Deserialize)]
            struct ImageManifest {
                config: Option<Descriptor>,
            }
            #[derive(Deserialize)]
            struct Descriptor {
                digest: String,
            }
            let config = serde_json::from_str::<ImageManifest>(&response.body)
                .ok()
                .and_then(|m| m.config)
                .map(|c| c.digest);
            let manifest = Manifest {
                media_type: response.header("content-type").unwrap_or_default().to_string(),
                body: response.body.clone(),
            };
            Ok(Tag::Present { digest: digest.to_string(), config, manifest })
        }
        404 if codes.iter().any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN") => Ok(Tag::Absent),
        401 => Err(Unanswered::Unauthorized { stored, said: said() }.into()),
        403 => Err(Unanswered::Denied(said()).into()),
        429 | 500..=599 => Err(Attempt::Transient(said())),
        _ => Err(Unanswered::Unexpected(said()).into()),
    }
}

/// The `code`s of a distribution error body: `{"errors":[{"code":"MANIFEST_UNKNOWN",...}]}`.
fn error_codes(body: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<Code>,
    }
    #[derive(Deserialize)]
    struct Code {
        code: String,
    }
    serde_json::from_str::<Errors>(body)
        .map(|e| e.errors.into_iter().map(|c| c.code).collect())
        .unwrap_or_default()
}

/// An HTTP answer as `curl --include` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The last header block of `curl --include` output (a proxy's CONNECT answer or a `100
/// Continue` come first) and the body after it.
fn parse_response(raw: &str) -> Option<Response> {
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

/// An authentication challenge: `Bearer realm="https://ghcr.io/token",service="ghcr.io"`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: BTreeMap<String, String>,
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, mut rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else { break };
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => {
                // A quoted string ends at the first quote that is not escaped.
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        params.insert(key.trim().to_ascii_lowercase(), value);
        rest = remainder;
    }
    (!scheme.is_empty()).then(|| Challenge { scheme: scheme.to_string(), params })
}

/// A curl configuration line (`header = "..."`), quoted as curl reads it.
fn config_line(option: &str, value: &str) -> String {
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"").replace(['\n', '\r'], "");
    format!("{option} = \"{quoted}\"\n")
}

/// The credentials the CLI stored for `host`: docker's config.json (credential helpers
/// included), or for podman its auth.json files and then docker's.
fn stored_credentials(
    client: Client,
    env: &Env,
    host: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Credentials>> {
    let home = env.get("HOME").map(PathBuf::from);
    let docker_config = env
        .get("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"));
    let mut files = Vec::new();
    if client == Client::Podman {
        files.extend(env.get("REGISTRY_AUTH_FILE").map(PathBuf::from));
        files.extend(env.get("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("containers/auth.json")));
        // Where podman run by root keeps them.
        files.push(PathBuf::from("/run/containers/0/auth.json"));
        files.extend(home.as_ref().map(|h| h.join(".config/containers/auth.json")));
    }
    files.extend(docker_config);
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the stored credentials in {}", file.display()))
            }
        };
        let config: ConfigFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not the JSON a container CLI writes", file.display()))?;
        if let Some(found) = config.credentials_for(host, timeout)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
}

impl ConfigFile {
    fn credentials_for(&self, host: &str, timeout: Duration) -> anyhow::Result<Option<Credentials>> {
        if let Some(helper) = self.cred_helpers.get(host) {
            return helper_credentials(helper, host, timeout);
        }
        let Some((_, entry)) = self.auths.iter().find(|(key, _)| auth_key_host(key) == host) else {
            return Ok(None);
        };
        match (&entry.auth, &self.creds_store) {
            (Some(auth), _) if !auth.is_empty() => Ok(Some(Credentials::Basic(Secret::new(auth.clone())))),
            // With a credential store, `auths` only lists the hosts it holds secrets for.
            (_, Some(store)) => helper_credentials(store, host, timeout),
            _ => Ok(None),
        }
    }
}

/// The host of an `auths` key: `127.0.0.1:5000`, `https://ghcr.io`, `https://index.docker.io/v1/`,
/// or podman's `registry.example/namespace`.
fn auth_key_host(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    }
}

/// Asks `docker-credential-<helper> get` for `host`'s credentials.
fn helper_credentials(helper: &str, host: &str, timeout: Duration) -> anyhow::Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let hint = format!("the docker config names the credential helper `{helper}`: install {program}");
    let out =
        process::run(&program, &["get".to_string()], Io::Capture(Some(host.as_bytes())), timeout, &hint)?;
    if !out.success {
        // "credentials not found in native keychain": nothing stored for this host.
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_str(&out.stdout)
        .with_context(|| format!("{program} get answered with something other than credentials"))?;
    // `<token>` marks an identity token, which only docker's own token exchange can use.
    if answer.username == "<token>" || answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::Password { user: answer.username, secret: Secret::new(answer.secret) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(raw: &str) -> Response {
        parse_response(raw).expect("an HTTP answer")
    }

    #[test]
    fn answers_are_read_from_status_codes_and_error_codes() {
        let found = response(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: sha256:beda\r\n\r\n\
             {\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:6bf5\",\"size\":734},\"layers\":[]}",
        );
        assert_eq!(
            judge("r", "GET /v2/x/manifests/t", &found, false).ok(),
            Some(Tag::Present {
                digest: "sha256:beda".into(),
                config: Some("sha256:6bf5".into()),
                manifest: Manifest {
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    body: "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:6bf5\",\"size\":734},\"layers\":[]}".into(),
                },
            })
        );
        let index = response("HTTP/2 200 \r\ndocker-content-digest: sha256:1d\r\n\r\n{\"manifests\":[]}");
        assert_eq!(
            judge("r", "GET /p", &index, false).ok(),
            Some(Tag::Present {
                digest: "sha256:1d".into(),
                config: None,
                manifest: Manifest { media_type: String::new(), body: "{\"manifests\":[]}".into() },
            })
        );
        for code in ["MANIFEST_UNKNOWN", "NAME_UNKNOWN"] {
            let missing = response(&format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"m\"}}]}}"
            ));
            assert_eq!(judge("r", "GET /p", &missing, false).ok(), Some(Tag::Absent), "{code}");
        }
        // Anything else is "could not tell", never "absent".
        let cases = [
            ("HTTP/1.1 404 Not Found\r\n\r\n<html>nginx</html>", "unexpected"),
            ("HTTP/1.1 401 Unauthorized\r\n\r\n{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}", "unauthorized"),
            ("HTTP/1.1 403 Forbidden\r\n\r\n{\"errors\":[{\"code\":\"DENIED\"}]}", "denied"),
            (
                "HTTP/1.1 429 Too Many Requests\r\n\r\n{\"errors\":[{\"code\":\"TOOMANYREQUESTS\"}]}",
                "transient",
            ),
            ("HTTP/1.1 503 Service Unavailable\r\n\r\n", "transient"),
            ("HTTP/1.1 400 Bad Request\r\n\r\n", "unexpected"),
            ("HTTP/1.1 200 OK\r\n\r\n{}", "unexpected"),
        ];
        for (raw, expected) in cases {
            let kind = match judge("r", "GET /v2/x/manifests/v1.0.0_1429.1", &response(raw), true) {
                Ok(tag) => format!("{tag:?}"),
                Err(Attempt::Transient(_)) => "transient".into(),
                Err(Attempt::Final(Unanswered::Unauthorized { .. })) => "unauthorized".into(),
                Err(Attempt::Final(Unanswered::Denied(_))) => "denied".into(),
                Err(Attempt::Final(Unanswered::Unexpected(_))) => "unexpected".into(),
                Err(Attempt::Final(Unanswered::Unreachable(_))) => "unreachable".into(),
            };
            assert_eq!(kind, expected, "{raw}");
        }
    }

    #[test]
    fn the_last_header_block_counts() {
        let r =
            response("HTTP/1.1 200 Connection established\r\n\r\nHTTP/2 404 \r\nx: y\r\n\r\n{\"errors\":[]}");
        assert_eq!((r.status, r.header("X")), (404, Some("y")));
        assert_eq!(r.body, "{\"errors\":[]}");
        assert!(parse_response("garbage").is_none());
    }

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:cfpb/x:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.params["realm"], "https://ghcr.io/token");
        assert_eq!(c.params["scope"], "repository:cfpb/x:pull");
        let c = parse_challenge(r#"Basic realm="a \"quoted\", realm""#).unwrap();
        assert_eq!(c.params["realm"], r#"a "quoted", realm"#);
        let c = parse_challenge("Bearer realm=https://t/token, service=reg").unwrap();
        assert_eq!((c.params["realm"].as_str(), c.params["service"].as_str()), ("https://t/token", "reg"));
    }

    #[test]
    fn config_lines_quote_what_curl_would_misread() {
        assert_eq!(config_line("user", "u:p\"a\\ss"), "user = \"u:p\\\"a\\\\ss\"\n");
        assert_eq!(config_line("header", "A: b\nc"), "header = \"A: bc\"\n");
    }

    #[test]
    fn stored_credentials_are_found_by_host() {
        let dir = crate::testdir::TestDir::new("creds");
        dir.write(
            "docker/config.json",
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dTpw"},"https://ghcr.io":{"auth":"Z2g6cA=="},"https://index.docker.io/v1/":{"auth":"aHViOnA="}}}"#,
        );
        let env = Env::from_pairs(&[("DOCKER_CONFIG", &dir.path().join("docker").to_string_lossy())]);
        let auth = |host: &str| match stored_credentials(Client::Docker, &env, host, Duration::from_secs(5))
            .unwrap()
        {
            Some(Credentials::Basic(s)) => Some(s.expose().to_string()),
            Some(Credentials::Password { .. }) => Some("password".into()),
            None => None,
        };
        assert_eq!(auth("127.0.0.1:5000").as_deref(), Some("dTpw"));
        assert_eq!(auth("ghcr.io").as_deref(), Some("Z2g6cA=="));
        assert_eq!(auth("docker.io").as_deref(), Some("aHViOnA="));
        assert_eq!(auth("vm:5000"), None);
        // Podman looks in its own auth file first.
        dir.write("auth.json", r#"{"auths":{"vm:5000":{"auth":"cG9kOnA="}}}"#);
        let env = Env::from_pairs(&[
            ("DOCKER_CONFIG", &dir.path().join("docker").to_string_lossy()),
            ("REGISTRY_AUTH_FILE", &dir.path().join("auth.json").to_string_lossy()),
        ]);
        let found = stored_credentials(Client::Podman, &env, "vm:5000", Duration::from_secs(5)).unwrap();
        assert!(matches!(found, Some(Credentials::Basic(s)) if s.expose() == "cG9kOnA="));
        // A damaged file is an error that names it.
        dir.write("docker/config.json", "{not json");
        let env = Env::from_pairs(&[("DOCKER_CONFIG", &dir.path().join("docker").to_string_lossy())]);
        let err = stored_credentials(Client::Docker, &env, "x", Duration::from_secs(5)).err().unwrap();
        assert!(format!("{err:#}").contains("config.json"), "{err:#}");
    }

    #[test]
    fn auth_keys() {
        assert_eq!(auth_key_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(auth_key_host("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(auth_key_host("quay.io/team"), "quay.io");
    }
}
