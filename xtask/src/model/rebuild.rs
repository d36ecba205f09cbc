//! Whether a rebuilt image differs from the one published under its version tag, and why, in
//! one line per reason. Pure: the facts come from the run (run/compare.rs).
//!
//! What was built decides: an image is unchanged only when its files and configuration equal
//! the published image's (model/filesystem.rs), and the published tags agree. No rule about
//! inputs sees everything a build can fetch, so its inputs (the rules of --changed-since), its
//! base and its packages only explain a change. Anything that cannot be told counts as a
//! change: publishing again is always safe, skipping wrongly is not.

use serde::Serialize;

use crate::model::filesystem::Content;
use crate::model::packages::{Diff, Package};
use crate::model::text;

pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The other images a build takes files from (build stages, `COPY --from`), each
/// `name@digest`, space-separated. The OCI annotations name only the final base, so this key
/// is the team's own.
pub const SOURCES: &str = "gov.cfpb.images.build-sources";

/// The image a build starts from: the reference its final FROM resolved to, and that image's
/// digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Base {
    pub name: String,
    pub digest: String,
}

/// What a build starts from and takes files from, each image with its digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    pub base: Option<Base>,
    /// The other images (build stages, `COPY --from`), sorted by name.
    pub sources: Vec<Base>,
}

impl Origins {
    /// The SOURCES label's value.
    pub fn sources_label(&self) -> String {
        self.sources.iter().map(|s| format!("{}@{}", s.name, s.digest)).collect::<Vec<_>>().join(" ")
    }
}

/// The images of a SOURCES label.
pub fn parse_sources(label: &str) -> Vec<Base> {
    label
        .split_whitespace()
        .filter_map(|item| item.rsplit_once('@'))
        .map(|(name, digest)| Base { name: name.to_string(), digest: digest.to_string() })
        .collect()
}

/// What is published under the version tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its manifest digest.
    pub digest: String,
    /// The unique tag it was published as (its `ref.name` label), when it says.
    pub unique_tag: Option<String>,
    pub revision: Option<String>,
    pub base: Option<Base>,
    /// Its SOURCES label; None when it has none.
    pub sources: Option<Vec<Base>>,
    /// Its packages, or why they could not be read (a database this tool cannot read).
    pub packages: Result<Vec<Package>, String>,
    /// Its files and configuration.
    pub content: Content,
    /// Why the image itself could not be read (the engine cannot pull it), when it could not:
    /// nothing else is known of it then.
    pub unreadable: Option<String>,
    /// Why the image's other tags do not agree with its version tag (`latest` left behind by a
    /// run that failed half-way, or moved by hand), when they do not.
    pub tags_disagree: Option<String>,
}

impl Published {
    /// What is published under a tag whose image could not be read.
    pub fn unreadable(digest: &str, why: String) -> Published {
        Published {
            digest: digest.to_string(),
            unique_tag: None,
            revision: None,
            base: None,
            sources: None,
            packages: Ok(Vec::new()),
            content: Content::default(),
            unreadable: Some(why),
            tags_disagree: None,
        }
    }
}

/// Whether the image's inputs changed since a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    Unchanged,
    /// Why (`images/Dockerfile-alpine changed`).
    Changed(String),
    /// Why it cannot be told (no revision label, a revision this clone does not have).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether this run publishes the image.
    pub publish: bool,
    /// One line per reason, or `unchanged since ...`.
    pub why: Vec<String>,
    #[serde(skip_serializing_if = "Diff::is_empty")]
    pub packages: Diff,
    /// The published manifest digest, when there is a published image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// The tag the published image was published as: its unique tag when its label says, else
    /// the version tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// For one platform of several: the digest of the published index it is a member of (what
    /// users pin), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// For one platform of several: how the published index's platforms differ from those
    /// built (one dropped). The image's index is published again; this platform need not be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms_changed: Option<String>,
}

impl Verdict {
    /// Publish, for the one reason `why`, without a comparison of packages; `published` is the
    /// digest under the version tag, when there is one.
    pub fn publish_because(why: String, published: Option<String>) -> Verdict {
        Verdict {
            publish: true,
            why: vec![why],
            packages: Diff::default(),
            published,
            since: None,
            index: None,
            platforms_changed: None,
        }
    }

    pub fn line(&self) -> String {
        self.why.join("; ")
    }
}

