//! The OCI labels every published image carries (org.opencontainers.image.*). Pure.

use crate::model::inventory::Image;
use crate::sys::env::Env;

/// Labels for `image`, built at `created` (RFC 3339). The source comes from the GitHub Actions
/// environment when it is there; the revision is the publish plan's (git's).
pub fn oci_labels(image: &Image, env: &Env, created: &str) -> Vec<(String, String)> {
    let mut labels = vec![
        ("org.opencontainers.image.title", image.name.clone()),
        ("org.opencontainers.image.version", image.version.to_string()),
        ("org.opencontainers.image.created", created.to_string()),
    ];
    if let (Some(server), Some(repo)) = (env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")) {
        labels.push(("org.opencontainers.image.source", format!("{}/{repo}", server.trim_end_matches('/'))));
    }
    labels.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The build time: $SOURCE_DATE_EPOCH when set (reproducible builds), else now.
pub fn created(env: &Env) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(rfc3339(env.number("SOURCE_DATE_EPOCH", now)?))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_737_600 + 3_723), "2026-11-27T01:02:03Z");
        let env = Env::from_pairs(&[("SOURCE_DATE_EPOCH", "0")]);
        assert_eq!(created(&env).unwrap(), "1970-01-01T00:00:00Z");
        assert!(created(&Env::from_pairs(&[("SOURCE_DATE_EPOCH", "yesterday")])).is_err());
    }

    #[test]
    fn labels_from_github_environment() {
        let image = crate::model::inventory::Image::for_test("alpine", "3.18.0");
        let env = Env::from_pairs(&[
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "cfpb/sbl-base-images"),
            ("GITHUB_SHA", "abc123"),
        ]);
        let labels = oci_labels(&image, &env, "2026-11-27T00:00:00Z");
        let get = |k: &str| labels.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("org.opencontainers.image.source"), Some("https://github.com/cfpb/sbl-base-images"));
        assert_eq!(get("org.opencontainers.image.version"), Some("3.18.0"));
        assert_eq!(get("org.opencontainers.image.title"), Some("alpine"));
        assert_eq!(get("org.opencontainers.image.created"), Some("2026-11-27T00:00:00Z"));
        assert_eq!(oci_labels(&image, &Env::default(), "t").len(), 3);
    }
}
