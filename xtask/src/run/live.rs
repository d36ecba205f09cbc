//! The world of a real run: the container CLI and the registry, driven by the scheduler
//! through `World`.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::bail;

use crate::model::oci::{api_name, image_index, Member, OCI_INDEX};
use crate::model::platform::Platform;
use crate::model::rebuild::{Origins, Verdict};
use crate::model::step::Step;
use crate::plan::{Build, Comparison, Pin, Publication, Target, Verification};
use crate::run::compare::{ChangedImages, InputsSince};
use crate::run::{inspect, lock, preflight, Built, Checked, Pushed, Transcript, World};
use crate::sys::docker::{Docker, StoppedByTimeLimit, REFUSED_PUSH};
use crate::sys::gha::Log;
use crate::sys::interrupt;
use crate::sys::registry::{Manifest, Registry, Tag, Unanswered};
use crate::sys::timing;

/// The world of a real run: the container CLI, and the registry it pushes to.
pub struct Live<'a> {
    pub docker: &'a Docker,
    pub registry: Option<&'a Registry>,
    pub log: Log,
    /// Where the per-reference locks live (lock.rs).
    pub lock_dir: std::path::PathBuf,
    /// The manifest each pushed reference was read back with: what its image's later tags are
    /// given, without asking the registry for it again.
    pub read_back: Mutex<HashMap<String, Manifest>>,
    /// Which images' inputs changed since a revision (None outside a git repository).
    pub inputs_since: Option<&'a InputsSince<'a>>,
    /// Its answers, per revision.
    pub changes: Mutex<HashMap<String, Result<ChangedImages, String>>>,
    /// The published images this run pulled to compare with, by image: removed once compared.
    pub pulled: Mutex<HashMap<String, String>>,
    /// A client of another registry (a base's), asked for what it holds.
    pub connect: &'a (dyn Fn(&str) -> anyhow::Result<Registry> + Sync),
}

impl Live<'_> {
    fn registry(&self) -> anyhow::Result<&Registry> {
        self.registry
            .ok_or_else(|| anyhow::anyhow!("internal error: a push without a registry to read it back from"))
    }
}

impl World for Live<'_> {
    fn program(&self) -> &str {
        self.docker.program()
    }

    fn check_absent(&self, references: &[String], jobs: usize) -> anyhow::Result<()> {
        if references.is_empty() {
            return Ok(());
        }
        timing::span("registry", "", || preflight::check_unique_tags_free(self.registry()?, references, jobs))
    }

    fn pull(&self, reference: &str) -> anyhow::Result<()> {
        let mut transcript = String::new();
        let result = self.docker.pull(reference, &mut transcript);
        self.log.passthrough(&transcript);
        result
    }

    fn build(&self, build: &Build, live: bool) -> anyhow::Result<Built> {
        if let Some(dir) = build.iidfile.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&build.iidfile);
        for (path, text) in &build.copies {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, text)?;
        }
        let out = timing::span("build", &build.image, || self.docker.build(&build.step, live))?;
        let id = std::fs::read_to_string(&build.iidfile)
            .ok()
            .map(|t| crate::sys::docker::normalize_id(&t))
            .filter(|t| !t.is_empty());
        let tail = cause(if out.stderr.trim().is_empty() { &out.stdout } else { &out.stderr });
        let status = match out.timed_out {
            Some(limit) => format!(
                "did not finish within {}s and was stopped (XTASK_BUILD_TIMEOUT raises the limit)",
                limit.as_secs()
            ),
            None => format!("exited with {}", out.status),
        };
        Ok(Built { success: out.success, status, output: out.transcript(), tail, id })
    }

    fn base_digest(&self, reference: &str) -> anyhow::Result<String> {
        let mut transcript = String::new();
        let digest = timing::span("bases", "", || self.docker.base_digest(reference, &mut transcript));
        self.log.passthrough(&transcript);
        digest
    }

    fn pin(&self, pin: &Pin) -> anyhow::Result<String> {
        timing::span("bases", &pin.base, || self.pin_base(pin))
    }

    fn compare(
        &self,
        c: &Comparison,
        origins: &Origins,
        built: &Checked,
        force: bool,
    ) -> anyhow::Result<Verdict> {
        timing::span("comparison", &c.image, || self.compare_with_published(c, origins, built, force))
    }

    fn adopt(&self, c: &Comparison, digest: &str, run_reference: &str) -> anyhow::Result<String> {
        self.adopt_published(c, digest, run_reference)
    }

    fn release(&self, c: &Comparison) {
        self.release_published(c)
    }

    fn verify(&self, v: &Verification) -> anyhow::Result<Checked> {
        inspect::inspect(self.docker, &v.image, &v.reference, v.spec.as_ref(), v.platform.as_ref())
    }

    fn publish(
        &self,
        p: &Publication,
        t: &Target,
        id: &str,
        transcript: &mut Transcript,
    ) -> anyhow::Result<Option<Pushed>> {
        let Some(push) = &t.push else {
            self.tag_locally(t, transcript)?;
            return Ok(None);
        };
        timing::span("push", &p.image, || self.send_target(p, t, push, id, transcript))
    }

    fn clean_up(&self, step: &Step) -> anyhow::Result<()> {
        self.docker.run(step).map(|_| ())
    }
}

