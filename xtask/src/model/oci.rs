//! The OCI distribution grammar for repository names and tags, without a regex engine.
//!
//! path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*   separator := "." | "_" | "__" | "-"+
//! tag            := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}

use crate::model::platform::Platform;

pub const MAX_TAG_LEN: usize = 128;

/// Why a string is not a valid tag, or `None` when it is one.
pub fn tag_problem(tag: &str) -> Option<String> {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else {
        return Some("a tag cannot be empty".into());
    };
    if tag.len() > MAX_TAG_LEN {
        return Some(format!("a tag is at most {MAX_TAG_LEN} characters, this one has {}", tag.len()));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Some(format!("a tag must start with a letter, digit or `_`, not {first:?}"));
    }
    if let Some(bad) = tag.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))) {
        return Some(format!("a tag may only hold letters, digits, `_`, `.` and `-`, not {bad:?}"));
    }
    None
}

/// Whether `s` is one path component of a repository name (`alpine`, `python-ubi8`, `a__b`).
pub fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or any number of "-", then an alphanumeric.
        let run = b[i..].iter().take_while(|c| !alnum(**c)).count();
        let sep = &s[i..i + run];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
        i += run;
    }
    true
}

/// Why `name` is not a repository path (components joined by `/`), or `None`.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name cannot be empty".into());
    }
    name.split('/').find(|c| !is_path_component(c)).map(|c| {
        format!(
            "`{c}` is not a valid repository name component: use lowercase letters and digits, \
             separated by `.`, `_`, `__` or dashes"
        )
    })
}

/// Why `registry` is not `HOST[:PORT][/NAMESPACE...]`, or `None`.
pub fn registry_problem(registry: &str) -> Option<String> {
    if let Some((scheme, rest)) = registry.split_once("://") {
        return Some(format!(
            "`{registry}` starts with a scheme: drop `{scheme}://` and write `{rest}`. Whether plain HTTP \
             is used is the engine's decision (its insecure-registries setting), as it is for every push"
        ));
    }
    let (host, namespace) = match registry.split_once('/') {
        Some((h, ns)) => (h, Some(ns)),
        None => (registry, None),
    };
    if !looks_like_host(host) {
        return Some(format!(
            "`{registry}` must start with a registry host (containing `.` or `:`, or `localhost`), \
             e.g. ghcr.io/org or 127.0.0.1:5000/org"
        ));
    }
    let (hostname, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let host_ok = !hostname.is_empty()
        && hostname.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !host_ok {
        return Some(format!("`{hostname}` is not a valid registry host name"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Some(format!("`{port}` is not a valid port in `{host}`"));
        }
    }
    namespace.and_then(name_problem)
}

/// The registry a reference is pulled from: its first component when that names a host
/// (`ghcr.io/x/y`, `127.0.0.1:5000/y`, `localhost/y`), else Docker Hub (`alpine:3.20`).
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if looks_like_host(first) => first,
        _ => "docker.io",
    }
}

/// `repository`, tag and digest of `name[:tag][@digest]` (a tag is a `:` after the last `/`).
pub fn split_reference(reference: &str) -> (String, Option<String>, Option<String>) {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (reference, None),
    };
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => {
            (repository.to_string(), Some(tag.to_string()), digest)
        }
        _ => (name.to_string(), None, digest),
    }
}

/// The registry host, the repository path and the tag of `reference` as the registry's API
/// names them (`latest` when it has no tag): `r:5000/ns/alpine:v1` is `r:5000`, `ns/alpine`, `v1`.
pub fn api_name(reference: &str) -> (String, String, String) {
    let (repository, tag, _) = split_reference(reference);
    let host = registry_host(&repository).to_string();
    let path = repository.strip_prefix(&format!("{host}/")).unwrap_or(&repository).to_string();
    (host, path, tag.unwrap_or_else(|| "latest".into()))
}

/// The repository of `reference` in full, as registries name it: `alpine:3.23` and
/// `docker.io/library/alpine` are both `docker.io/library/alpine`.
pub fn full_repository(reference: &str) -> String {
    let (repository, _, _) = split_reference(reference);
    let full = match repository.split_once('/') {
        Some((first, _)) if looks_like_host(first) => repository.clone(),
        _ => format!("docker.io/{repository}"),
    };
    match full.strip_prefix("docker.io/") {
        Some(path) if !path.contains('/') => format!("docker.io/library/{path}"),
        _ => full,
    }
}