/// The verdict on an image rebuilt from `origins`, holding `packages` and `content`, against what
/// is published under `version_tag`. `force` publishes whatever the comparison says.
pub fn judge(
    version_tag: &str,
    origins: &Origins,
    packages: &[Package],
    content: &Content,
    published: Option<&Published>,
    inputs: &Inputs,
    force: bool,
) -> Verdict {
    let Some(published) = published else {
        return Verdict::publish_because(
            format!("first publish: nothing is published as {version_tag}"),
            None,
        );
    };
    if let Some(reason) = &published.unreadable {
        return Verdict::publish_because(
            format!("the published image cannot be read to compare ({reason})"),
            Some(published.digest.clone()),
        );
    }
    // What decides.
    let mut why = content.differences(&published.content);
    if let Some(reason) = &published.tags_disagree {
        why.push(format!("tags: {reason}"));
    }
    let changed = !why.is_empty();
    // What explains.
    let (explanations, diff) = explain(origins, packages, published, inputs);
    let since = published
        .unique_tag
        .clone()
        .unwrap_or_else(|| version_tag.rsplit(':').next().unwrap_or(version_tag).to_string());
    if changed {
        why.extend(explanations);
    } else {
        why.push(format!("unchanged since {since} ({}): the same files and configuration", published.digest));
        why.extend(explanations.into_iter().map(|e| format!("{e}, yet the image built is the same")));
        if force {
            why.push("published anyway (--force)".into());
        }
    }
    // Names, paths and versions in these lines come from the images: one line each, whatever
    // they hold.
    let why = why.iter().map(|line| text::one_line(line)).collect();
    Verdict {
        publish: changed || force,
        why,
        packages: diff,
        published: Some(published.digest.clone()),
        since: Some(since),
        index: None,
        platforms_changed: None,
    }
}

