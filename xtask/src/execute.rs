//! Runs a plan, phase by phase: builds (up to `jobs` at once, each as soon as the images it is
//! built on are built), verifications, tags, then pushes (up to `jobs` images at once, each
//! image's tags in order: unique, version, latest). A phase runs only when the one before it
//! fully succeeded, so a failed build or verification pushes nothing.
//!
//! With one job (or one image) docker's output streams live. With more, each image's output is
//! kept whole and printed in its own group when the image is done, so concurrent logs never
//! interleave; on a terminal a one-line progress shows what is running.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::docker::Docker;
use crate::gha::Log;
use crate::interrupt::{self, Interrupted};
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
    /// Wall time spent building, verifying and pushing each image.
    seconds: Vec<(String, f64)>,
}

impl Report {
    fn add_time(&mut self, image: &str, elapsed: Duration) {
        match self.seconds.iter_mut().find(|(name, _)| name == image) {
            Some((_, total)) => *total += elapsed.as_secs_f64(),
            None => self.seconds.push((image.to_string(), elapsed.as_secs_f64())),
        }
    }

    /// Seconds spent on `image`, if any work was done for it.
    pub fn seconds(&self, image: &str) -> Option<f64> {
        self.seconds.iter().find(|(name, _)| name == image).map(|(_, s)| *s)
    }

    /// The digest the registry answered for `image`'s pushes (all three tags share it).
    pub fn digest(&self, image: &str) -> Option<&str> {
        self.pushed.iter().find(|p| p.image == image).and_then(|p| p.digest.as_deref())
    }
}

/// Whether the build phase stops starting builds at the first failure or builds on to find
/// every failure. Either way nothing is tagged or pushed unless every build succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBuildFailure {
    #[default]
    Stop,
    KeepGoing,
}

#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    /// How many builds (and image pushes) run at once; at least 1.
    pub jobs: usize,
    pub on_failure: OnBuildFailure,
}

impl Default for ExecOptions {
    fn default() -> ExecOptions {
        ExecOptions { jobs: 1, on_failure: OnBuildFailure::Stop }
    }
}

/// Runs `plan`; the report holds what was done even when the run failed part way.
pub fn execute(
    docker: &Docker,
    plan: &Plan,
    log: &Log,
    options: ExecOptions,
) -> (Report, anyhow::Result<()>) {
    let mut report = Report::default();
    let result = build_all(docker, plan, log, options, &mut report)
        .and_then(|()| verify_all(docker, plan, log, &mut report))
        .and_then(|()| tag_all(docker, plan, log, options.jobs, &mut report))
        .and_then(|()| push_all(docker, plan, log, options.jobs, &mut report));
    (report, result)
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Waiting,
    Running(Instant),
    Built,
    Failed(String),
    /// Not built because an image it is built on was not.
    Skipped(String),
}

/// What a finished build sends back to the scheduler.
struct Done {
    index: usize,
    elapsed: Duration,
    /// The output (when captured) and whether docker succeeded; Err when it could not run.
    outcome: anyhow::Result<(bool, String, String)>,
}

