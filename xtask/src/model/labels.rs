//! The OCI labels every published image carries (org.opencontainers.image.*). Pure.

use crate::model::inventory::Image;

/// Labels for `image`, built at `created` (RFC 3339), from `source` (the repository's address,
/// when the run knows it); the revision is the publish plan's (git's).
pub fn oci_labels(image: &Image, source: Option<&str>, created: &str) -> Vec<(String, String)> {
    let mut labels = vec![
        ("org.opencontainers.image.title", image.name.clone()),
        ("org.opencontainers.image.version", image.version.to_string()),
        ("org.opencontainers.image.created", created.to_string()),
    ];
    if let Some(source) = source {
        labels.push(("org.opencontainers.image.source", source.to_string()));
    }
    labels.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
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
    }

    #[test]
    fn labels_with_and_without_a_source() {
        let image = crate::model::inventory::Image::for_test("alpine", "3.18.0");
        let labels =
            oci_labels(&image, Some("https://github.com/cfpb/sbl-base-images"), "2026-11-27T00:00:00Z");
        let get = |k: &str| labels.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("org.opencontainers.image.source"), Some("https://github.com/cfpb/sbl-base-images"));
        assert_eq!(get("org.opencontainers.image.version"), Some("3.18.0"));
        assert_eq!(get("org.opencontainers.image.title"), Some("alpine"));
        assert_eq!(get("org.opencontainers.image.created"), Some("2026-11-27T00:00:00Z"));
        assert_eq!(oci_labels(&image, None, "t").len(), 3);
    }
}
