//! What is published under an image's version tag, asked of the registry and the engine for
//! the comparison of a rebuilt image with it (model/rebuild.rs judges): its manifest digest
//! (registry), its files, configuration, labels and packages (the image pulled by that digest
//! and read like a built one), and whether the inputs changed since its revision (git).

use crate::model::filesystem::Content;
use crate::model::oci::{api_name, index_members, split_reference};
use crate::model::rebuild::{self, Base, Inputs, Origins, Published, Verdict};
use crate::model::step::Step;
use crate::plan::Comparison;
use crate::run::inspect::{packages_in, read_files, tree};
use crate::run::{Checked, Live};
use crate::sys::registry::Tag;

/// The images whose inputs changed since a revision, each with the reason.
pub type ChangedImages = Vec<(String, String)>;

/// Which images' inputs differ from a revision, each with the reason: the input rules of
/// `--changed-since`, against the revision itself (cmd/common.rs).
pub type InputsSince<'a> = dyn Fn(&str) -> anyhow::Result<ChangedImages> + Sync + 'a;

impl Live<'_> {
    pub(super) fn compare_with_published(
        &self,
        c: &Comparison,
        origins: &Origins,
        built: &Checked,
        force: bool,
    ) -> anyhow::Result<Verdict> {
        let (published, index, platforms_changed) = self.published(c)?;
        let inputs = match published.as_ref().map(|p| p.revision.as_deref()) {
            None => Inputs::Unknown("nothing published".into()),
            Some(None) => Inputs::Unknown(format!("the published image has no {} label", rebuild::REVISION)),
            Some(Some(revision)) => self.inputs_since(&c.of, revision),
        };
        let packages = &built.packages.packages;
        let mut verdict = rebuild::judge(
            &c.published,
            origins,
            packages,
            &built.content,
            published.as_ref(),
            &inputs,
            force,
        );
        verdict.index = index;
        verdict.platforms_changed = platforms_changed;
        Ok(verdict)
    }

    /// For one platform of several: the digest of its manifest in the index `digest` names
    /// (`body`), and how the index's platforms differ from those built. An image published for
    /// one platform only, or without this one, cannot be compared: it counts as changed.
    fn member(&self, c: &Comparison, digest: &str, body: &str) -> Result<(String, Option<String>), String> {
        let Some(platform) = &c.platform else {
            return match index_members(body) {
                Some(members) => {
                    let published: Vec<String> = members.iter().map(|(p, _)| p.to_string()).collect();
                    Err(format!(
                        "it is published as an index of {}, and is now built for the engine's own platform",
                        published.join(", ")
                    ))
                }
                None => Ok((digest.to_string(), None)),
            };
        };
        let Some(members) = index_members(body) else {
            return Err(format!(
                "it is published for one platform, not as an index of {}",
                c.platforms_text()
            ));
        };
        let published: Vec<String> = members.iter().map(|(p, _)| p.to_string()).collect();
        let Some((_, child)) = members.iter().find(|(p, _)| platform.matches(&p.os, &p.arch, &p.variant))
        else {
            return Err(format!("{platform} is added (published: {})", published.join(", ")));
        };
        let dropped: Vec<&String> =
            published.iter().filter(|p| !c.platforms.iter().any(|b| &b.to_string() == *p)).collect();
        let differ = (!dropped.is_empty()).then(|| {
            format!(
                "{} dropped (built: {})",
                dropped.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                c.platforms_text()
            )
        });
        Ok((child.clone(), differ))
    }

    /// The published image under `c.published` (for one platform of several, that platform's
    /// in the index), pulled by its digest and read; None when the registry holds nothing under
    /// that tag. Beside it, the index's digest.
    fn published(
        &self,
        c: &Comparison,
    ) -> anyhow::Result<(Option<Published>, Option<String>, Option<String>)> {
        let registry = self
            .registry
            .ok_or_else(|| anyhow::anyhow!("internal error: a comparison without a registry to ask"))?;
        let (_, path, tag) = api_name(&c.published);
        let (digest, body) = match registry.tag(&path, &tag) {
            Ok(Tag::Absent) => return Ok((None, None, None)),
            Ok(Tag::Present { digest, manifest, .. }) => (digest, manifest.body),
            Err(e) => anyhow::bail!("cannot ask the registry about {}: {e}", c.published),
        };
        let index = c.platform.is_some().then(|| digest.clone());
        // `latest` must hold what the version tag holds: a run that failed half-way, or a hand,
        // may have left it behind, and only publishing again puts it right.
        let tags_disagree = match registry.tag(&path, "latest") {
            Ok(Tag::Present { digest: latest, .. }) if latest == digest => None,
            Ok(Tag::Present { digest: latest, .. }) => {
                Some(format!("latest holds {latest}, not what {tag} holds ({digest})"))
            }
            Ok(Tag::Absent) => Some(format!("latest is missing beside {tag}")),
            Err(e) => {
                anyhow::bail!("cannot ask the registry about {}:latest: {e}", split_reference(&c.published).0)
            }
        };
        let (digest, platforms_differ) = match self.member(c, &digest, &body) {
            Ok(found) => found,
            Err(why) => return Ok((Some(Published::unreadable(&digest, why)), index, None)),
        };
        let pinned = by_digest(&c.published, &digest);
        // An engine that holds it already (an earlier pull, a self-hosted runner) is asked as
        // it is; what this run pulls, it removes again once it is no longer needed (`release`).
        if self.docker.id_and_labels(&pinned).is_err() {
            let mut transcript = String::new();
            let pulled = self.docker.pull(&pinned, &mut transcript);
            self.log.group(&format!("pull the published {} to compare ({pinned})", c.image), || {
                self.log.passthrough(&transcript)
            });
            // The registry holds it, but this engine cannot have it (another platform, say):
            // what cannot be read counts as a change; it must not stop every later run.
            if let Err(e) = pulled {
                if crate::sys::interrupt::requested() {
                    return Err(e);
                }
                return Ok((Some(Published::unreadable(&digest, format!("{e:#}"))), index, platforms_differ));
            }
            self.pulled.lock().unwrap_or_else(|p| p.into_inner()).insert(c.image.clone(), pinned.clone());
        }
        let (config, files) = read_files(self.docker, &pinned, &[])?;
        let labels = config.labels.clone().unwrap_or_default();
        // A database this tool cannot read (damaged, or read more strictly since) makes the
        // comparison unable to tell, which publishes; it must not stop every later run.
        let packages = packages_in(self.docker, &pinned, &files)
            .map(|(found, _)| found.packages)
            .map_err(|e| format!("{e:#}"));
        let label = |key: &str| labels.get(key).filter(|v| !v.is_empty()).cloned();
        let base = match (label(rebuild::BASE_NAME), label(rebuild::BASE_DIGEST)) {
            (Some(name), Some(digest)) => Some(Base { name, digest }),
            _ => None,
        };
        Ok((
            Some(Published {
                digest,
                unique_tag: label(rebuild::REF_NAME),
                revision: label(rebuild::REVISION),
                base,
                sources: label(rebuild::SOURCES).map(|l| rebuild::parse_sources(&l)),
                packages,
                content: Content { files: tree(&files), config },
                unreadable: None,
                tags_disagree,
            }),
            index,
            platforms_differ,
        ))
    }

    fn inputs_since(&self, image: &str, revision: &str) -> Inputs {
        let Some(since) = self.inputs_since else {
            return Inputs::Unknown("the inventory is not in a git repository".into());
        };
        let mut cache = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let answer = cache
            .entry(revision.to_string())
            .or_insert_with(|| since(revision).map_err(|e| format!("{e:#}")))
            .clone();
        match answer {
            Ok(changed) => match changed.into_iter().find(|(name, _)| name == image) {
                Some((_, reason)) => Inputs::Changed(reason),
                None => Inputs::Unchanged,
            },
            Err(e) => Inputs::Unknown(e),
        }
    }

    /// Removes the published image of `c` if this run pulled it: the run's own name for it (an
    /// adopted parent) keeps it until the run ends, and nothing else needs it.
    pub(super) fn release_published(&self, c: &Comparison) {
        let pulled = self.pulled.lock().unwrap_or_else(|p| p.into_inner()).remove(&c.image);
        if let Some(pinned) = pulled {
            if let Err(e) = self.docker.run(&Step::remove(&pinned)) {
                self.log.warning(&format!("could not remove {pinned}, pulled to compare {}: {e:#}", c.image));
            }
        }
    }

    /// Gives `run_reference` the published image pinned by `digest`; returns its id.
    pub(super) fn adopt_published(
        &self,
        c: &Comparison,
        digest: &str,
        run_reference: &str,
    ) -> anyhow::Result<String> {
        let pinned = by_digest(&c.published, digest);
        let built = self.docker.id_and_labels(run_reference)?.0;
        self.docker.run(&Step::tag(&pinned, run_reference))?;
        let adopted = self.docker.id_and_labels(run_reference)?.0;
        // The image this run built lost its only name to the published one: it goes now, with
        // the layers only it used, rather than staying in the engine without a name.
        if built != adopted {
            if let Err(e) = self.docker.run(&Step::remove(&built)) {
                self.log
                    .warning(&format!("could not remove {built}, the unchanged build of {}: {e:#}", c.image));
            }
        }
        Ok(adopted)
    }
}

/// `repository@digest` of a tagged reference.
fn by_digest(reference: &str, digest: &str) -> String {
    format!("{}@{digest}", split_reference(reference).0)
}