/// The digest of `reference`'s repository among an image's `RepoDigests` (`name@sha256:...`).
pub fn repo_digest_of(reference: &str, repo_digests: &[String]) -> Option<String> {
    let wanted = full_repository(reference);
    repo_digests.iter().find_map(|d| {
        let (name, digest) = d.split_once('@')?;
        (full_repository(name) == wanted).then(|| digest.to_string())
    })
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// The host part of a registry (`ghcr.io/cfpb/x` -> `ghcr.io`), which is what `docker login` takes.
pub fn registry_host(registry: &str) -> &str {
    registry.split('/').next().unwrap_or(registry)
}

/// The dry run's line for a registry question (no credentials in it).
pub fn describe_query(host: &str, repository: &str, tag: &str, expectation: &str) -> String {
    format!("# registry {host}: GET /v2/{repository}/manifests/{tag} ({expectation})")
}

/// The media type of the index an image with several platforms is published as: an OCI image
/// index, whatever its platforms' manifests are (docker's pushes are Docker v2 manifests, which
/// an OCI index may list; docker, podman and skopeo read it).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One platform's manifest, as the registry holds it, for an index.
pub struct Member<'a> {
    pub platform: &'a Platform,
    pub media_type: &'a str,
    pub body: &'a str,
}

/// The index of `members`, byte for byte as it is pushed (its digest is of these bytes).
pub fn image_index(members: &[Member<'_>]) -> String {
    let manifests: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            let mut platform = serde_json::json!({ "architecture": m.platform.arch, "os": m.platform.os });
            if !m.platform.variant.is_empty() {
                platform["variant"] = serde_json::Value::String(m.platform.variant.clone());
            }
            serde_json::json!({
                "mediaType": m.media_type,
                "digest": digest_of(m.body.as_bytes()),
                "size": m.body.len(),
                "platform": platform,
            })
        })
        .collect();
    serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }).to_string()
}

/// `sha256:<hex>` of `bytes`: the digest a registry gives content.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(bytes);
    format!("sha256:{}", hash.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The platforms' manifest digests of an index or manifest list `body`, each with its
/// platform; None when `body` is a single image's manifest.
pub fn index_members(body: &str) -> Option<Vec<(Platform, String)>> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let manifests = value.get("manifests")?.as_array()?;
    Some(
        manifests
            .iter()
            .filter_map(|m| {
                let p = &m["platform"];
                let platform = Platform {
                    os: p["os"].as_str()?.to_string(),
                    arch: p["architecture"].as_str()?.to_string(),
                    variant: p["variant"].as_str().unwrap_or_default().to_string(),
                };
                Some((platform, m["digest"].as_str()?.to_string()))
            })
            .collect(),
    )
}

