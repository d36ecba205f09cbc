//! Images built for several platforms: one build per platform, each on its parents' build for
//! that platform and on its outside bases pinned to that platform's digest (the engine's store
//! keeps one image per tag, so two platforms of `alpine:3.23` would replace each other), then
//! published as one index of the platforms' manifests.

use crate::model::inventory::Image;
use crate::model::oci;
use crate::model::platform::Platform;
use crate::plan::RunNames;

/// The builds an image gets: one per platform it names, or one for the engine's own.
pub fn variants(image: &Image) -> Vec<Option<Platform>> {
    if image.platforms.is_empty() {
        return vec![None];
    }
    image.platforms.iter().filter_map(|p| Platform::parse(p)).map(Some).collect()
}

/// What the run calls one build: the image's name, with the platform when it has several.
pub fn key(image: &str, platform: Option<&Platform>) -> String {
    match platform {
        Some(p) => format!("{image}@{p}"),
        None => image.to_string(),
    }
}

/// A build's key as a file or folder name of the run's own (`base-linux-arm64`).
pub fn file_name(key: &str) -> String {
    key.replace(['@', '/'], "-")
}

/// `repo:tag` of one platform's build: `repo:tag-linux-arm64`.
pub fn suffixed(reference: &str, platform: Option<&Platform>) -> String {
    match platform {
        Some(p) => format!("{reference}-{}", p.tag_suffix()),
        None => reference.to_string(),
    }
}

/// An image from outside the inventory, pinned for one platform: the run asks its registry
/// for that platform's manifest, pulls it by digest and names it `local` for the builds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pin {
    pub base: String,
    pub platform: Platform,
    pub local: String,
    /// The ARG that names the base (`FROM ${BASE}`), given `local`; None when the FROM line
    /// names the base and is rewritten.
    pub arg: Option<String>,
}

impl Pin {
    pub fn new(run: &RunNames, base: &str, platform: &Platform) -> Pin {
        // A repository path component is lowercase letters and digits joined by `-`.
        let mut name = String::new();
        for c in base.chars() {
            match c.is_ascii_alphanumeric() {
                true => name.push(c.to_ascii_lowercase()),
                false if !name.ends_with('-') => name.push('-'),
                false => {}
            }
        }
        // The base's own digest keeps two bases that read alike apart (`a/b:1`, `a/b-1`).
        let name = format!("{}-{}", name.trim_matches('-'), &oci::digest_of(base.as_bytes())[7..15]);
        let local = format!("xtask-pin-{}/{name}:{}", run.token, platform.tag_suffix());
        Pin { base: base.to_string(), platform: platform.clone(), local, arg: None }
    }
}

/// The build arguments BuildKit sets itself, for the legacy builder: the target platform's,
/// so that a Dockerfile can fetch the right binary, and the build machine's (`host`), for a
/// stage `FROM --platform=$BUILDPLATFORM`.
pub fn target_args(platform: &Platform, host: Option<&Platform>) -> Vec<(String, String)> {
    let of = |prefix: &str, p: &Platform| {
        vec![
            (format!("{prefix}PLATFORM"), p.to_string()),
            (format!("{prefix}OS"), p.os.clone()),
            (format!("{prefix}ARCH"), p.arch.clone()),
            (format!("{prefix}VARIANT"), p.variant.clone()),
        ]
    };
    let mut args = of("TARGET", platform);
    args.extend(host.map(|h| of("BUILD", h)).unwrap_or_default());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_one_platform_s_build() {
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(key("team/base", Some(&arm)), "team/base@linux/arm64");
        assert_eq!(key("base", None), "base");
        assert_eq!(suffixed("r/base:run-1", Some(&arm)), "r/base:run-1-linux-arm64");
        let run = RunNames { token: "t0".into(), dir: "/tmp/x".into() };
        let pin = Pin::new(&run, "registry.access.redhat.com/ubi8/Python-312:latest", &arm);
        assert_eq!(
            pin.local,
            "xtask-pin-t0/registry-access-redhat-com-ubi8-python-312-latest-43953873:linux-arm64"
        );
        // Two bases that read alike get names of their own.
        assert_ne!(Pin::new(&run, "r/a/base:1", &arm).local, Pin::new(&run, "r/a/base-1", &arm).local);
        let args =
            target_args(&Platform::parse("linux/arm/v7").unwrap(), Platform::parse("linux/amd64").as_ref());
        assert_eq!(args[0], ("TARGETPLATFORM".to_string(), "linux/arm/v7".to_string()));
        assert_eq!(args[3], ("TARGETVARIANT".to_string(), "v7".to_string()));
        assert_eq!(args[4], ("BUILDPLATFORM".to_string(), "linux/amd64".to_string()));
        assert_eq!(args[6], ("BUILDARCH".to_string(), "amd64".to_string()));
    }
}
