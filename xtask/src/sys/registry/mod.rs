//! The registry's own word on what it holds: whether a tag exists and which digest it holds,
//! read from the OCI distribution API's status codes, error codes and Docker-Content-Digest
//! header, never guessed from a CLI's text (`docker manifest inspect` reports "no such
//! manifest" for a 401 or a TLS failure as well as for a missing tag).
//!
//! Asked over HTTP (http.rs: curl, so HTTPS, proxies and CA certificates work as elsewhere on
//! the machine); with the credentials the container CLI stored at login (credentials.rs) and
//! the tokens the registry asks for (auth.rs); over plain HTTP exactly where the engine would
//! use it (`Docker::transport`). judge.rs reads the answers.

mod auth;
mod credentials;
mod http;
mod judge;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::sys::docker::{Docker, Secret};
use crate::sys::env::Env;
use crate::sys::gha::Log;
use crate::sys::process::sleep_unless_interrupted;
use crate::sys::retry::{self, Backoff};
use http::{Authorization, Curl, HttpClient, HttpError, Method, Request, Response};

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

/// A connection to one registry host for the length of a run.
pub struct Registry {
    host: String,
    transport: Transport,
    credentials: Option<Credentials>,
    http: Box<dyn HttpClient>,
    backoff: Backoff,
    log: Log,
    /// The scheme that answered (an insecure registry may speak either).
    scheme: Mutex<Option<&'static str>>,
    /// Bearer tokens by scope, once the registry's token service gave one.
    tokens: Mutex<BTreeMap<String, Arc<Secret>>>,
}

/// Every manifest type, image indexes included: distribution answers MANIFEST_UNKNOWN ("OCI
/// manifest found, but accept header does not support OCI manifests") for a tag that exists
/// when its type is left out, as podman's pushes are OCI.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