fn build_all(
    docker: &Docker,
    plan: &Plan,
    log: &Log,
    options: ExecOptions,
    report: &mut Report,
) -> anyhow::Result<()> {
    let steps = &plan.builds;
    let jobs = options.jobs.max(1);
    let live = jobs == 1 || steps.len() <= 1;
    let mut progress = Progress::new(!live && std::io::stderr().is_terminal());
    let mut state = vec![State::Waiting; steps.len()];
    let priority = longest_chain_first(steps);
    let mut stopping = false;
    let mut interrupted = false;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Done>();
        let mut running = 0;
        loop {
            skip_dependents(steps, &mut state);
            if !stopping {
                for &index in &priority {
                    let step = &steps[index];
                    if running >= jobs {
                        break;
                    }
                    if state[index] != State::Waiting || !parents_built(steps, &state, step) {
                        continue;
                    }
                    state[index] = State::Running(Instant::now());
                    running += 1;
                    let tx = tx.clone();
                    let title = format!("build {} ({}/{})", step.image, index + 1, steps.len());
                    scope.spawn(move || {
                        let start = Instant::now();
                        let run = || {
                            if live {
                                log.info(&step.command.display(docker.program()));
                            }
                            docker.build(&step.command, live).map(|f| (f.success, f.status, f.output))
                        };
                        let outcome = if live { log.group(&title, run) } else { run() };
                        let _ = tx.send(Done { index, elapsed: start.elapsed(), outcome });
                    });
                }
            }
            if running == 0 {
                break;
            }
            let done = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(done) => done,
                Err(_) => {
                    progress.show(steps, &state);
                    continue;
                }
            };
            running -= 1;
            progress.clear();
            let step = &steps[done.index];
            report.add_time(&step.image, done.elapsed);
            let failure = match done.outcome {
                Ok((true, _, output)) => {
                    if !live {
                        let title = format!("build {} ({:.1}s)", step.image, done.elapsed.as_secs_f64());
                        log.group(&title, || print_captured(docker, step, &output));
                    }
                    report.built.push(step.image.clone());
                    state[done.index] = State::Built;
                    None
                }
                Ok((false, status, output)) => {
                    if !live {
                        log.group(&format!("build {} (failed)", step.image), || {
                            print_captured(docker, step, &output)
                        });
                    }
                    Some(format!("docker build exited with {status}"))
                }
                Err(e) => {
                    interrupted |= e.downcast_ref::<Interrupted>().is_some();
                    Some(format!("{e:#}"))
                }
            };
            if let Some(reason) = failure {
                log.error(&format!("build of {} failed: {reason}", step.image));
                state[done.index] = State::Failed(reason);
                stopping |=
                    options.on_failure == OnBuildFailure::Stop || interrupted || interrupt::requested();
            }
        }
    });
    progress.clear();
    build_result(plan, &state, interrupted)
}

/// The order in which ready builds start: the one with the longest chain of builds waiting on
/// it first, so the graph's critical path never queues behind images nothing is built on (with
/// fewer jobs than ready images, plan order alone can cost a whole extra round of builds).
fn longest_chain_first(steps: &[Step]) -> Vec<usize> {
    // Steps come in dependency order, so walking backwards meets every step after all the steps
    // built on it.
    let mut chain = vec![1; steps.len()];
    for i in (0..steps.len()).rev() {
        for parent in &steps[i].needs {
            if let Some(p) = steps.iter().position(|s| &s.image == parent) {
                chain[p] = chain[p].max(chain[i] + 1);
            }
        }
    }
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(chain[i]), i));
    order
}

fn print_captured(docker: &Docker, step: &Step, output: &str) {
    println!("{}", step.command.display(docker.program()));
    print!("{output}");
    let _ = std::io::stdout().flush();
}

/// Whether every parent of `step` is built. A parent this plan does not build was built
/// before it (ci-pr builds the test package's image and its parents first).
fn parents_built(steps: &[Step], state: &[State], step: &Step) -> bool {
    step.needs.iter().all(|parent| match steps.iter().position(|s| &s.image == parent) {
        Some(i) => state[i] == State::Built,
        None => true,
    })
}

