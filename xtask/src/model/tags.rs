//! The references an image is built and pushed as. Pure.
//!
//! For version 3.18.0 and build id 42.2 the published tags, in push order, are
//! `v3.18.0_42.2` (unique, immutable), `v3.18.0` and `latest`. Local builds use
//! `local-v3.18.0`, a form publishing never produces, so a local tag can never be mistaken for
//! (or collide with) a published one.

use anyhow::{bail, Context};

use crate::model::inventory::Image;
use crate::model::oci;

/// Identifies one run of the pipeline; part of the unique tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildId(String);

impl BuildId {
    pub fn parse(id: &str) -> anyhow::Result<BuildId> {
        if id.is_empty() {
            bail!("--build-id: a build id cannot be empty");
        }
        if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            bail!(
                "--build-id: `{}` must start with a letter or digit (a run number, say: 42.1)",
                id.escape_debug()
            );
        }
        if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))) {
            bail!(
                "--build-id: `{}` cannot be part of a tag because of {bad:?}: use letters, digits, `_`, `.` and `-`",
                id.escape_debug()
            );
        }
        if id.len() > oci::MAX_TAG_LEN {
            bail!("--build-id: {} characters is too long for a tag (at most {})", id.len(), oci::MAX_TAG_LEN);
        }
        Ok(BuildId(id.to_string()))
    }

    /// `--build-id` when given; in GitHub Actions `$GITHUB_RUN_NUMBER.$GITHUB_RUN_ATTEMPT`
    /// (the attempt alone restarts at 1 for every run, so it is not unique); otherwise none.
    pub fn resolve(flag: Option<&str>, actions: Option<&ActionsRun>) -> anyhow::Result<Option<BuildId>> {
        if let Some(id) = flag {
            return BuildId::parse(id).map(Some);
        }
        let Some(ActionsRun { number, attempt }) = actions else { return Ok(None) };
        let (number, attempt) = (number.as_deref(), attempt.as_deref());
        match (number, attempt) {
            (Some(n), Some(a)) if is_number(n) && is_number(a) => Ok(Some(BuildId(format!("{n}.{a}")))),
            _ => bail!(
                "GITHUB_ACTIONS is true but GITHUB_RUN_NUMBER ({}) and GITHUB_RUN_ATTEMPT ({}) are not both numbers; \
                 pass --build-id ID",
                number.unwrap_or("unset"),
                attempt.unwrap_or("unset")
            ),
        }
    }

    /// Like `resolve`, for commands that cannot work without one.
    pub fn require(flag: Option<&str>, actions: Option<&ActionsRun>) -> anyhow::Result<BuildId> {
        BuildId::resolve(flag, actions)?.context(
            "a build id is needed for the unique tag: pass --build-id ID (in GitHub Actions it is \
             GITHUB_RUN_NUMBER.GITHUB_RUN_ATTEMPT)",
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What GitHub Actions says about the workflow run the tool runs in
/// (`$GITHUB_RUN_NUMBER`, `$GITHUB_RUN_ATTEMPT`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionsRun {
    pub number: Option<String>,
    pub attempt: Option<String>,
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `<registry>/<name>`
pub fn repository(registry: &str, name: &str) -> String {
    format!("{registry}/{name}")
}

pub fn version_tag(image: &Image) -> String {
    format!("v{}", image.version)
}

/// The tags an image is pushed as, in push order: unique, version, latest. `latest` comes last
/// so that it never points at something the pinned tags do not also hold.
pub fn published_tags(image: &Image, build_id: &BuildId) -> anyhow::Result<[String; 3]> {
    let version = version_tag(image);
    let unique = format!("{version}_{}", build_id.as_str());
    if let Some(problem) = oci::tag_problem(&unique) {
        bail!(
            "--build-id: the unique tag of {} would be `{unique}`, which is not a valid tag: {problem}",
            image.name
        );
    }
    Ok([unique, version, "latest".to_string()])
}

/// The full references an image is pushed as, in push order.
pub fn published_references(
    registry: &str,
    image: &Image,
    build_id: &BuildId,
) -> anyhow::Result<[String; 3]> {
    let repo = repository(registry, &image.name);
    Ok(published_tags(image, build_id)?.map(|tag| format!("{repo}:{tag}")))
}

/// The reference of a local (never pushed) build.
pub fn local_reference(registry: &str, image: &Image) -> String {
    format!("{}:local-{}", repository(registry, &image.name), version_tag(image))
}

/// Where a build that breaks its hardening rules is kept for a look: one name per image, so
/// the next rejected build replaces it and a long-lived engine keeps at most one per image.
/// Publishing never produces this tag.
pub fn rejected_reference(registry: &str, image: &str) -> String {
    format!("{}:rejected", repository(registry, image))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(version: &str) -> Image {
        Image::for_test("alpine", version)
    }

    #[test]
    fn three_references_in_push_order() {
        let id = BuildId::parse("42.2").unwrap();
        assert_eq!(
            published_references("ghcr.io/cfpb/regtech/sbl", &image("3.18.0"), &id).unwrap(),
            [
                "ghcr.io/cfpb/regtech/sbl/alpine:v3.18.0_42.2",
                "ghcr.io/cfpb/regtech/sbl/alpine:v3.18.0",
                "ghcr.io/cfpb/regtech/sbl/alpine:latest",
            ]
        );
        let tags = published_tags(&image("1.0.0-rc.1"), &id).unwrap();
        assert_eq!(tags[0], "v1.0.0-rc.1_42.2");
    }

    #[test]
    fn local_reference_is_never_a_published_tag() {
        let local = local_reference("ghcr.io/x", &image("3.18.0"));
        assert_eq!(local, "ghcr.io/x/alpine:local-v3.18.0");
        let id = BuildId::parse("1").unwrap();
        let published = published_references("ghcr.io/x", &image("3.18.0"), &id).unwrap();
        assert!(!published.contains(&local));
    }

    #[test]
    fn build_id_from_github_actions() {
        let run = |n: Option<&str>, a: Option<&str>| ActionsRun {
            number: n.map(String::from),
            attempt: a.map(String::from),
        };
        let actions = run(Some("42"), Some("2"));
        assert_eq!(BuildId::resolve(None, Some(&actions)).unwrap(), Some(BuildId("42.2".into())));
        // An explicit flag wins.
        assert_eq!(BuildId::resolve(Some("7"), Some(&actions)).unwrap(), Some(BuildId("7".into())));
        // Outside Actions there is no run to name.
        assert_eq!(BuildId::resolve(None, None).unwrap(), None);
        let err = BuildId::require(None, None).unwrap_err().to_string();
        assert!(err.contains("pass --build-id ID"), "{err}");
        let err = BuildId::resolve(None, Some(&run(Some("42"), None))).unwrap_err().to_string();
        assert!(err.contains("GITHUB_RUN_ATTEMPT (unset)"), "{err}");
    }

    #[test]
    fn hostile_build_ids_are_refused() {
        for bad in ["", "../x", "a b", "a/b", "x:y", "é", "a\nb"] {
            let err = BuildId::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("--build-id: "), "{bad:?}: {err}");
        }
        assert!(BuildId::parse(&"1".repeat(200)).unwrap_err().to_string().contains("too long"));
        // Valid on its own but too long once joined to the version.
        let id = BuildId::parse(&"1".repeat(125)).unwrap();
        let err = published_tags(&image("3.18.0"), &id).unwrap_err().to_string();
        assert!(err.contains("not a valid tag"), "{err}");
        // A build id starts with a letter or digit, so one that looks like an option never passes.
        for bad in [".x", "-x", "--dry-run", "_1"] {
            let err = BuildId::parse(bad).unwrap_err().to_string();
            assert!(err.contains("must start with a letter or digit"), "{bad}: {err}");
        }
        assert_eq!(
            published_tags(&image("3.18.0"), &BuildId::parse("1429.1").unwrap()).unwrap()[0],
            "v3.18.0_1429.1"
        );
    }
}