impl Registry {
    /// The registry behind `registry` (`host[/namespace]`) as `docker` reaches it, with the
    /// credentials it stored.
    pub fn connect(docker: &Docker, env: &Env, registry: &str, log: Log) -> anyhow::Result<Registry> {
        let host = crate::model::oci::registry_host(registry);
        let transport = docker.transport(registry)?;
        let timeout = docker.timeouts.command;
        let credentials = credentials::stored_credentials(docker.client()?, env, host, timeout)?;
        Ok(Registry {
            host: host.to_string(),
            transport,
            credentials,
            http: Box::new(Curl::new(timeout)),
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
            let response = self.send(repository, &ManifestRequest::Get, &path)?;
            judge::tag_answer(&self.host, &format!("GET {path}"), &response, self.credentials.is_some())
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
        let request = ManifestRequest::Put { content_type: &manifest.media_type, body: &manifest.body };
        self.retrying("PUT", &path, || {
            let response = self.send(repository, &request, &path)?;
            judge::put_answer(&self.host, &path, &response, self.credentials.is_some())
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
    fn send(&self, repository: &str, request: &ManifestRequest<'_>, path: &str) -> Result<Response, Attempt> {
        let cached = self.tokens.lock().unwrap().get(&request.scope(repository)).cloned();
        let response = self.on_registry(request, path, cached.as_deref().map(Authorization::Bearer))?;
        if response.status != 401 {
            return Ok(response);
        }
        let fresh_token;
        let authorization = match response.header("www-authenticate").and_then(auth::parse_challenge) {
            Some(c) if c.is("bearer") => {
                let credentials = self.credentials.as_ref();
                let token =
                    Arc::new(auth::fetch_token(&*self.http, &self.host, &c, repository, credentials)?);
                self.tokens.lock().unwrap().insert(c.scope(repository), Arc::clone(&token));
                fresh_token = token;
                Some(Authorization::Bearer(&fresh_token))
            }
            Some(c) if c.is("basic") => self.credentials.as_ref().map(Authorization::Stored),
            _ => None,
        };
        match authorization {
            Some(authorization) => self.on_registry(request, path, Some(authorization)),
            None => Ok(response),
        }
    }

    /// Sends `request` for `path` to the registry, over the scheme the engine would use.
    fn on_registry(
        &self,
        request: &ManifestRequest<'_>,
        path: &str,
        authorization: Option<Authorization<'_>>,
    ) -> Result<Response, Attempt> {
        let known = *self.scheme.lock().unwrap();
        let schemes: Vec<&'static str> = match (known, self.transport) {
            (Some(scheme), _) => vec![scheme],
            (None, Transport::Tls) => vec!["https"],
            (None, Transport::Insecure) => vec!["https", "http"],
        };
        let mut handshake_failure = None;
        for scheme in schemes {
            let mut http_request = request.http(format!("{scheme}://{}{path}", self.host));
            http_request.authorization = authorization;
            http_request.verify_tls = !(scheme == "https" && self.transport == Transport::Insecure);
            match self.http.send(&http_request) {
                Ok(response) => {
                    *self.scheme.lock().unwrap() = Some(scheme);
                    return Ok(response);
                }
                // Plain HTTP where TLS was tried fails the handshake. The engine falls back to
                // HTTP for an insecure registry; so do we.
                Err(failure @ HttpError::TlsHandshake { .. }) => handshake_failure = Some(failure),
                Err(other) => return Err(other.into()),
            }
        }
        Err(self.no_scheme_answered(handshake_failure))
    }

    /// Why no scheme answered, each having failed its TLS handshake (or none was tried).
    fn no_scheme_answered(&self, handshake_failure: Option<HttpError>) -> Attempt {
        match handshake_failure {
            // A registry that answers TLS in plain HTTP is not down: the engine's settings do
            // not call it insecure, so it is asked (and would be pushed to) over TLS.
            Some(HttpError::TlsHandshake { said, plain_http: true }) if self.transport == Transport::Tls => {
                Attempt::Final(Unanswered::Unreachable(format!(
                    "{said}; {} answers in plain HTTP, and the engine's settings do not call it insecure: \
                     for a plain-HTTP registry add it to docker's \"insecure-registries\" (daemon.json) or to \
                     podman's registries.conf with `insecure = true`",
                    self.host
                )))
            }
            Some(failure) => failure.into(),
            None => Attempt::Transient("no scheme to try".into()),
        }
    }
}

/// What is asked of the registry: a manifest, or giving a tag one.
enum ManifestRequest<'a> {
    Get,
    Put { content_type: &'a str, body: &'a str },
}

impl<'a> ManifestRequest<'a> {
    fn http(&self, url: String) -> Request<'a> {
        let mut request = Request::get(url);
        match *self {
            ManifestRequest::Get => request.headers.push(("Accept", ACCEPT)),
            ManifestRequest::Put { content_type, body } => {
                request.method = Method::Put;
                request.headers.push(("Content-Type", content_type));
                request.body = Some(body);
            }
        }
        request
    }

    /// The token scope a request needs (the key of the kept tokens).
    fn scope(&self, repository: &str) -> String {
        match self {
            ManifestRequest::Get => format!("repository:{repository}:pull"),
            ManifestRequest::Put { .. } => format!("repository:{repository}:pull,push"),
        }
    }
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

impl From<HttpError> for Attempt {
    fn from(failure: HttpError) -> Attempt {
        match failure {
            HttpError::Transient(said) | HttpError::TlsHandshake { said, .. } => Attempt::Transient(said),
            HttpError::Failed(said) => Attempt::Final(Unanswered::Unreachable(said)),
            HttpError::Broken(said) => Attempt::Final(Unanswered::Unexpected(said)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    type Answer = fn(&Request<'_>) -> Result<Response, HttpError>;

    /// A client that answers with `answer` and notes each request as `METHOD URL AUTHORIZATION`.
    struct Fake {
        answer: Answer,
        sent: Arc<Mutex<Vec<String>>>,
    }

    impl HttpClient for Fake {
        fn send(&self, request: &Request<'_>) -> Result<Response, HttpError> {
            let authorization = match request.authorization {
                Some(Authorization::Bearer(token)) => format!("bearer:{}", token.expose()),
                Some(Authorization::Stored(_)) => "stored".into(),
                None => "none".into(),
            };
            let note =
                format!("{:?} {} {authorization} verify={}", request.method, request.url, request.verify_tls);
            self.sent.lock().unwrap().push(note);
            (self.answer)(request)
        }
    }

    fn registry(transport: Transport, answer: Answer) -> (Registry, Arc<Mutex<Vec<String>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let registry = Registry {
            host: "r:5000".into(),
            transport,
            credentials: None,
            http: Box::new(Fake { answer, sent: Arc::clone(&sent) }),
            backoff: Backoff { retries: 2, base: Duration::ZERO, cap: Duration::ZERO },
            log: Log::captured(false),
            scheme: Mutex::new(None),
            tokens: Mutex::new(BTreeMap::new()),
        };
        (registry, sent)
    }

    fn answer(raw: &str) -> Result<Response, HttpError> {
        Ok(http::parse_response(raw).expect("an HTTP answer"))
    }

    const ABSENT: &str = "HTTP/1.1 404 Not Found\r\n\r\n{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}";

    fn plain_http(_: &Request<'_>) -> Result<Response, HttpError> {
        let said = "curl: (35) error:0A00010B:SSL routines::wrong version number".into();
        Err(HttpError::TlsHandshake { said, plain_http: true })
    }

    #[test]
    fn plain_http_on_a_tls_port_is_named_and_not_retried() {
        let (registry, sent) = registry(Transport::Tls, plain_http);
        let Err(Unanswered::Unreachable(said)) = registry.tag("x", "t") else { panic!() };
        assert!(said.starts_with("curl: (35) error:0A00010B:SSL routines::wrong version number; r:5000 answers in plain HTTP, and the engine's settings do not call it insecure"), "{said}");
        assert_eq!(sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_insecure_registry_falls_back_to_plain_http_and_keeps_to_it() {
        let (registry, sent) = registry(Transport::Insecure, |request| {
            if request.url.starts_with("https:") {
                plain_http(request)
            } else {
                answer(ABSENT)
            }
        });
        assert_eq!(registry.tag("x", "t"), Ok(Tag::Absent));
        assert_eq!(registry.tag("x", "u"), Ok(Tag::Absent));
        assert_eq!(
            *sent.lock().unwrap(),
            [
                "Get https://r:5000/v2/x/manifests/t none verify=false",
                "Get http://r:5000/v2/x/manifests/t none verify=true",
                "Get http://r:5000/v2/x/manifests/u none verify=true",
            ]
        );
    }

    #[test]
    fn a_bearer_token_is_fetched_once_per_scope() {
        let (registry, sent) = registry(Transport::Tls, |request| match request.authorization {
            _ if request.url.starts_with("https://t/") => answer("HTTP/1.1 200 OK\r\n\r\n{\"token\":\"tk\"}"),
            Some(Authorization::Bearer(_)) => answer(ABSENT),
            _ => answer(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"https://t/token\"\r\n\r\n",
            ),
        });
        assert_eq!(registry.tag("x", "t"), Ok(Tag::Absent));
        assert_eq!(registry.tag("x", "u"), Ok(Tag::Absent));
        assert_eq!(
            *sent.lock().unwrap(),
            [
                "Get https://r:5000/v2/x/manifests/t none verify=true",
                "Get https://t/token none verify=true",
                "Get https://r:5000/v2/x/manifests/t bearer:tk verify=true",
                "Get https://r:5000/v2/x/manifests/u bearer:tk verify=true",
            ]
        );
    }
}