impl Live<'_> {
    /// Gives target `t` its local name, when it has one (an index has none).
    fn tag_locally(&self, t: &Target, transcript: &mut Transcript) -> anyhow::Result<()> {
        let Some(tag) = &t.tag else { return Ok(()) };
        transcript.line(&tag.command().display(self.program()));
        self.docker.run(tag).map(|_| ())
    }

    /// Pushes target `t` (locked against other runs on this machine, its unique tag asked
    /// about once more), reads it back, and gives it its local name.
    fn send_target(
        &self,
        p: &Publication,
        t: &Target,
        push: &Step,
        id: &str,
        transcript: &mut Transcript,
    ) -> anyhow::Result<Option<Pushed>> {
        let registry = self.registry()?;
        let log = &self.log;
        let _held = lock::lock(&self.lock_dir, &t.reference, || {
            log.info(&format!("waiting: another run on this machine is pushing {}", t.reference));
        })?;
        if t.immutable {
            preflight::must_be_absent(
                registry,
                &t.reference,
                &format!("None of the tags of {} was pushed", p.image),
            )?;
        }
        // Local tags tell the truth: `docker push` needs the unique tag's local name first, and
        // loses it again if the registry does not end up holding it; the version tag and
        // `latest` are made locally only once the registry holds them, so a local `latest`
        // never runs ahead of the registry's.
        let pushed_by_name = t.retag_of.is_none() && t.tag.is_some();
        if pushed_by_name {
            self.tag_locally(t, transcript)?;
        }
        let result = self.send_and_read_back(p, t, push, registry, id, transcript);
        match (&result, pushed_by_name) {
            (Err(_), true) => {
                let untag = Step::remove(&t.reference);
                transcript.line(&format!(
                    "{} (the registry does not hold it)",
                    untag.command().display(self.program())
                ));
                if let Err(e) = self.docker.run(&untag) {
                    self.log
                        .warning(&format!("{} is left in the engine, though not pushed: {e:#}", t.reference));
                }
            }
            (Ok(_), false) => {
                // The registry holds it: a local name that could not be made is only a warning.
                if let Err(e) = self.tag_locally(t, transcript) {
                    self.log.warning(&format!("{} is pushed, but not tagged locally: {e:#}", t.reference));
                }
            }
            _ => {}
        }
        result
    }
}

