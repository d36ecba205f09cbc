//! Authentication as the registry asks for it: the challenge of a 401
//! (`WWW-Authenticate: Bearer realm=...` or `Basic`), and a bearer token from the token service
//! it names.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sys::docker::Secret;
use crate::sys::registry::http::{Authorization, HttpClient, Request, Response};
use crate::sys::registry::{Attempt, Credentials, Unanswered};

/// An authentication challenge: `Bearer realm="https://ghcr.io/token",service="ghcr.io"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token scope it names, else pulling `repository`.
    pub fn scope(&self, repository: &str) -> String {
        self.params.get("scope").cloned().unwrap_or_else(|| format!("repository:{repository}:pull"))
    }
}

pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, mut rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else { break };
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => quoted_string(quoted),
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

/// A quoted string's value (after its opening quote) and what follows it: it ends at the first
/// quote that is not escaped.
fn quoted_string(quoted: &str) -> (String, &str) {
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

/// A token from the token service `challenge` names, for the scope it names (pulling
/// `repository` when it names none), asked with the stored `credentials` if any.
pub fn fetch_token(
    http: &dyn HttpClient,
    host: &str,
    challenge: &Challenge,
    repository: &str,
    credentials: Option<&Credentials>,
) -> Result<Secret, Attempt> {
    let Some(realm) = challenge.params.get("realm") else {
        return Err(Attempt::Final(Unanswered::Unexpected(format!(
            "{host} asked for a bearer token without naming its token service"
        ))));
    };
    let mut request = Request::get(realm.clone());
    if let Some(service) = challenge.params.get("service") {
        request.query.push(("service", service.clone()));
    }
    request.query.push(("scope", challenge.scope(repository)));
    request.authorization = credentials.map(Authorization::Stored);
    let response = http.send(&request)?;
    token_answer(realm, &response, credentials.is_some())
}

/// Reads the token service's answer; `stored` tells whether credentials were sent.
fn token_answer(realm: &str, response: &Response, stored: bool) -> Result<Secret, Attempt> {
    match response.status {
        200 => {}
        401 | 403 => {
            let said = format!("the token service {realm} answered {}", response.status_line);
            return Err(Attempt::Final(Unanswered::Unauthorized { stored, said }));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