/// The registry host, repository path and tag (or digest) of an image as a Dockerfile names
/// it: Docker Hub's short names (`alpine:3.23`) are `library/alpine` on registry-1.docker.io.
pub fn base_location(base: &str) -> (String, String, String) {
    let full = full_repository(base);
    let (host, path) = full.split_once('/').unwrap_or(("docker.io", &full));
    let host = if host == "docker.io" { "registry-1.docker.io" } else { host };
    let (_, tag, digest) = split_reference(base);
    (host.to_string(), path.to_string(), digest.or(tag).unwrap_or_else(|| "latest".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_bases_are() {
        let at = |b: &str| base_location(b);
        assert_eq!(
            at("alpine:3.23"),
            ("registry-1.docker.io".into(), "library/alpine".into(), "3.23".into())
        );
        assert_eq!(
            at("127.0.0.1:5000/ns/base"),
            ("127.0.0.1:5000".into(), "ns/base".into(), "latest".into())
        );
        assert_eq!(
            at("registry.access.redhat.com/ubi8/python-312:latest"),
            ("registry.access.redhat.com".into(), "ubi8/python-312".into(), "latest".into())
        );
        assert_eq!(at("ghcr.io/x/y@sha256:ab").2, "sha256:ab");
    }

    #[test]
    fn api_names() {
        let name = |r: &str| api_name(r);
        assert_eq!(name("r:5000/ns/alpine:v1"), ("r:5000".into(), "ns/alpine".into(), "v1".into()));
        assert_eq!(name("ghcr.io/x/y"), ("ghcr.io".into(), "x/y".into(), "latest".into()));
    }

    #[test]
    fn repositories_in_full_and_their_digests() {
        assert_eq!(full_repository("alpine:3.23"), "docker.io/library/alpine");
        assert_eq!(full_repository("docker.io/library/alpine"), "docker.io/library/alpine");
        assert_eq!(full_repository("bitnami/redis:7"), "docker.io/bitnami/redis");
        assert_eq!(full_repository("127.0.0.1:5000/base:latest"), "127.0.0.1:5000/base");
        let digests = vec!["alpine@sha256:aaa".to_string(), "127.0.0.1:5000/base@sha256:bbb".to_string()];
        assert_eq!(repo_digest_of("docker.io/library/alpine:3.23", &digests).as_deref(), Some("sha256:aaa"));
        assert_eq!(repo_digest_of("127.0.0.1:5000/base:latest", &digests).as_deref(), Some("sha256:bbb"));
        assert_eq!(repo_digest_of("busybox", &digests), None);
    }

    #[test]
    fn path_components() {
        for good in ["alpine", "python-alpine", "a.b", "a_b", "a__b", "a---b", "ubi8", "0"] {
            assert!(is_path_component(good), "{good} should be valid");
        }
        for bad in ["", "Alpine", "-a", "a-", "a..b", "a___b", "a_-b", "a b", "a/b", ".a", "é"] {
            assert!(!is_path_component(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(tag_problem("v3.18.0_42.2"), None);
        assert_eq!(tag_problem("_x"), None);
        assert_eq!(tag_problem(&"a".repeat(128)), None);
        assert!(tag_problem(&"a".repeat(129)).unwrap().contains("at most 128"));
        assert!(tag_problem("").is_some());
        assert!(tag_problem(".x").unwrap().contains("must start"));
        assert!(tag_problem("-x").is_some());
        assert!(tag_problem("a b").unwrap().contains("' '"));
        assert!(tag_problem("../x").is_some());
        assert!(tag_problem("v1+meta").is_some());
    }

    #[test]
    fn registries() {
        for good in ["ghcr.io/cfpb/regtech/sbl", "127.0.0.1:5000", "localhost:5000/x", "ghcr.io"] {
            assert_eq!(registry_problem(good), None, "{good}");
        }
        assert!(registry_problem("cfpb/sbl").unwrap().contains("must start with a registry host"));
        assert!(registry_problem("ghcr.io/CFPB").unwrap().contains("`CFPB`"));
        assert!(registry_problem("127.0.0.1:99999/x").unwrap().contains("port"));
        assert!(registry_problem("bad_host.io/x").unwrap().contains("host name"));
        assert!(registry_problem("ghcr.io/").is_some());
        let p = registry_problem("http://127.0.0.1:5000/x").unwrap();
        assert!(p.contains("drop `http://` and write `127.0.0.1:5000/x`"), "{p}");
    }

    #[test]
    fn hosts() {
        assert_eq!(registry_host("ghcr.io/cfpb/regtech/sbl"), "ghcr.io");
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn registries_of_references() {
        assert_eq!(registry_of("alpine:3.20"), "docker.io");
        assert_eq!(registry_of("library/alpine"), "docker.io");
        assert_eq!(registry_of("ghcr.io/x/y:1"), "ghcr.io");
        assert_eq!(registry_of("127.0.0.1:5000/y"), "127.0.0.1:5000");
    }

    #[test]
    fn references() {
        let split = |r: &str| split_reference(r);
        assert_eq!(split("127.0.0.1:5000/x/a:v1"), ("127.0.0.1:5000/x/a".into(), Some("v1".into()), None));
        assert_eq!(split("127.0.0.1:5000/x/a"), ("127.0.0.1:5000/x/a".into(), None, None));
        assert_eq!(split("r/a:t@sha256:1"), ("r/a".into(), Some("t".into()), Some("sha256:1".into())));
        assert_eq!(split("r/a@sha256:1"), ("r/a".into(), None, Some("sha256:1".into())));
    }
}