/// Why an image may have changed, one line each: its inputs, its base, its build images, its
/// packages; and how its packages moved.
fn explain(
    origins: &Origins,
    packages: &[Package],
    published: &Published,
    inputs: &Inputs,
) -> (Vec<String>, Diff) {
    let mut why = Vec::new();
    match inputs {
        Inputs::Unchanged => {}
        Inputs::Changed(reason) => why.push(format!("inputs changed: {reason}")),
        Inputs::Unknown(reason) => why.push(format!("inputs: cannot tell ({reason})")),
    }
    let base = origins.base.as_ref();
    match (base, &published.base) {
        // The digest decides: the same image reached by another name (a registry spelled
        // otherwise) has not moved.
        (Some(now), Some(then)) if now.digest != then.digest => {
            let name = if now.name == then.name {
                now.name.clone()
            } else {
                format!("{} -> {}", then.name, now.name)
            };
            why.push(format!("base moved: {name} {} -> {}", then.digest, now.digest));
        }
        (Some(_), None) => why.push("base: the published image does not record its base".into()),
        (None, Some(then)) => why.push(format!("base: now none, was {} {}", then.name, then.digest)),
        _ => {}
    }
    match (&published.sources, origins.sources.is_empty()) {
        (None, false) => why.push("build images: the published image does not record them".into()),
        (Some(before), _) => {
            let moved: Vec<String> = origins
                .sources
                .iter()
                .filter_map(|now| match before.iter().find(|b| b.name == now.name) {
                    Some(then) if then.digest == now.digest => None,
                    Some(then) => Some(format!("{} {} -> {}", now.name, then.digest, now.digest)),
                    None => Some(format!("{} (new) {}", now.name, now.digest)),
                })
                .chain(
                    before
                        .iter()
                        .filter(|b| !origins.sources.iter().any(|n| n.name == b.name))
                        .map(|b| format!("{} (gone)", b.name)),
                )
                .collect();
            match moved.as_slice() {
                [] => {}
                [one] => why.push(format!("build image moved: {one}")),
                [first, rest @ ..] => why.push(format!("build images moved: {first} (+{} more)", rest.len())),
            }
        }
        (None, true) => {}
    }
    let diff = match &published.packages {
        Ok(before) => Diff::between(before, packages),
        Err(e) => {
            why.push(format!("packages: cannot read the published image's ({e})"));
            Diff::default()
        }
    };
    if !diff.is_empty() {
        why.push(format!("packages: {}", diff.summary()));
    }
    (why, diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::filesystem::Node;
    use crate::model::packages::Ecosystem;

    fn apk(name: &str, version: &str) -> Package {
        Package {
            ecosystem: Ecosystem::Apk,
            name: name.into(),
            version: version.into(),
            license: None,
            origin: None,
            arch: None,
            source: "/lib/apk/db/installed".into(),
        }
    }

    fn base(digest: &str) -> Base {
        Base { name: "alpine:3.23".into(), digest: digest.into() }
    }

    fn on(digest: &str) -> Origins {
        Origins { base: Some(base(digest)), sources: Vec::new() }
    }

    fn published(packages: Vec<Package>, base_digest: &str) -> Published {
        Published {
            digest: "sha256:pub".into(),
            unique_tag: Some("v3.23.0_7".into()),
            revision: Some("abc".into()),
            base: Some(base(base_digest)),
            sources: Some(Vec::new()),
            packages: Ok(packages),
            content: content(&[("/etc/os-release", "1"), ("/lib/apk/db/installed", "1")]),
            unreadable: None,
            tags_disagree: None,
        }
    }

    fn content(files: &[(&str, &str)]) -> Content {
        let node = |digest: &str| Node {
            kind: 'f',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 1,
            digest: digest.into(),
            link: String::new(),
            xattrs: String::new(),
        };
        Content {
            files: files.iter().map(|(p, d)| (p.to_string(), node(d))).collect(),
            config: Default::default(),
        }
    }

    /// judge with the published image's content `then` and the built one's `now`.
    fn verdict(
        p: &Published,
        now: &Content,
        origins: &Origins,
        packages: &[Package],
        inputs: &Inputs,
    ) -> Verdict {
        judge("r/alpine:v3.23.0", origins, packages, now, Some(p), inputs, false)
    }

    #[test]
    fn the_same_files_and_configuration_are_not_published_again() {
        let packages = vec![apk("musl", "1.2.5-r10")];
        let p = published(packages.clone(), "sha256:aaa");
        let v = verdict(&p, &p.content, &on("sha256:aaa"), &packages, &Inputs::Unchanged);
        assert!(!v.publish);
        assert_eq!(v.why, ["unchanged since v3.23.0_7 (sha256:pub): the same files and configuration"]);
        let forced = judge(
            "r/alpine:v3.23.0",
            &on("sha256:aaa"),
            &packages,
            &p.content,
            Some(&p),
            &Inputs::Unchanged,
            true,
        );
        assert!(forced.publish);
        assert_eq!(forced.why[1], "published anyway (--force)");
    }

    /// What the input rules cannot see (a symlink's target, a download) still publishes; what
    /// they see but leaves the image as it was (a comment) does not.
    #[test]
    fn the_built_image_decides_and_the_inputs_only_explain() {
        let packages = vec![apk("musl", "1")];
        let p = published(packages.clone(), "sha256:aaa");
        let moved =
            content(&[("/etc/os-release", "1"), ("/lib/apk/db/installed", "1"), ("/onlylink.txt", "l3")]);
        let v = verdict(&p, &moved, &on("sha256:aaa"), &packages, &Inputs::Unchanged);
        assert!(v.publish);
        assert_eq!(v.why, ["content: /onlylink.txt"]);
        let v = verdict(
            &p,
            &p.content,
            &on("sha256:aaa"),
            &packages,
            &Inputs::Changed("images/Dockerfile-a changed".into()),
        );
        assert!(!v.publish, "{:?}", v.why);
        assert_eq!(v.why[1], "inputs changed: images/Dockerfile-a changed, yet the image built is the same");
    }

    #[test]
    fn each_change_is_one_line() {
        let p = published(vec![apk("openssl", "3.1.4-r1"), apk("zlib", "1")], "sha256:aaa");
        let now = vec![apk("openssl", "3.1.4-r5"), apk("zlib", "1"), apk("curl", "8")];
        let mut built = content(&[("/etc/os-release", "1"), ("/lib/apk/db/installed", "2")]);
        built.config.user = "sbl".into();
        let v = verdict(
            &p,
            &built,
            &on("sha256:bbb"),
            &now,
            &Inputs::Changed("images/Dockerfile-alpine changed".into()),
        );
        assert!(v.publish);
        assert_eq!(
            v.why,
            [
                "content: /lib/apk/db/installed",
                "config: user",
                "inputs changed: images/Dockerfile-alpine changed",
                "base moved: alpine:3.23 sha256:aaa -> sha256:bbb",
                "packages: openssl 3.1.4-r1 -> 3.1.4-r5 (+1 more)",
            ]
        );
    }

    #[test]
    fn published_packages_that_cannot_be_read_only_explain() {
        let packages = vec![apk("musl", "1")];
        let mut p = published(packages.clone(), "sha256:aaa");
        p.packages = Err("/lib/apk/db/installed: truncated".into());
        let changed = content(&[("/etc/os-release", "2"), ("/lib/apk/db/installed", "1")]);
        let v = verdict(&p, &changed, &on("sha256:aaa"), &packages, &Inputs::Unchanged);
        assert!(v.publish);
        assert_eq!(
            v.why,
            [
                "content: /etc/os-release",
                "packages: cannot read the published image's (/lib/apk/db/installed: truncated)"
            ]
        );
    }

    #[test]
    fn a_published_image_that_cannot_be_read_or_whose_tags_disagree_is_published_again() {
        let packages = vec![apk("musl", "1")];
        let p = Published::unreadable("sha256:pub", "no matching manifest for linux/amd64".into());
        let v = verdict(&p, &Content::default(), &on("sha256:aaa"), &packages, &Inputs::Unchanged);
        assert!(v.publish);
        assert_eq!(
            v.why,
            ["the published image cannot be read to compare (no matching manifest for linux/amd64)"]
        );
        let mut p = published(packages.clone(), "sha256:aaa");
        p.tags_disagree = Some("latest holds sha256:old, not v1's sha256:pub".into());
        let v = verdict(&p, &p.content, &on("sha256:aaa"), &packages, &Inputs::Unchanged);
        assert!(v.publish);
        assert_eq!(v.why, ["tags: latest holds sha256:old, not v1's sha256:pub"]);
    }

    #[test]
    fn a_base_renamed_but_the_same_image_has_not_moved() {
        let packages = vec![apk("musl", "1")];
        let p = published(packages.clone(), "sha256:aaa");
        let renamed = Base { name: "localhost:5000/alpine:3.23".into(), digest: "sha256:aaa".into() };
        let origins = Origins { base: Some(renamed), sources: Vec::new() };
        let v = verdict(&p, &p.content, &origins, &packages, &Inputs::Unchanged);
        assert_eq!(v.why.len(), 1, "{:?}", v.why);
    }

    #[test]
    fn a_moved_build_stage_image_explains_a_change() {
        let packages = vec![apk("musl", "1")];
        let mut p = published(packages.clone(), "sha256:aaa");
        p.sources = Some(parse_sources("golang:1.22@sha256:g1 tool:1@sha256:t1"));
        let mut now = on("sha256:aaa");
        now.sources = parse_sources("golang:1.22@sha256:g2 tool:1@sha256:t1");
        assert_eq!(now.sources_label(), "golang:1.22@sha256:g2 tool:1@sha256:t1");
        let rebuilt = content(&[("/etc/os-release", "1"), ("/lib/apk/db/installed", "1"), ("/tool", "v2")]);
        let v = verdict(&p, &rebuilt, &now, &packages, &Inputs::Unchanged);
        assert!(v.publish);
        assert_eq!(v.why, ["content: /tool", "build image moved: golang:1.22 sha256:g1 -> sha256:g2"]);
        p.sources = None;
        let v = verdict(&p, &rebuilt, &now, &packages, &Inputs::Unchanged);
        assert_eq!(v.why[1], "build images: the published image does not record them");
    }

    #[test]
    fn a_first_publish_and_what_cannot_be_told() {
        let packages = vec![apk("musl", "1")];
        let mut p = published(packages.clone(), "sha256:aaa");
        p.base = None;
        let v = verdict(
            &p,
            &content(&[("/etc/os-release", "9"), ("/lib/apk/db/installed", "1")]),
            &on("sha256:aaa"),
            &packages,
            &Inputs::Unknown("no revision label".into()),
        );
        assert!(v.publish);
        assert_eq!(
            v.why,
            [
                "content: /etc/os-release",
                "inputs: cannot tell (no revision label)",
                "base: the published image does not record its base"
            ]
        );
        let first = judge(
            "r/a:v1",
            &Origins::default(),
            &packages,
            &Content::default(),
            None,
            &Inputs::Unchanged,
            false,
        );
        assert!(first.publish);
        assert_eq!(first.why, ["first publish: nothing is published as r/a:v1"]);
    }
}
