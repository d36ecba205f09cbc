//! What a registry's answer to a manifest request means, read from its status code and the
//! distribution API's error codes: a tag present or absent, or why it tells neither.

use serde::Deserialize;

use crate::sys::registry::http::Response;
use crate::sys::registry::{Attempt, Manifest, Tag, Unanswered};

/// Reads the answer to `GET /v2/<name>/manifests/<tag>` (`request` names it in messages);
/// `stored` tells whether credentials were stored for the host. Pure.
pub fn tag_answer(host: &str, request: &str, response: &Response, stored: bool) -> Result<Tag, Attempt> {
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
            let manifest = Manifest {
                media_type: response.header("content-type").unwrap_or_default().to_string(),
                body: response.body.clone(),
            };
            Ok(Tag::Present { digest: digest.to_string(), config: config_digest(&response.body), manifest })
        }
        404 if codes.iter().any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN") => Ok(Tag::Absent),
        401 => Err(Unanswered::Unauthorized { stored, said: said() }.into()),
        403 => Err(Unanswered::Denied(said()).into()),
        429 | 500..=599 => Err(Attempt::Transient(said())),
        _ => Err(Unanswered::Unexpected(said()).into()),
    }
}

/// Reads the answer to `PUT /v2/<name>/manifests/<tag>` for `path`: the digest the registry
/// took the manifest under.
pub fn put_answer(host: &str, path: &str, response: &Response, stored: bool) -> Result<String, Attempt> {
    match response.status {
        200 | 201 => response.header("docker-content-digest").map(String::from).ok_or_else(|| {
            Attempt::Final(Unanswered::Unexpected(format!("{host} took PUT {path} but named no digest")))
        }),
        _ => Err(tag_answer(host, &format!("PUT {path}"), response, stored).err().unwrap_or_else(|| {
            Attempt::Final(Unanswered::Unexpected(format!("PUT {path}: {}", response.status_line)))
        })),
    }
}

/// An image manifest's config digest (the image id); none for an index.
fn config_digest(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct ImageManifest {
        config: Option<Descriptor>,
    }
    #[derive(Deserialize)]
    struct Descriptor {
        digest: String,
    }
    serde_json::from_str::<ImageManifest>(body).ok().and_then(|m| m.config).map(|c| c.digest)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::registry::http::parse_response;

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
            tag_answer("r", "GET /v2/x/manifests/t", &found, false).ok(),
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
            tag_answer("r", "GET /p", &index, false).ok(),
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
            assert_eq!(tag_answer("r", "GET /p", &missing, false).ok(), Some(Tag::Absent), "{code}");
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
            let kind = match tag_answer("r", "GET /v2/x/manifests/v1.0.0_1429.1", &response(raw), true) {
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
    fn put_answers_name_the_digest_or_why_not() {
        let put = |raw: &str| put_answer("r", "/v2/x/manifests/t", &response(raw), true);
        assert!(
            matches!(put("HTTP/1.1 201 Created\r\nDocker-Content-Digest: sha256:be\r\n\r\n"), Ok(d) if d == "sha256:be")
        );
        let unnamed = put("HTTP/1.1 201 Created\r\n\r\n");
        assert!(
            matches!(unnamed, Err(Attempt::Final(Unanswered::Unexpected(s))) if s == "r took PUT /v2/x/manifests/t but named no digest")
        );
        // A 404 the GET would read as "absent" is no answer to a PUT.
        let missing = put("HTTP/1.1 404 Not Found\r\n\r\n{\"errors\":[{\"code\":\"NAME_UNKNOWN\"}]}");
        assert!(
            matches!(missing, Err(Attempt::Final(Unanswered::Unexpected(s))) if s == "PUT /v2/x/manifests/t: 404 Not Found")
        );
        let refused = put("HTTP/1.1 401 Unauthorized\r\n\r\n");
        assert!(matches!(refused, Err(Attempt::Final(Unanswered::Unauthorized { stored: true, .. }))));
    }
}