impl Live<'_> {
    /// Sends target `t` (a push, or a manifest PUT for a later tag) and reads it back: the
    /// registry must hold the image `id` under it.
    fn send_and_read_back(
        &self,
        p: &Publication,
        t: &Target,
        push: &Step,
        registry: &Registry,
        id: &str,
        transcript: &mut Transcript,
    ) -> anyhow::Result<Option<Pushed>> {
        let (_, path, tag) = api_name(&t.reference);
        let sent = self.send(t, push, registry, transcript);
        let (reported, failed) = match sent {
            Ok(reported) => (reported, None),
            Err(failure) => (None, Some(failure)),
        };
        let answer = registry.tag(&path, &tag);
        let holds_ours = |config: &Option<String>, digest: &str| {
            config.as_deref() == Some(id)
                || digest == id
                || (config.is_none() && reported.as_deref() == Some(digest))
        };
        // A send that failed, stopped midway above all (Ctrl-C, a time limit, no answer), may
        // have been finished anyway by the engine or the registry: what the registry holds
        // decides. This run's image there counts as pushed; otherwise the failure stands.
        if let Some((error, stopped)) = failed {
            match &answer {
                Ok(Tag::Present { digest, config, .. }) if holds_ours(config, digest) => {
                    let note = format!(
                        "{} holds this run's image ({digest}) although sending it failed ({error:#}): counted as pushed",
                        t.reference
                    );
                    transcript.line(&note);
                    self.log.warning(&note);
                }
                _ => return Err(unsent(t, error, stopped || interrupt::requested())),
            }
        }
        let digest = match answer {
            Ok(Tag::Present { digest, config, manifest }) => {
                if !holds_ours(&config, &digest) {
                    bail!(
                        "the registry holds {digest} (image {}) under {}, not the image this run built ({id}): \
                         another push replaced it after this one",
                        config.as_deref().unwrap_or("unknown"),
                        t.reference
                    );
                }
                self.read_back
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(t.reference.clone(), manifest);
                digest
            }
            Ok(Tag::Absent) => bail!("{} was pushed, but the registry says it does not hold it", t.reference),
            Err(e) => bail!("{} was pushed, but reading it back failed: {e}", t.reference),
        };
        transcript.line(&format!("read back {}: {digest}", t.reference));
        Ok(Some(Pushed { image: p.image.clone(), reference: t.reference.clone(), digest }))
    }

    /// Sends target `t`: a push by name, or (for a later tag) a PUT of the manifest the earlier
    /// tag was read back with. The digest docker reports, if any; on failure the error and
    /// whether the send was stopped midway (and so may still have arrived).
    fn send(
        &self,
        t: &Target,
        push: &Step,
        registry: &Registry,
        transcript: &mut Transcript,
    ) -> Result<Option<String>, (anyhow::Error, bool)> {
        let (_, path, tag) = api_name(&t.reference);
        let read_back = |reference: &str| {
            let known = self.read_back.lock().unwrap_or_else(|p| p.into_inner()).get(reference).cloned();
            known.ok_or_else(|| {
                let e =
                    anyhow::anyhow!("internal error: {reference} was not read back before {}", t.reference);
                (e, false)
            })
        };
        let index = match &t.index {
            Some(members) => Some(self.index_of(members, &read_back)?),
            None => None,
        };
        match (&t.retag_of, index) {
            // An index of the platforms' manifests, each as the registry holds it.
            (_, Some(index)) => {
                transcript.line(&format!("registry: PUT {path}:{tag} (an OCI image index of {})", index.1));
                registry.put_manifest(&path, &tag, &index.0).map(Some).map_err(|e| {
                    let stopped = matches!(e, Unanswered::Unreachable(_));
                    (anyhow::anyhow!("pushing the index {} failed: {e}", t.reference), stopped)
                })
            }
            // The registry gives this tag the manifest it holds under the earlier one.
            (Some(source), None) => {
                let manifest = read_back(source)?;
                transcript.line(&format!("registry: PUT {path}:{tag} (the manifest of {source})"));
                registry.put_manifest(&path, &tag, &manifest).map(Some).map_err(|e| {
                    let hint = match e {
                        Unanswered::Unauthorized { .. } | Unanswered::Denied(_) => {
                            format!(". {REFUSED_PUSH}")
                        }
                        _ => String::new(),
                    };
                    let stopped = matches!(e, Unanswered::Unreachable(_));
                    let e =
                        anyhow::anyhow!("giving {} the manifest of {source} failed: {e}{hint}", t.reference);
                    (e, stopped)
                })
            }
            (None, None) => {
                transcript.line(&push.command().display(self.program()));
                let mut output = String::new();
                let pushed = self.docker.push(push.subject(), registry.host(), &mut output);
                transcript.output(&output);
                pushed.map_err(|e| {
                    let stopped = e.downcast_ref::<StoppedByTimeLimit>().is_some();
                    (e, stopped)
                })
            }
        }
    }

    /// The OCI index of `members` (each platform's manifest as read back), and what it lists.
    fn index_of(
        &self,
        members: &[(Platform, String)],
        read_back: &dyn Fn(&str) -> Result<Manifest, Unsent>,
    ) -> Result<(Manifest, String), Unsent> {
        let manifests: Vec<Manifest> = members.iter().map(|(_, r)| read_back(r)).collect::<Result<_, _>>()?;
        let listed: Vec<Member<'_>> = members
            .iter()
            .zip(&manifests)
            .map(|((platform, _), m)| Member { platform, media_type: &m.media_type, body: &m.body })
            .collect();
        let names: Vec<String> = members.iter().map(|(p, _)| p.to_string()).collect();
        Ok((Manifest { media_type: OCI_INDEX.to_string(), body: image_index(&listed) }, names.join(", ")))
    }
}

/// A send that failed: the error, and whether it was stopped midway (and so may still arrive).
type Unsent = (anyhow::Error, bool);

/// The error of a send the registry does not show: a stopped one may still be finished, which
/// for a unique tag uses its build id up.
fn unsent(t: &Target, error: anyhow::Error, stopped: bool) -> anyhow::Error {
    match (stopped, t.immutable) {
        (true, true) => error.context(format!(
            "{} was stopped midway and the engine may still finish it: if {} shows up in the registry, \
             it holds this run's image and this build id is used up",
            t.reference, t.reference
        )),
        (true, false) => error.context(format!(
            "{} was stopped midway and may still be finished: if the registry shows it, it holds this run's image",
            t.reference
        )),
        (false, _) => error,
    }
}

/// What a failed build printed, for the error: without terminal colours, and without docker
/// 28's notice that the legacy builder is deprecated, which stands among the last lines of every
/// legacy build and says nothing about the failure.
fn cause(output: &str) -> String {
    let mut lines = Vec::new();
    let mut in_notice = false;
    for line in output.lines() {
        let line = strip_colours(line);
        if line.starts_with("DEPRECATED: The legacy builder is deprecated") {
            in_notice = true;
            continue;
        }
        if in_notice && (line.starts_with(' ') || line.trim().is_empty()) {
            continue;
        }
        in_notice = false;
        lines.push(line);
    }
    lines.join("\n")
}

/// `line` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_colours(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip `[`, the parameters and the final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_legacy_build_is_explained_by_its_error_not_the_deprecation_notice() {
        let stderr = "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n            \
                      Install the buildx component to build images with BuildKit:\n            \
                      https://docs.docker.com/go/buildx/\n\n\u{1b}[91mcp: can't stat 'x'\n\u{1b}[0mThe command '/bin/sh -c cp x y' returned a non-zero code: 1\n";
        assert_eq!(
            cause(stderr),
            "cp: can't stat 'x'\nThe command '/bin/sh -c cp x y' returned a non-zero code: 1"
        );
    }
}