/// Marks every waiting build whose parent failed or was skipped as skipped.
fn skip_dependents(steps: &[Step], state: &mut [State]) {
    loop {
        let mut changed = false;
        for i in 0..steps.len() {
            if state[i] != State::Waiting {
                continue;
            }
            let blocked = steps[i].needs.iter().find(|parent| {
                steps
                    .iter()
                    .zip(state.iter())
                    .any(|(s, st)| &s.image == *parent && matches!(st, State::Failed(_) | State::Skipped(_)))
            });
            if let Some(parent) = blocked {
                state[i] = State::Skipped(parent.clone());
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// Ok when every build succeeded; otherwise one message with every image's state.
fn build_result(plan: &Plan, state: &[State], interrupted: bool) -> anyhow::Result<()> {
    let steps = &plan.builds;
    let failed: Vec<(&Step, &String)> = steps
        .iter()
        .zip(state)
        .filter_map(|(s, st)| match st {
            State::Failed(reason) => Some((s, reason)),
            _ => None,
        })
        .collect();
    if failed.is_empty() && state.iter().all(|s| *s == State::Built) {
        return Ok(());
    }
    let header = if interrupted {
        Interrupted.to_string()
    } else if failed.is_empty() {
        // Unreachable while every parent is either in the plan or built before it.
        "internal error: some builds never became ready".to_string()
    } else if let [(step, reason)] = failed.as_slice() {
        format!("build of {} ({}) failed: {reason}", step.image, step.reference)
    } else {
        let list: Vec<String> = failed.iter().map(|(s, r)| format!("{} ({r})", s.image)).collect();
        format!("{} of {} builds failed: {}", failed.len(), steps.len(), list.join("; "))
    };
    let built: Vec<&str> = steps
        .iter()
        .zip(state)
        .filter(|(_, st)| **st == State::Built)
        .map(|(s, _)| s.image.as_str())
        .collect();
    let not_built: Vec<String> = steps
        .iter()
        .zip(state)
        .filter_map(|(s, st)| match st {
            State::Skipped(parent) => Some(format!("{} (needs {parent})", s.image)),
            State::Waiting | State::Running(_) => Some(format!("{} (stopped after the failure)", s.image)),
            _ => None,
        })
        .collect();
    let mut message = format!("{header}. Nothing was pushed");
    if !built.is_empty() {
        message.push_str(&format!(". Built: {}", built.join(", ")));
    }
    if !not_built.is_empty() {
        message.push_str(&format!(". Not built: {}", not_built.join(", ")));
    }
    bail!("{message}")
}

/// The one-line status of running builds, redrawn on a terminal.
struct Progress {
    on: bool,
    shown: bool,
}

impl Progress {
    fn new(on: bool) -> Progress {
        Progress { on, shown: false }
    }

    fn show(&mut self, steps: &[Step], state: &[State]) {
        if !self.on {
            return;
        }
        let running: Vec<String> = steps
            .iter()
            .zip(state)
            .filter_map(|(s, st)| match st {
                State::Running(since) => Some(format!("{} {}s", s.image, since.elapsed().as_secs())),
                _ => None,
            })
            .collect();
        let built = state.iter().filter(|s| **s == State::Built).count();
        eprint!("\r\x1b[2Kbuilding {} | {built}/{} built", running.join(", "), steps.len());
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }
}

/// Checks every verification; one failing image stops the run before any tag or push.
fn verify_all(docker: &Docker, plan: &Plan, log: &Log, report: &mut Report) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for v in &plan.verifications {
        let start = Instant::now();
        let violations = log.group(&format!("verify {}", v.image), || verify_one(docker, v, log));
        report.add_time(&v.image, start.elapsed());
        let violations = violations?;
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

/// Tags every image, up to `jobs` images at once. Local tags are not visible to anyone, but
/// they are still all made before the first push, so that a failing tag pushes nothing.
fn tag_all(docker: &Docker, plan: &Plan, log: &Log, jobs: usize, report: &mut Report) -> anyhow::Result<()> {
    let tag_image = |image: &str, steps: &[&Step]| {
        in_order(docker, image, steps, |step, _| docker.tag(&step.command).map(|()| None))
    };
    let failure = for_each_image(&plan.tags, jobs, tag_image, |done| {
        report.add_time(&done.image, done.elapsed);
        log.info(done.transcript.trim_end());
    });
    match failure {
        Some((step, e)) => bail!("{}: {e:#}. Nothing was pushed", step_name(&step)),
        None => Ok(()),
    }
}

fn push_all(docker: &Docker, plan: &Plan, log: &Log, jobs: usize, report: &mut Report) -> anyhow::Result<()> {
    let push_image = |image: &str, steps: &[&Step]| {
        in_order(docker, image, steps, |step, transcript| {
            let digest = docker.push(&step.command, transcript)?;
            Ok(Some(Pushed { image: step.image.clone(), reference: step.reference.clone(), digest }))
        })
    };
    let failure = for_each_image(&plan.pushes, jobs, push_image, |done| {
        report.add_time(&done.image, done.elapsed);
        report.pushed.extend(done.pushed);
        log.group(&format!("push {}", done.image), || print!("{}", done.transcript));
    });
    match failure {
        Some((step, e)) => bail!("{}: {e:#}. {}", step_name(&step), push_state(plan, report)),
        None => Ok(()),
    }
}

/// What one image's tags or pushes send back: the pushes that went out, the output, and the
/// first failure.
struct ImageDone {
    image: String,
    elapsed: Duration,
    pushed: Vec<Pushed>,
    transcript: String,
    failure: Option<(Step, anyhow::Error)>,
}

/// Runs `work` for every image of `steps` (with that image's steps, in plan order), up to
/// `jobs` images at once, handing each result to `finished` on this thread. After a failure
/// no further image is started; the ones running finish. Returns the first failure.
fn for_each_image(
    steps: &[Step],
    jobs: usize,
    work: impl Fn(&str, &[&Step]) -> ImageDone + Sync,
    mut finished: impl FnMut(ImageDone),
) -> Option<(Step, anyhow::Error)> {
    let mut first_failure = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<ImageDone>();
        let mut queue = images_of(steps).into_iter();
        let mut running = 0;
        loop {
            while running < jobs.max(1) && first_failure.is_none() {
                let Some(image) = queue.next() else { break };
                running += 1;
                let (tx, work) = (tx.clone(), &work);
                let own: Vec<&Step> = steps.iter().filter(|s| s.image == image).collect();
                scope.spawn(move || {
                    let _ = tx.send(work(image, &own));
                });
            }
            if running == 0 {
                break;
            }
            let Ok(mut done) = rx.recv() else { break };
            running -= 1;
            let failure = done.failure.take();
            finished(done);
            if first_failure.is_none() {
                first_failure = failure;
            }
        }
    });
    first_failure
}

/// Runs `one` on each of `image`'s steps in order, stopping at the first failure: an image's
/// `latest` never gets ahead of its pinned tags. Each step's command goes to the transcript
/// first; `one` adds its output there and returns what a push went out as.
fn in_order(
    docker: &Docker,
    image: &str,
    steps: &[&Step],
    one: impl Fn(&Step, &mut String) -> anyhow::Result<Option<Pushed>>,
) -> ImageDone {
    let start = Instant::now();
    let mut done = ImageDone {
        image: image.to_string(),
        elapsed: Duration::ZERO,
        pushed: Vec::new(),
        transcript: String::new(),
        failure: None,
    };
    for step in steps {
        done.transcript.push_str(&format!("{}\n", step.command.display(docker.program())));
        match one(step, &mut done.transcript) {
            Ok(pushed) => done.pushed.extend(pushed),
            Err(e) => {
                done.failure = Some(((*step).clone(), e));
                break;
            }
        }
    }
    done.elapsed = start.elapsed();
    done
}

fn step_name(step: &Step) -> String {
    format!("{} of {} ({}) failed", step.action, step.image, step.reference)
}

/// The images `steps` are for, in plan order.
fn images_of(steps: &[Step]) -> Vec<&str> {
    let mut images: Vec<&str> = steps.iter().map(|s| s.image.as_str()).collect();
    images.dedup();
    images
}

/// Which images hold all their tags in the registry and which do not, after a failed push.
fn push_state(plan: &Plan, report: &Report) -> String {
    let mut full = Vec::new();
    let mut partial = Vec::new();
    for image in images_of(&plan.pushes) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, DockerCommand};

    fn build(image: &str, needs: &[&str]) -> Step {
        Step {
            image: image.to_string(),
            action: Action::Build,
            command: DockerCommand::new(["build", image]),
            reference: format!("r/{image}:1"),
            needs: needs.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn the_longest_chain_starts_first_and_ties_keep_plan_order() {
        // Plan order (parents first): two leaves, then the chain c -> d -> e, and f on c.
        let steps = [
            build("a", &[]),
            build("b", &[]),
            build("c", &[]),
            build("d", &["c"]),
            build("e", &["d"]),
            build("f", &["c"]),
        ];
        let names: Vec<&str> =
            longest_chain_first(&steps).into_iter().map(|i| steps[i].image.as_str()).collect();
        assert_eq!(names, ["c", "d", "a", "b", "e", "f"]);
    }
}
