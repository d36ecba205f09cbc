//! Runs a plan, phase by phase: every build, then every tag, then every push. A failure stops
//! the run where it is, and the error says what was and was not pushed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::bail;

use crate::docker::Docker;
use crate::gha::Log;
use crate::interrupt::Interrupted;
use crate::plan::{Plan, Step, Verification};
use crate::verify::Violation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub image: String,
    pub reference: String,
    pub digest: Option<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub built: Vec<String>,
    pub pushed: Vec<Pushed>,
    /// Wall time spent building and pushing each image.
    pub seconds: BTreeMap<String, f64>,
}

impl Report {
    fn time<T>(&mut self, image: &str, work: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = work();
        *self.seconds.entry(image.to_string()).or_default() += start.elapsed().as_secs_f64();
        result
    }

    /// The digest the registry answered for `image`'s pushes (all three tags share it).
    pub fn digest(&self, image: &str) -> Option<&str> {
        self.pushed.iter().find(|p| p.image == image).and_then(|p| p.digest.as_deref())
    }
}

/// Whether the build phase stops at the first failure or builds on to find every failure.
/// Either way nothing is tagged or pushed unless every build succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBuildFailure {
    #[default]
    Stop,
    KeepGoing,
}

/// Runs `plan`; the report holds what was done even when the run failed part way.
pub fn execute(
    docker: &Docker,
    plan: &Plan,
    log: &Log,
    on_failure: OnBuildFailure,
) -> (Report, anyhow::Result<()>) {
    let mut report = Report::default();
    let result = build_all(docker, plan, log, on_failure, &mut report)
        .and_then(|()| verify_all(docker, plan, log, &mut report))
        .and_then(|()| tag_and_push(docker, plan, log, &mut report));
    (report, result)
}

fn build_all(
    docker: &Docker,
    plan: &Plan,
    log: &Log,
    on_failure: OnBuildFailure,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    // Images that failed or were skipped: what depends on them cannot build.
    let mut not_built: BTreeSet<&str> = BTreeSet::new();
    for (i, step) in plan.builds.iter().enumerate() {
        if let Some(parent) = step.needs.iter().find(|p| not_built.contains(p.as_str())) {
            skipped.push(format!("{} (needs {parent})", step.image));
            not_built.insert(&step.image);
            continue;
        }
        let title = format!("build {} ({}/{})", step.image, i + 1, plan.builds.len());
        let result = report.time(&step.image, || log.group(&title, || run_step(docker, step, log)));
        match result {
            Ok(()) => report.built.push(step.image.clone()),
            Err(e)
                if on_failure == OnBuildFailure::KeepGoing && e.downcast_ref::<Interrupted>().is_none() =>
            {
                log.error(&format!("{}: {e:#}", step_name(step)));
                failed.push((step.image.clone(), format!("{e:#}")));
                not_built.insert(&step.image);
            }
            Err(e) => {
                let not_built: Vec<&str> = plan.builds[i..].iter().map(|s| s.image.as_str()).collect();
                bail!("{}: {e:#}. Nothing was pushed; not built: {}", step_name(step), not_built.join(", "));
            }
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let failures: Vec<String> = failed.iter().map(|(image, e)| format!("{image} ({e})")).collect();
    let mut message =
        format!("{} of {} builds failed: {}", failed.len(), plan.builds.len(), failures.join("; "));
    if !skipped.is_empty() {
        message.push_str(&format!("; not built because a parent failed: {}", skipped.join(", ")));
    }
    bail!("{message}. Nothing was pushed")
}

/// Checks every verification; one failing image stops the run before any tag or push.
fn verify_all(docker: &Docker, plan: &Plan, log: &Log, report: &mut Report) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for v in &plan.verifications {
        let violations = report
            .time(&v.image, || log.group(&format!("verify {}", v.image), || verify_one(docker, v, log)))?;
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(|x| format!("  {}: {x}", v.image)).collect();
            failed.push(list.join("\n"));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    bail!("the hardening baseline is not met, so nothing was pushed:\n{}", failed.join("\n"))
}

/// The rules `v` breaks (empty when it passes).
pub fn verify_one(docker: &Docker, v: &Verification, log: &Log) -> anyhow::Result<Vec<Violation>> {
    let keep = v.spec.files_to_read();
    let (user, files) = docker.image_files(&v.reference, &|path| keep.iter().any(|k| k == path))?;
    let violations = v.spec.check(&user, &files);
    if violations.is_empty() {
        log.info(&format!(
            "{} meets its hardening rules ({} files checked)",
            v.reference,
            files.entries.len()
        ));
    } else {
        for x in &violations {
            log.error(&format!("{}: {x}", v.image));
        }
    }
    Ok(violations)
}

fn tag_and_push(docker: &Docker, plan: &Plan, log: &Log, report: &mut Report) -> anyhow::Result<()> {
    for step in &plan.tags {
        if let Err(e) = run_step(docker, step, log) {
            bail!("{}: {e:#}. Nothing was pushed", step_name(step));
        }
    }
    for image in pushed_images(plan) {
        let steps: Vec<&Step> = plan.pushes.iter().filter(|s| s.image == image).collect();
        let result = report.time(image, || {
            log.group(&format!("push {image}"), || {
                let mut done = Vec::new();
                for step in steps {
                    log.info(&step.command.display(docker.program()));
                    match docker.push(&step.command) {
                        Ok(digest) => done.push(Pushed {
                            image: step.image.clone(),
                            reference: step.reference.clone(),
                            digest,
                        }),
                        Err(e) => return (done, Err((step, e))),
                    }
                }
                (done, Ok(()))
            })
        });
        let (done, outcome) = result;
        report.pushed.extend(done);
        if let Err((step, e)) = outcome {
            bail!("{}: {e:#}. {}", step_name(step), push_state(plan, report));
        }
    }
    Ok(())
}

fn run_step(docker: &Docker, step: &Step, log: &Log) -> anyhow::Result<()> {
    log.info(&step.command.display(docker.program()));
    docker.run(&step.command)
}

fn step_name(step: &Step) -> String {
    format!("{} of {} ({}) failed", step.action, step.image, step.reference)
}

/// Images with push steps, in plan order.
fn pushed_images(plan: &Plan) -> Vec<&str> {
    let mut images: Vec<&str> = plan.pushes.iter().map(|s| s.image.as_str()).collect();
    images.dedup();
    images
}

/// Which images hold all their tags in the registry and which do not, after a failed push.
fn push_state(plan: &Plan, report: &Report) -> String {
    let mut full = Vec::new();
    let mut partial = Vec::new();
    for image in pushed_images(plan) {
        let wanted = plan.pushes.iter().filter(|s| s.image == image).count();
        let done = report.pushed.iter().filter(|p| p.image == image).count();
        match done {
            _ if done == wanted => full.push(image.to_string()),
            0 => partial.push(image.to_string()),
            _ => partial.push(format!("{image} ({done} of {wanted} tags)")),
        }
    }
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    format!("Fully pushed: {}; not fully pushed: {}", list(&full), list(&partial))
}
