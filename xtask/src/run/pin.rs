//! Pins an outside base for one platform: its registry is asked for the base's index, the
//! platform's manifest is pulled by digest and named for the builds of that platform. The
//! engine's store keeps one image per tag, so two platforms of one tag would replace each
//! other; a name per platform, and the digest, keep each build on its own.

use anyhow::{bail, Context};

use crate::model::oci::{base_location, index_members, split_reference};
use crate::model::step::Step;
use crate::plan::Pin;
use crate::run::Live;
use crate::sys::registry::Tag;

impl Live<'_> {
    pub(super) fn pin_base(&self, pin: &Pin) -> anyhow::Result<String> {
        // A base this engine holds and no registry does (it was never pulled or pushed): asking
        // a registry for it would only wait on retries.
        let local =
            self.docker.capture(&["image", "inspect", "--format", "{{json .RepoDigests}}", &pin.base])?;
        if local.success && local.stdout.trim() == "[]" {
            bail!(
                "{} exists only on this engine: a base of an image built for several platforms must be \
                 published in a registry, for each of them",
                pin.base
            );
        }
        let (host, path, tag) = base_location(&pin.base);
        let registry = (self.connect)(&host).with_context(|| {
            format!("asking {host} for {}, the base of a build for several platforms", pin.base)
        })?;
        let answer = registry
            .tag(&path, &tag)
            .map_err(|e| anyhow::anyhow!("cannot ask {host} for {}: {e}", pin.base))?;
        let Tag::Present { digest, manifest, .. } = answer else {
            bail!(
                "{} is not in its registry ({host}): a base of an image built for several platforms must be \
                 published there, for each of them",
                pin.base
            );
        };
        let platform_digest = match index_members(&manifest.body) {
            Some(members) => {
                let found = members.iter().find(|(p, _)| pin.platform.matches(&p.os, &p.arch, &p.variant));
                match found {
                    Some((_, d)) => d.clone(),
                    None => {
                        let offered: Vec<String> = members.iter().map(|(p, _)| p.to_string()).collect();
                        bail!(
                            "{} is not published for {} (it is for {}): pick a base that is, or drop {} from \
                             the image's platforms",
                            pin.base,
                            pin.platform,
                            offered.join(", "),
                            pin.platform
                        );
                    }
                }
            }
            // One manifest: its platform is its configuration's, read once it is pulled.
            None => digest,
        };
        let pinned = format!("{}@{platform_digest}", split_reference(&pin.base).0);
        let mut transcript = String::new();
        let pulled =
            self.docker.pull_step(&Step::pull_for(&pinned, &pin.platform.to_string()), &mut transcript);
        self.log
            .group(&format!("pull {} for {}", pin.base, pin.platform), || self.log.passthrough(&transcript));
        pulled?;
        let (os, arch, variant) = self.docker.platform_of(&pinned)?;
        if !pin.platform.matches(&os, &arch, &variant) {
            let is =
                [os, arch, variant].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("/");
            bail!(
                "{} is an image for {is} only, not for {}: pick a base published for every platform the image \
                 is built for",
                pin.base,
                pin.platform
            );
        }
        self.docker.run(&Step::tag(&pinned, &pin.local))?;
        Ok(platform_digest)
    }
}
