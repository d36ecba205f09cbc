//! Runs a plan, phase by phase: every build, then every tag, then every push. A failure stops
//! the run where it is, and the error says what was and was not pushed.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::bail;

use crate::docker::Docker;
use crate::gha::Log;
use crate::plan::{Plan, Step};

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

/// Runs `plan`; the report holds what was done even when the run failed part way.
pub fn execute(docker: &Docker, plan: &Plan, log: &Log) -> (Report, anyhow::Result<()>) {
    let mut report = Report::default();
    let result = run_phases(docker, plan, log, &mut report);
    (report, result)
}

fn run_phases(docker: &Docker, plan: &Plan, log: &Log, report: &mut Report) -> anyhow::Result<()> {
    for (i, step) in plan.builds.iter().enumerate() {
        let title = format!("build {} ({}/{})", step.image, i + 1, plan.builds.len());
        let result = report.time(&step.image, || log.group(&title, || run_step(docker, step, log)));
        if let Err(e) = result {
            let not_built: Vec<&str> = plan.builds[i..].iter().map(|s| s.image.as_str()).collect();
            bail!("{}: {e:#}. Nothing was pushed; not built: {}", step_name(step), not_built.join(", "));
        }
        report.built.push(step.image.clone());
    }
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
    let (full, partial): (Vec<&str>, Vec<&str>) = pushed_images(plan).into_iter().partition(|image| {
        let wanted = plan.pushes.iter().filter(|s| s.image == *image).count();
        report.pushed.iter().filter(|p| p.image == *image).count() == wanted
    });
    let list = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    format!("Fully pushed: {}; not fully pushed: {}", list(&full), list(&partial))
}
