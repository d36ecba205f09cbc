//! Runs a plan, phase by phase: every build, then every tag, then every push. A failure stops
//! the run where it is, and the error says what was and was not pushed.

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
}

pub fn execute(docker: &Docker, plan: &Plan, log: &Log) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for (i, step) in plan.builds.iter().enumerate() {
        let title = format!("build {} ({}/{})", step.image, i + 1, plan.builds.len());
        if let Err(e) = log.group(&title, || run_step(docker, step, log)) {
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
    let mut current: Option<&str> = None;
    for step in &plan.pushes {
        if current != Some(step.image.as_str()) {
            current = Some(&step.image);
            log.info(&format!("==> push {}", step.image));
        }
        log.info(&step.command.display(docker.program()));
        match docker.push(&step.command) {
            Ok(digest) => report.pushed.push(Pushed {
                image: step.image.clone(),
                reference: step.reference.clone(),
                digest,
            }),
            Err(e) => bail!("{}: {e:#}. {}", step_name(step), push_state(plan, &report)),
        }
    }
    Ok(report)
}

fn run_step(docker: &Docker, step: &Step, log: &Log) -> anyhow::Result<()> {
    log.info(&step.command.display(docker.program()));
    docker.run(&step.command)
}

fn step_name(step: &Step) -> String {
    format!("{} of {} ({}) failed", step.action, step.image, step.reference)
}

/// Which images hold all their tags in the registry and which do not, after a failed push.
fn push_state(plan: &Plan, report: &Report) -> String {
    let mut full = Vec::new();
    let mut partial = Vec::new();
    let mut images: Vec<&str> = plan.pushes.iter().map(|s| s.image.as_str()).collect();
    images.dedup();
    for image in images {
        let wanted = plan.pushes.iter().filter(|s| s.image == image).count();
        let done = report.pushed.iter().filter(|p| p.image == image).count();
        if done == wanted {
            full.push(image);
        } else {
            partial.push(image);
        }
    }
    let list = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    format!("Fully pushed: {}; not fully pushed: {}", list(&full), list(&partial))
}
