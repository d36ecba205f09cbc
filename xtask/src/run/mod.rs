//! Runs plans, phase by phase: the registry questions, builds (up to `jobs` at once, each as
//! soon as the images it is built on are built, each image checked against its hardening rules
//! as soon as it is built), then each image's tags (up to `jobs` images at once, each image's
//! in order: unique, version, latest). Tags are made only when every build and every check
//! passed, so a failed build or verification pushes nothing.
//! At the end, also after a failure, the run-private names are removed.
//!
//! The scheduler drives the outside world through `World`: docker and the registry in a run
//! (`Live`), a script in tests.
//!
//! With one job (or one image) a build's output streams live. With more, each image's output
//! is kept whole and printed in its own group when the image is done, so concurrent logs never
//! interleave; on a terminal a one-line progress shows what is running.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;

mod compare;
pub mod inspect;
mod live;
pub mod lock;
pub mod preflight;
mod progress;

pub use compare::InputsSince;
pub use live::Live;
use progress::Progress;

use crate::model::filesystem::Content;
use crate::model::hardening::Violation;
use crate::model::packages::Found;
use crate::model::rebuild::{Base, Origins, Verdict};
use crate::model::step::{BuildStep, Step};
use crate::plan::{order, BaseSource, Build, Comparison, Plan, Publication, Target, Verification};
use crate::sys::gha::Log;
use crate::sys::interrupt::{self, Interrupted};
use crate::sys::process::last_lines;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub image: String,
    pub reference: String,
    /// The digest the registry holds under the reference, read back after the push.
    pub digest: String,
}

#[derive(Debug, Default)]
pub struct Report {
    /// The id of the image each build made.
    pub ids: BTreeMap<String, String>,
    pub pushed: Vec<Pushed>,
    /// Images whose build broke its hardening rules; it is kept under its `kept_as` name.
    pub kept: Vec<String>,
    /// Images built and checked, ready to be tagged.
    pub passed: Vec<String>,
    /// What each built image holds.
    pub packages: BTreeMap<String, Found>,
    /// What each build started from and took files from.
    pub origins: BTreeMap<String, Origins>,
    /// Of each compared image: whether it is published, and why.
    pub verdicts: BTreeMap<String, Verdict>,
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

    /// The digest the registry holds for `image`'s pushed tags (all share it).
    pub fn digest(&self, image: &str) -> Option<&str> {
        self.pushed.iter().find(|p| p.image == image).map(|p| p.digest.as_str())
    }

    /// Whether `image` was compared with its published image and found unchanged.
    pub fn unchanged(&self, image: &str) -> bool {
        self.verdicts.get(image).is_some_and(|v| !v.publish)
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
    /// How many builds (and image publications) run at once; at least 1.
    pub jobs: usize,
    pub on_failure: OnBuildFailure,
}

impl Default for ExecOptions {
    fn default() -> ExecOptions {
        ExecOptions { jobs: 1, on_failure: OnBuildFailure::Stop }
    }
}

/// A finished build, as the scheduler sees it.
pub struct Built {
    pub success: bool,
    /// How it ended: `exited with exit status: 1`, or that its time limit stopped it.
    pub status: String,
    /// Everything it printed when captured (empty when streamed).
    pub output: String,
    /// Its last lines, which carry the cause of a failure.
    pub tail: String,
    /// The id of the image it made.
    pub id: Option<String>,
}

/// What a hardening check found.
pub struct Checked {
    pub violations: Vec<Violation>,
    /// How many files of the image were looked at.
    pub files: usize,
    pub packages: Found,
    /// Its files and configuration, for the comparison with the published image.
    pub content: Content,
    /// How the packages were read, where it is worth saying (an RPM database).
    pub notes: Vec<String>,
}

impl Checked {
    /// The line that says `reference` passed.
    pub fn passed(&self, reference: &str) -> String {
        format!("{reference} meets its hardening rules ({} files checked)", self.files)
    }
}

/// Where the lines of one image's publication go: printed as each step starts when one image
/// goes out at a time (so whoever watches sees where the run is, and what Ctrl-C would stop),
/// or kept whole for the image's group when several go out at once.
pub struct Transcript {
    text: String,
    live: Option<Log>,
}

impl Transcript {
    pub fn kept() -> Transcript {
        Transcript { text: String::new(), live: None }
    }

    pub fn live(log: Log) -> Transcript {
        Transcript { text: String::new(), live: Some(log) }
    }

    /// A line of the tool's own (a command as it starts, a registry request, a read-back).
    pub fn line(&mut self, line: &str) {
        match self.live {
            Some(log) => log.info(line),
            None => {
                self.text.push_str(line);
                self.text.push('\n');
            }
        }
    }

    /// What another program printed.
    pub fn output(&mut self, text: &str) {
        match self.live {
            Some(log) => log.passthrough(text),
            None => self.text.push_str(text),
        }
    }
}

/// What the scheduler asks of the outside world.
pub trait World: Sync {
    /// The program that runs the steps, as the logs show it.
    fn program(&self) -> &str;
    /// Fails unless the registry says every one of `references` is absent.
    fn check_absent(&self, references: &[String], jobs: usize) -> anyhow::Result<()>;
    /// Pulls an image (retrying transient failures).
    fn pull(&self, reference: &str) -> anyhow::Result<()>;
    /// Runs a build; Err only when it could not run to the end (missing CLI, interrupt).
    fn build(&self, build: &Build, live: bool) -> anyhow::Result<Built>;
    /// The digest of an image a build starts from (pulled when the engine lacks it).
    fn base_digest(&self, reference: &str) -> anyhow::Result<String>;
    /// The hardening rules the built image breaks, and its packages.
    fn verify(&self, v: &Verification) -> anyhow::Result<Checked>;
    /// Compares a built image (made from `origins`, checked as `built`) with what is published
    /// under its version tag.
    fn compare(
        &self,
        c: &Comparison,
        origins: &Origins,
        built: &Checked,
        force: bool,
    ) -> anyhow::Result<Verdict>;
    /// Gives `run_reference` the published image `digest` of `c` (pulled by `compare`), so
    /// that children build on it; returns its image id.
    fn adopt(&self, c: &Comparison, digest: &str, run_reference: &str) -> anyhow::Result<String>;
    /// Lets go of what `compare` fetched for `c` (the published image it pulled).
    fn release(&self, c: &Comparison);
    /// Makes one target of a publication from the image with `id`: tag, and push and read back
    /// when it is pushed. What it does goes to `transcript` as it starts.
    fn publish(
        &self,
        p: &Publication,
        t: &Target,
        id: &str,
        transcript: &mut Transcript,
    ) -> anyhow::Result<Option<Pushed>>;
    /// Runs a cleanup step; failures are only worth a warning.
    fn clean_up(&self, step: &Step) -> anyhow::Result<()>;
}

/// Runs `plans` one after another, stopping at the first failure, then removes the run's
/// names; one report per plan that started.
pub fn execute(
    world: &dyn World,
    plans: &[Plan],
    log: &Log,
    options: ExecOptions,
) -> (Vec<Report>, anyhow::Result<()>) {
    let mut reports = Vec::new();
    let mut result = Ok(());
    for plan in plans {
        let mut report = Report::default();
        result = (|| {
            world.check_absent(&plan.must_be_absent, options.jobs)?;
            pull_all(world, plan, log)?;
            resolve_bases(world, plan, &mut report)?;
            match build_all(world, plan, log, options, &mut report) {
                Ok(()) => publish_all(world, plan, log, options.jobs, &mut report),
                // A plan that pushes nothing (a local build) still tags what passed, as a
                // developer iterating on one Dockerfile expects; publishing stays all-or-nothing.
                Err(e) if !plan.pushes() && !report.passed.is_empty() && !interrupt::requested() => {
                    let tagged = publish_all(world, plan, log, options.jobs, &mut report);
                    let references: Vec<&str> = plan
                        .publications
                        .iter()
                        .filter(|p| report.passed.contains(&p.image))
                        .flat_map(|p| p.targets.iter().map(|t| t.reference.as_str()))
                        .collect();
                    match tagged {
                        Ok(()) => bail!("{e:#}\nTagged what passed: {}", references.join(" ")),
                        Err(t) => bail!("{e:#}\nTagging what passed failed too: {t:#}"),
                    }
                }
                Err(e) => Err(e),
            }
        })();
        reports.push(report);
        if result.is_err() {
            break;
        }
    }
    // Every name this run gave goes; an image kept for a look is first copied to its one
    // kept name, which replaces the one an earlier run kept.
    let mut built: Vec<&str> = plans
        .iter()
        .zip(&reports)
        .flat_map(|(plan, report)| plan.builds.iter().filter(|b| report.ids.contains_key(&b.image)))
        .map(|b| b.reference.as_str())
        .collect();
    if interrupt::requested() && !built.is_empty() {
        // Every command would be stopped at once; say what is left instead.
        log.warning(&format!("interrupted: this run's names are left behind: {}", built.join(" ")));
        built.clear();
    }
    let kept = plans
        .iter()
        .zip(&reports)
        .flat_map(|(plan, report)| plan.verifications.iter().filter(|v| report.kept.contains(&v.image)));
    for v in kept.filter(|v| built.contains(&v.reference.as_str())) {
        let [forget, copy] = v.keep();
        // The first time there is nothing to forget.
        let _ = world.clean_up(&forget);
        if let Err(e) = world.clean_up(&copy) {
            log.warning(&format!("could not keep {} as {}: {e:#}", v.image, v.kept_as));
        }
    }
    let cleanup: Vec<&Step> =
        plans.iter().flat_map(|p| &p.cleanup).filter(|c| built.contains(&c.subject())).collect();
    for chunk in cleanup.chunks(options.jobs.max(1)) {
        let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
            let removing: Vec<_> = chunk.iter().map(|c| scope.spawn(|| world.clean_up(c))).collect();
            removing.into_iter().filter_map(|r| r.join().ok().and_then(Result::err)).collect()
        });
        for e in failures {
            log.warning(&format!("could not remove a name this run gave: {e:#}"));
        }
    }
    for plan in plans {
        let _ = std::fs::remove_dir_all(&plan.run.dir);
    }
    (reports, result)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum State {
    Waiting,
    Running(Instant),
    /// Built; its hardening check is running, and images built on it wait for it.
    Checking,
    /// Built, and checked where the inventory has rules for it.
    Built,
    Failed(String),
    /// Built, but its check or its comparison with the published image could not be done.
    Unchecked(String),
    /// Built, but it breaks its hardening rules (the list of violations).
    Rejected(String),
    /// Not built because an image it is built on was not.
    Skipped(String),
}

/// What a finished build or check sends back to the scheduler.
enum Event {
    /// Build `index` of the plan ended.
    Built { index: usize, elapsed: Duration, outcome: anyhow::Result<Built> },
    /// The check (and comparison) of build `index` ended.
    Checked { index: usize, elapsed: Duration, outcome: anyhow::Result<Box<Inspected>> },
}

/// What the scheduler learns of a built image after its build.
struct Inspected {
    checked: Checked,
    verdict: Option<Verdict>,
    /// The id of the published image children now build on (it is unchanged).
    adopted: Option<String>,
}

/// The digest of every image from outside the inventory that a build starts from or takes
/// files from, asked once per image before any build: they go in the builds' labels.
fn resolve_bases(world: &dyn World, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    let mut digest_of = |name: &str, image: &str| -> anyhow::Result<Base> {
        if let Some(digest) = known.get(name) {
            return Ok(Base { name: name.to_string(), digest: digest.clone() });
        }
        let digest =
            world.base_digest(name).map_err(|e| e.context(format!("an image {image} is built from")))?;
        known.insert(name.to_string(), digest.clone());
        Ok(Base { name: name.to_string(), digest })
    };
    for build in &plan.builds {
        let base = match &build.base {
            Some(BaseSource::Outside(name)) => Some(digest_of(name, &build.image)?),
            _ => None,
        };
        let sources =
            build.sources.iter().map(|name| digest_of(name, &build.image)).collect::<anyhow::Result<_>>()?;
        report.origins.insert(build.image.clone(), Origins { base, sources });
    }
    Ok(())
}

/// Checks a built image, then (when the plan compares it) compares it with the published one;
/// an unchanged image with children in the plan gives them the published image to build on.
fn inspect_built(
    world: &dyn World,
    plan: &Plan,
    v: &Verification,
    origins: &Origins,
) -> anyhow::Result<Inspected> {
    // The error says which part failed: reading its files, or listing its packages.
    let checked = world.verify(v)?;
    let comparison = plan.comparisons.iter().find(|c| c.image == v.image);
    let (Some(c), true) = (comparison, checked.violations.is_empty()) else {
        return Ok(Inspected { checked, verdict: None, adopted: None });
    };
    let judged = (|| {
        let verdict = match world.compare(c, origins, &checked, plan.force) {
            Ok(verdict) => verdict,
            // Forced, the comparison only informs: what it could not find out stops nothing.
            Err(e) if plan.force => Verdict::publish_because(
                format!("published (--force); the comparison with {} failed: {e:#}", c.published),
                None,
            ),
            Err(e) => return Err(e.context(format!("comparing it with {} failed", c.published))),
        };
        let has_children = plan.builds.iter().any(|b| b.needs.contains(&v.image));
        let adopted = match (&verdict.published, verdict.publish, has_children) {
            (Some(digest), false, true) => Some(world.adopt(c, digest, &v.reference)?),
            _ => None,
        };
        Ok((verdict, adopted))
    })();
    // Whatever the outcome, the published image pulled for it is not kept.
    world.release(c);
    let (verdict, adopted) = judged?;
    Ok(Inspected { checked, verdict: Some(verdict), adopted })
}

/// Builds every image; each built image is checked against its hardening rules at once,
/// beside the builds still running (the check reads the image; the engine's builds go on).
/// Images built on it wait for its check. A failed build stops new builds (unless keep-going);
/// a broken rule does not, so that every image's violations are reported at once, but what is
/// built on that image is not built.
fn build_all(
    world: &dyn World,
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
    // Each build's command as it ran: with its base's labels, which only the run knows.
    let mut commands: Vec<BuildStep> = steps.iter().map(|s| s.step.clone()).collect();
    let priority = order::longest_chain_first(steps);
    let mut stopping = false;
    let mut interrupted = false;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Event>();
        let (mut building, mut checking) = (0, 0);
        loop {
            skip_dependents(steps, &mut state);
            if !stopping {
                for &index in &priority {
                    let step = &steps[index];
                    // One job means one thing at a time, a check included: the order a dry run
                    // lists. With more, checks read images beside the builds.
                    let busy = if jobs == 1 { building + checking } else { building };
                    if busy >= jobs {
                        break;
                    }
                    if state[index] != State::Waiting || !parents_built(steps, &state, step) {
                        continue;
                    }
                    state[index] = State::Running(Instant::now());
                    building += 1;
                    let tx = tx.clone();
                    let title = format!("build {} ({}/{})", step.image, index + 1, steps.len());
                    let mut origins = report.origins.get(&step.image).cloned().unwrap_or_default();
                    // Inventory parents are known by the image id this run builds on: its own
                    // build, or the published image an unchanged parent handed on.
                    let built_on = |image: &str, named: &str| {
                        report.ids.get(image).map(|id| Base { name: named.to_string(), digest: id.clone() })
                    };
                    if let Some(BaseSource::Parent { image, named }) = &step.base {
                        origins.base = built_on(image, named);
                    }
                    origins
                        .sources
                        .extend(step.parent_sources.iter().filter_map(|(p, named)| built_on(p, named)));
                    origins.sources.sort_by(|a, b| a.name.cmp(&b.name));
                    commands[index] = step.with_origins(&origins);
                    report.origins.insert(step.image.clone(), origins);
                    let step = Build { step: commands[index].clone(), ..step.clone() };
                    scope.spawn(move || {
                        let step = &step;
                        let start = Instant::now();
                        let run = || {
                            if live {
                                log.info(&step.step.command().display(world.program()));
                                log.verbatim(|| world.build(step, true))
                            } else {
                                world.build(step, false)
                            }
                        };
                        let guarded = || guard(&format!("the build of {}", step.image), run);
                        let outcome = if live { log.group(&title, guarded) } else { guarded() };
                        let _ = tx.send(Event::Built { index, elapsed: start.elapsed(), outcome });
                    });
                }
            }
            if building + checking == 0 {
                break;
            }
            let event = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(event) => event,
                Err(_) => {
                    progress.show(steps, &state);
                    continue;
                }
            };
            progress.clear();
            let (index, failure) = match event {
                Event::Built { index, elapsed, outcome } => {
                    building -= 1;
                    let step = &steps[index];
                    report.add_time(&step.image, elapsed);
                    if let (false, Ok(built)) = (live, &outcome) {
                        let verdict = if built.success {
                            format!("{:.1}s", elapsed.as_secs_f64())
                        } else {
                            "failed".into()
                        };
                        log.group(&format!("build {} ({verdict})", step.image), || {
                            log.info(&commands[index].command().display(world.program()));
                            log.passthrough(&built.output);
                        });
                    }
                    let failure = match outcome {
                        Ok(built) if built.success => match built.id {
                            Some(id) => {
                                report.ids.insert(step.image.clone(), id);
                                state[index] = State::Built;
                                if let Some(v) = plan.verifications.iter().find(|v| v.image == step.image) {
                                    state[index] = State::Checking;
                                    checking += 1;
                                    let tx = tx.clone();
                                    let origins =
                                        report.origins.get(&step.image).cloned().unwrap_or_default();
                                    scope.spawn(move || {
                                        let start = Instant::now();
                                        let outcome = guard(&format!("the check of {}", v.image), || {
                                            inspect_built(world, plan, v, &origins).map(Box::new)
                                        });
                                        let _ = tx.send(Event::Checked {
                                            index,
                                            elapsed: start.elapsed(),
                                            outcome,
                                        });
                                    });
                                }
                                None
                            }
                            None => Some(format!(
                                "the build reported no image id (expected in {})",
                                step.iidfile.display()
                            )),
                        },
                        Ok(built) => {
                            let cause = last_lines(&built.tail, 5).join("\n");
                            Some(format!("{} build {}: {cause}", world.program(), built.status))
                        }
                        Err(e) => {
                            interrupted |= e.downcast_ref::<Interrupted>().is_some();
                            Some(format!("{e:#}"))
                        }
                    };
                    (index, failure)
                }
                Event::Checked { index, elapsed, outcome } => {
                    checking -= 1;
                    let image = &steps[index].image;
                    report.add_time(image, elapsed);
                    let failure = match outcome {
                        Ok(inspected) if inspected.checked.violations.is_empty() => {
                            let Inspected { checked, verdict, adopted } = *inspected;
                            if plan.verifications.iter().any(|v| v.image == *image && v.spec.is_some()) {
                                log.info(&checked.passed(&steps[index].reference));
                            }
                            for note in &checked.notes {
                                log.note(&format!("{image}: {note}"));
                            }
                            report.packages.insert(image.clone(), checked.packages);
                            if let Some(verdict) = verdict {
                                log.info(&format!("{image}: {}", verdict.line()));
                                report.verdicts.insert(image.clone(), verdict);
                            }
                            if let Some(id) = adopted {
                                log.info(&format!(
                                    "{image} is unchanged: what is built on it builds on the published {image} (image {id})"
                                ));
                                report.ids.insert(image.clone(), id);
                            }
                            state[index] = State::Built;
                            None
                        }
                        Ok(inspected) => {
                            let checked = inspected.checked;
                            report.kept.push(image.clone());
                            let list: Vec<String> =
                                checked.violations.iter().map(|x| format!("  {image}: {x}")).collect();
                            state[index] = State::Rejected(list.join("\n"));
                            None
                        }
                        Err(e) => {
                            interrupted |= e.downcast_ref::<Interrupted>().is_some();
                            state[index] = State::Unchecked(format!("{e:#}"));
                            stopping |= options.on_failure == OnBuildFailure::Stop || interrupted;
                            None
                        }
                    };
                    (index, failure)
                }
            };
            if let Some(reason) = failure {
                state[index] = State::Failed(reason);
                stopping |=
                    options.on_failure == OnBuildFailure::Stop || interrupted || interrupt::requested();
            }
        }
    });
    progress.clear();
    interrupted |= interrupt::requested();
    report.passed =
        steps.iter().zip(&state).filter(|(_, s)| **s == State::Built).map(|(b, _)| b.image.clone()).collect();
    build_result(plan, &state, interrupted, world.program())
}

/// Pulls the fresh bases children need, one after another (the engine shares each layer).
fn pull_all(world: &dyn World, plan: &Plan, log: &Log) -> anyhow::Result<()> {
    for pull in &plan.pulls {
        let image = pull.subject();
        log.group(&format!("pull {image}"), || world.pull(image))
            .map_err(|e| e.context(format!("pulling {image} failed. Nothing was built or pushed")))?;
    }
    Ok(())
}

/// Runs `work` on a worker thread; a panic becomes an error that says what was running, so the
/// scheduler never waits for a worker that is gone.
fn guard<T>(what: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(anyhow::anyhow!("internal error: {what} panicked ({message}); please report it"))
        }
    }
}

/// Whether every parent of `step` is built. A parent this plan does not build was built
/// before it (ci-pr builds the test package's image and its parents first).
fn parents_built(steps: &[Build], state: &[State], step: &Build) -> bool {
    step.needs.iter().all(|parent| match steps.iter().position(|s| &s.image == parent) {
        Some(i) => state[i] == State::Built,
        None => true,
    })
}

/// Marks every waiting build whose parent failed or was skipped as skipped.
fn skip_dependents(steps: &[Build], state: &mut [State]) {
    loop {
        let mut changed = false;
        for i in 0..steps.len() {
            if state[i] != State::Waiting {
                continue;
            }
            let blocked = steps[i].needs.iter().find(|parent| {
                steps.iter().zip(state.iter()).any(|(s, st)| {
                    &s.image == *parent
                        && matches!(
                            st,
                            State::Failed(_) | State::Unchecked(_) | State::Rejected(_) | State::Skipped(_)
                        )
                })
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

/// Ok when every image was built and passed its check; otherwise one message with every
/// image's state.
fn build_result(plan: &Plan, state: &[State], interrupted: bool, program: &str) -> anyhow::Result<()> {
    let steps = &plan.builds;
    if state.iter().all(|s| *s == State::Built) {
        return Ok(());
    }
    let each = |pick: &dyn Fn(&Build, &State) -> Option<String>| -> Vec<String> {
        steps.iter().zip(state).filter_map(|(b, s)| pick(b, s)).collect()
    };
    let failed = each(&|b, s| match s {
        State::Failed(reason) if !interrupted => Some(format!("build of {} failed: {reason}", b.image)),
        State::Unchecked(reason) if !interrupted => Some(format!("{} was built, but {reason}", b.image)),
        _ => None,
    });
    let rejected = each(&|b, s| match s {
        State::Rejected(list) => {
            let kept =
                plan.verifications.iter().find(|v| v.image == b.image).map_or(&b.reference, |v| &v.kept_as);
            Some(format!("{list}\n  (kept as {kept} for a look: `{} run -it {kept}`)", program))
        }
        _ => None,
    });
    let built = each(&|b, s| matches!(s, State::Built | State::Unchecked(_)).then(|| b.image.clone()));
    let not_built = each(&|b, s| match s {
        State::Skipped(parent) => Some(format!("{} (needs {parent})", b.image)),
        State::Failed(_) if interrupted => Some(format!("{} (interrupted)", b.image)),
        State::Waiting | State::Running(_) | State::Checking => {
            Some(format!("{} (stopped after the failure)", b.image))
        }
        _ => None,
    });
    let mut message = if interrupted {
        Interrupted.to_string()
    } else if let [one] = failed.as_slice() {
        one.clone()
    } else if !failed.is_empty() {
        format!("{} of {} images failed: {}", failed.len(), steps.len(), failed.join("; "))
    } else if !rejected.is_empty() {
        "the hardening baseline is not met".to_string()
    } else {
        // Unreachable while every parent is either in the plan or built before it.
        "internal error: some builds never became ready".to_string()
    };
    if !rejected.is_empty() {
        if !message.starts_with("the hardening baseline") {
            message.push_str("\nAlso, the hardening baseline is not met");
        }
        message.push_str(&format!(":\n{}", rejected.join("\n")));
    }
    message.push_str("\nNothing was pushed");
    if !built.is_empty() {
        message.push_str(&format!(". Built: {}", built.join(", ")));
    }
    if !not_built.is_empty() {
        message.push_str(&format!(". Not built: {}", not_built.join(", ")));
    }
    bail!("{message}")
}

/// Tags (and pushes, and reads back) every image's targets, up to `jobs` images at once.
fn publish_all(
    world: &dyn World,
    plan: &Plan,
    log: &Log,
    jobs: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let ids = report.ids.clone();
    // One image at a time: each step is printed as it starts, inside the image's group.
    let live = jobs.max(1) == 1;
    let verb_of = |image: &str| {
        let pushes =
            plan.publications.iter().any(|p| p.image == image && p.targets.iter().any(|t| t.push.is_some()));
        if pushes {
            "push"
        } else {
            "tag"
        }
    };
    let work = |p: &Publication| {
        let title = format!("{} {}", verb_of(&p.image), p.image);
        if live {
            log.group(&title, || publish_one(world, p, &ids, Transcript::live(*log)))
        } else {
            publish_one(world, p, &ids, Transcript::kept())
        }
    };

    // An image found unchanged is not published again: the registry already holds it. Only
    // what passed is tagged (all of it, unless a local build failed in part).
    let publications: Vec<&Publication> = plan
        .publications
        .iter()
        .filter(|p| !report.unchanged(&p.image) && report.passed.contains(&p.image))
        .collect();
    // A child goes out only after the parents it was built on are fully out, so its published
    // tags never stand on a parent the registry does not hold.
    let parents_of = |image: &str| -> Vec<&str> {
        let needs =
            plan.builds.iter().find(|b| b.image == image).map(|b| b.needs.as_slice()).unwrap_or_default();
        needs.iter().map(String::as_str).filter(|n| publications.iter().any(|p| p.image == *n)).collect()
    };
    let mut first_failure = None;
    let mut finished: Vec<String> = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<ImageDone>();
        let mut waiting: Vec<&Publication> = publications.clone();
        let mut running = 0;
        loop {
            while running < jobs.max(1) && first_failure.is_none() {
                let ready = waiting
                    .iter()
                    .position(|p| parents_of(&p.image).iter().all(|n| finished.iter().any(|f| f == n)));
                let Some(p) = ready.map(|i| waiting.remove(i)) else { break };
                running += 1;
                let (tx, work) = (tx.clone(), &work);
                scope.spawn(move || {
                    let done =
                        guard(&format!("publishing {}", p.image), || Ok(work(p))).unwrap_or_else(|e| {
                            ImageDone {
                                image: p.image.clone(),
                                elapsed: Duration::ZERO,
                                pushed: Vec::new(),
                                transcript: String::new(),
                                failure: Some(e),
                            }
                        });
                    let _ = tx.send(done);
                });
            }
            if running == 0 {
                break;
            }
            let Ok(mut done) = rx.recv() else { break };
            running -= 1;
            report.add_time(&done.image, done.elapsed);
            report.pushed.append(&mut done.pushed);
            if !live {
                log.group(&format!("{} {}", verb_of(&done.image), done.image), || {
                    log.passthrough(&done.transcript)
                });
            }
            match done.failure {
                None => finished.push(done.image),
                Some(e) if first_failure.is_none() => first_failure = Some(e),
                Some(_) => {}
            }
        }
    });
    match first_failure {
        Some(e) => bail!("{e:#}. {}", push_state(plan, report)),
        None => Ok(()),
    }
}

/// Makes every target of `p`, in order, stopping at the first failure.
fn publish_one(
    world: &dyn World,
    p: &Publication,
    ids: &BTreeMap<String, String>,
    mut transcript: Transcript,
) -> ImageDone {
    let start = Instant::now();
    let mut done = ImageDone {
        image: p.image.clone(),
        elapsed: Duration::ZERO,
        pushed: Vec::new(),
        transcript: String::new(),
        failure: None,
    };
    let Some(id) = ids.get(&p.image) else {
        done.failure = Some(anyhow::anyhow!("{} was not built in this run", p.image));
        return done;
    };
    for t in &p.targets {
        // After Ctrl-C no further tag goes out (a send already under way is let finish).
        if interrupt::requested() {
            done.failure = Some(Interrupted.into());
            break;
        }
        match world.publish(p, t, id, &mut transcript) {
            Ok(pushed) => done.pushed.extend(pushed),
            Err(e) => {
                let what = if t.push.is_some() { "push" } else { "tag" };
                done.failure = Some(e.context(format!("{what} of {} ({}) failed", p.image, t.reference)));
                break;
            }
        }
    }
    done.elapsed = start.elapsed();
    done.transcript = transcript.text;
    done
}

/// What one image's targets send back: the pushes that went out, the output, the failure.
struct ImageDone {
    image: String,
    elapsed: Duration,
    pushed: Vec<Pushed>,
    transcript: String,
    failure: Option<anyhow::Error>,
}

/// Which images hold all their tags in the registry and which do not, after a failure.
fn push_state(plan: &Plan, report: &Report) -> String {
    let mut full = Vec::new();
    let mut partial = Vec::new();
    for p in plan.publications.iter().filter(|p| !report.unchanged(&p.image)) {
        let wanted = p.targets.iter().filter(|t| t.push.is_some()).count();
        if wanted == 0 {
            continue;
        }
        let done = report.pushed.iter().filter(|x| x.image == p.image).count();
        match done {
            _ if done == wanted => full.push(p.image.clone()),
            0 => partial.push(p.image.clone()),
            _ => partial.push(format!("{} ({done} of {wanted} tags)", p.image)),
        }
    }
    if full.is_empty() && partial.is_empty() {
        return "Nothing was pushed".to_string();
    }
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    format!("Fully pushed: {}; not fully pushed: {}", list(&full), list(&partial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RunNames;
    use std::sync::{Condvar, Mutex};

    fn build(image: &str, needs: &[&str]) -> Build {
        Build {
            image: image.to_string(),
            step: BuildStep {
                builder: Default::default(),
                no_cache: false,
                platforms: Vec::new(),
                dockerfile: "Dockerfile".into(),
                tag: format!("r/{image}:run-1"),
                iidfile: format!("/nonexistent/{image}.iid").into(),
                build_args: Vec::new(),
                labels: Vec::new(),
                context: ".".into(),
            },
            reference: format!("r/{image}:run-1"),
            iidfile: std::path::PathBuf::from(format!("/nonexistent/{image}.iid")),
            copies: Vec::new(),
            needs: needs.iter().map(|n| n.to_string()).collect(),
            base: None,
            sources: Vec::new(),
            parent_sources: Vec::new(),
        }
    }

    /// A plan of `images` (name, parents), each pushed as `:1` and `:latest` when `push`.
    fn plan(images: &[(&str, &[&str])], push: bool) -> Plan {
        let builds: Vec<Build> = images.iter().map(|(name, needs)| build(name, needs)).collect();
        let publications = builds
            .iter()
            .map(|b| Publication {
                image: b.image.clone(),
                source: b.reference.clone(),
                targets: ["1", "latest"]
                    .iter()
                    .enumerate()
                    .map(|(i, tag)| {
                        let reference = format!("r/{}:{tag}", b.image);
                        Target {
                            tag: Step::tag(&b.reference, &reference),
                            push: push.then(|| Step::push(&reference)),
                            immutable: i == 0,
                            retag_of: None,
                            reference,
                        }
                    })
                    .collect(),
            })
            .collect();
        let cleanup = builds.iter().map(|b| Step::remove(&b.reference)).collect();
        Plan {
            run: RunNames { token: "1".into(), dir: std::path::PathBuf::from("/nonexistent/run") },
            must_be_absent: Vec::new(),
            pulls: Vec::new(),
            builds,
            verifications: Vec::new(),
            comparisons: Vec::new(),
            force: false,
            publications,
            cleanup,
        }
    }

    /// A world that does what its script says and writes down what it was asked. With `gated`,
    /// a build waits until the test lets it finish, so the test decides the order of events.
    #[derive(Default)]
    struct Script {
        gated: bool,
        failing: Vec<&'static str>,
        panicking: Option<&'static str>,
        failing_push: Option<&'static str>,
        /// The image whose hardening check finds a violation.
        failing_check: Option<&'static str>,
        /// The images a comparison finds equal to the published ones.
        unchanged: Vec<&'static str>,
        released: Mutex<Vec<String>>,
        wake: Condvar,
        events: Mutex<Vec<String>>,
    }

    impl Script {
        fn note(&self, event: String) {
            self.events.lock().unwrap().push(event);
            self.wake.notify_all();
        }

        fn events(&self) -> Vec<String> {
            self.events.lock().unwrap().clone()
        }

        /// The images whose builds started, in order.
        fn started(&self) -> Vec<String> {
            self.events().iter().filter_map(|e| e.strip_prefix("build ").map(String::from)).collect()
        }

        /// Waits until `n` builds have started.
        fn wait_started(&self, n: usize) {
            self.wait_for(|events| events.iter().filter(|e| e.starts_with("build ")).count() >= n);
        }

        fn wait_for(&self, done: impl Fn(&[String]) -> bool) {
            let mut events = self.events.lock().unwrap();
            while !done(&events) {
                events = self.wake.wait(events).unwrap();
            }
        }

        fn release(&self, image: &str) {
            self.released.lock().unwrap().push(image.to_string());
            self.wake.notify_all();
        }
    }

    /// Releases every gated build when dropped: a failed assertion in a gated test then ends
    /// the test instead of leaving the scheduler waiting forever.
    struct ReleaseAll<'a>(&'a Script);

    impl Drop for ReleaseAll<'_> {
        fn drop(&mut self) {
            for image in ["a", "b", "c", "d", "e"] {
                self.0.release(image);
            }
        }
    }

    impl World for Script {
        fn program(&self) -> &str {
            "docker"
        }

        fn check_absent(&self, _: &[String], _: usize) -> anyhow::Result<()> {
            Ok(())
        }

        fn pull(&self, reference: &str) -> anyhow::Result<()> {
            self.note(format!("pull {reference}"));
            Ok(())
        }

        fn base_digest(&self, reference: &str) -> anyhow::Result<String> {
            self.note(format!("base {reference}"));
            Ok(format!("sha256:{reference}"))
        }

        fn compare(&self, c: &Comparison, _: &Origins, _: &Checked, force: bool) -> anyhow::Result<Verdict> {
            self.note(format!("compare {}", c.image));
            let same = self.unchanged.contains(&c.image.as_str());
            Ok(Verdict {
                publish: !same || force,
                why: vec![if same { "unchanged".into() } else { "packages: a 1 -> 2".into() }],
                packages: Default::default(),
                published: Some(format!("sha256:published-{}", c.image)),
                since: Some("1".into()),
            })
        }

        fn adopt(&self, c: &Comparison, digest: &str, _: &str) -> anyhow::Result<String> {
            self.note(format!("adopt {} {digest}", c.image));
            Ok(format!("sha256:id-of-published-{}", c.image))
        }

        fn release(&self, c: &Comparison) {
            self.note(format!("release {}", c.image));
        }

        fn build(&self, build: &Build, _: bool) -> anyhow::Result<Built> {
            self.note(format!("build {}", build.image));
            let label = |key: &str| build.step.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            if let Some(digest) = label(crate::model::rebuild::BASE_DIGEST) {
                self.note(format!("label {} {digest}", build.image));
            }
            if let Some(sources) = label(crate::model::rebuild::SOURCES) {
                self.note(format!("sources {} {sources}", build.image));
            }
            if self.gated {
                let mut released = self.released.lock().unwrap();
                while !released.contains(&build.image) {
                    released = self.wake.wait(released).unwrap();
                }
            }
            if self.panicking == Some(build.image.as_str()) {
                panic!("scripted panic");
            }
            let success = !self.failing.contains(&build.image.as_str());
            let tail = if success {
                String::new()
            } else {
                "Step 2/2 : RUN false\nreturned a non-zero code: 1\n".into()
            };
            Ok(Built {
                success,
                status: if success {
                    "exited with exit status: 0".into()
                } else {
                    "exited with exit status: 1".into()
                },
                output: String::new(),
                tail,
                id: Some(format!("sha256:{}", build.image)),
            })
        }

        fn verify(&self, v: &Verification) -> anyhow::Result<Checked> {
            self.note(format!("check {}", v.image));
            let violations = if self.failing_check == Some(v.image.as_str()) {
                vec![Violation { rule: "absent", path: "/bin/su".into(), detail: "present".into() }]
            } else {
                Vec::new()
            };
            Ok(Checked {
                violations,
                files: 1,
                packages: Found::default(),
                notes: Vec::new(),
                content: Content::default(),
            })
        }

        fn publish(
            &self,
            _: &Publication,
            t: &Target,
            id: &str,
            _: &mut Transcript,
        ) -> anyhow::Result<Option<Pushed>> {
            self.note(format!("tag {}", t.reference));
            let Some(_) = &t.push else { return Ok(None) };
            if self.failing_push == Some(t.reference.as_str()) {
                bail!("denied: requested access to the resource is denied");
            }
            self.note(format!("push {}", t.reference));
            let image =
                t.reference.trim_start_matches("r/").split(':').next().unwrap_or_default().to_string();
            Ok(Some(Pushed {
                image,
                reference: t.reference.clone(),
                digest: id.replace("sha256:", "sha256:m-"),
            }))
        }

        fn clean_up(&self, step: &Step) -> anyhow::Result<()> {
            let verb = if matches!(step, Step::Tag { .. }) { "keep" } else { "rm" };
            self.note(format!("{verb} {}", step.subject()));
            Ok(())
        }
    }

    fn run(
        world: &Script,
        plan: &Plan,
        jobs: usize,
        on_failure: OnBuildFailure,
    ) -> (Report, anyhow::Result<()>) {
        let log = Log::new(&crate::sys::env::Env::default());
        let (mut reports, result) =
            execute(world, std::slice::from_ref(plan), &log, ExecOptions { jobs, on_failure });
        (reports.remove(0), result)
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
            order::longest_chain_first(&steps).into_iter().map(|i| steps[i].image.as_str()).collect();
        assert_eq!(names, ["c", "d", "a", "b", "e", "f"]);
    }

    /// The dry run lists builds in `order::one_at_a_time`; one job runs them in that order.
    #[test]
    fn one_job_builds_in_the_order_a_dry_run_lists() {
        let world = Script::default();
        let plan = plan(&[("a", &[]), ("b", &[]), ("c", &["b"]), ("d", &["c"]), ("e", &["a"])], false);
        run(&world, &plan, 1, OnBuildFailure::Stop).1.unwrap();
        let listed: Vec<&str> =
            order::one_at_a_time(&plan.builds).into_iter().map(|i| plan.builds[i].image.as_str()).collect();
        assert_eq!(listed, ["b", "a", "c", "d", "e"], "the longest chain first, then by chain length");
        assert_eq!(world.started(), listed);
    }

    /// With two jobs the head of the chain c -> d -> e starts at once, and each freed slot
    /// goes to the ready image with the longest chain behind it: three rounds, not four.
    #[test]
    fn freed_slots_go_to_the_longest_chain_in_order() {
        let world = Script { gated: true, ..Default::default() };
        let plan = plan(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &["c"]), ("e", &["d"])], false);
        std::thread::scope(|scope| {
            let _unblock = ReleaseAll(&world);
            let running = scope.spawn(|| run(&world, &plan, 2, OnBuildFailure::Stop));
            world.wait_started(2);
            // Both start at once, in either order: the two at the head of the priority.
            let mut first = world.started();
            first.sort();
            assert_eq!(first, ["a", "c"]);
            world.release("c");
            world.wait_started(3);
            assert_eq!(world.started()[2], "d", "d's parent is built, and e waits on d");
            world.release("a");
            world.wait_started(4);
            assert_eq!(world.started()[3], "b");
            world.release("d");
            world.wait_started(5);
            assert_eq!(world.started()[4], "e");
            world.release("b");
            world.release("e");
            let (report, result) = running.join().unwrap();
            result.unwrap();
            assert_eq!(report.ids.len(), 5);
        });
    }

    /// An image is checked as soon as it is built, while the others still build; a failed
    /// check still stops the run before any tag.
    #[test]
    fn each_image_is_checked_while_the_others_build() {
        let world = Script { gated: true, failing_check: Some("b"), ..Default::default() };
        let plan = checked(plan(&[("a", &[]), ("b", &[])], true), &["a", "b"]);
        std::thread::scope(|scope| {
            let _unblock = ReleaseAll(&world);
            let running = scope.spawn(|| run(&world, &plan, 2, OnBuildFailure::Stop));
            world.wait_started(2);
            world.release("a");
            world.wait_for(|events| events.iter().any(|e| e == "check a"));
            assert!(!world.events().contains(&"check b".to_string()), "b is still building");
            world.release("b");
            let (report, result) = running.join().unwrap();
            let message = format!("{:#}", result.unwrap_err());
            assert!(message.contains("b: absent: /bin/su: present"), "{message}");
            assert_eq!(report.kept, ["b"]);
        });
        assert!(!world.events().iter().any(|e| e.starts_with("tag ")), "{:?}", world.events());
    }

    fn checked(mut plan: Plan, images: &[&str]) -> Plan {
        plan.verifications = images
            .iter()
            .map(|image| Verification {
                image: image.to_string(),
                reference: format!("r/{image}:run-1"),
                spec: Default::default(),
                kept_as: format!("r/{image}:rejected"),
            })
            .collect();
        plan
    }

    /// A broken rule stops nothing else, so every image's violations come out at once, but
    /// nothing is built on the image that breaks it.
    #[test]
    fn a_broken_rule_skips_what_is_built_on_that_image_only() {
        let world = Script { failing_check: Some("a"), ..Default::default() };
        let plan = checked(plan(&[("a", &[]), ("b", &["a"]), ("c", &[])], true), &["a", "b", "c"]);
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        let message = format!("{:#}", result.unwrap_err());
        assert_eq!(world.started(), ["a", "c"]);
        assert!(
            message.starts_with(
                "the hardening baseline is not met:\n  a: absent: /bin/su: present\n  (kept as r/a:rejected"
            ),
            "{message}"
        );
        assert!(message.ends_with("Nothing was pushed. Built: c. Not built: b (needs a)"), "{message}");
        assert_eq!(report.kept, ["a"]);
        assert!(!world.events().iter().any(|e| e.starts_with("tag ")));
        // The one kept name replaces an earlier run's; every run name goes.
        let cleaned: Vec<String> =
            world.events().into_iter().filter(|e| e.starts_with("rm ") || e.starts_with("keep ")).collect();
        assert_eq!(cleaned, ["rm r/a:rejected", "keep r/a:rejected", "rm r/a:run-1", "rm r/c:run-1"]);
    }

    /// A local build (a plan that pushes nothing) tags what passed and reports the rest;
    /// nothing is tagged on an image that failed, nor on what is built on it.
    #[test]
    fn a_local_build_tags_what_passed_and_reports_the_rest() {
        let world = Script { failing_check: Some("a"), failing: vec!["d"], ..Default::default() };
        let plan = checked(
            plan(&[("a", &[]), ("b", &["a"]), ("c", &[]), ("d", &[]), ("e", &["c"])], false),
            &["a", "b", "c", "d", "e"],
        );
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::KeepGoing);
        let message = format!("{:#}", result.unwrap_err());
        assert!(message.contains("build of d failed"), "{message}");
        assert!(message.contains("a: absent: /bin/su: present"), "{message}");
        assert!(message.contains("Built: c, e. Not built: b (needs a)"), "{message}");
        assert!(message.ends_with("\nTagged what passed: r/c:1 r/c:latest r/e:1 r/e:latest"), "{message}");
        let tagged: Vec<String> = world.events().into_iter().filter(|e| e.starts_with("tag ")).collect();
        assert_eq!(tagged, ["tag r/c:1", "tag r/c:latest", "tag r/e:1", "tag r/e:latest"]);
        assert_eq!(report.passed, ["c", "e"]);
    }

    /// Publishing stays all-or-nothing: a failed check tags nothing, even what passed.
    #[test]
    fn a_failed_check_tags_nothing_when_the_plan_pushes() {
        let world = Script { failing_check: Some("a"), ..Default::default() };
        let plan = checked(plan(&[("a", &[]), ("c", &[])], true), &["a", "c"]);
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        let message = format!("{:#}", result.unwrap_err());
        assert!(message.ends_with("Nothing was pushed. Built: c"), "{message}");
        assert!(!world.events().iter().any(|e| e.starts_with("tag ") || e.starts_with("push ")));
        assert!(report.pushed.is_empty());
    }

    /// A plan that compares `images` with their published images before pushing them.
    fn compared(mut plan: Plan, images: &[&str]) -> Plan {
        plan = checked(plan, images);
        for b in &mut plan.builds {
            b.base = Some(match b.needs.first() {
                Some(parent) => BaseSource::Parent { image: parent.clone(), named: format!("r/{parent}:1") },
                None => BaseSource::Outside("upstream:1".into()),
            });
        }
        plan.comparisons = images
            .iter()
            .map(|i| Comparison { image: i.to_string(), published: format!("r/{i}:1") })
            .collect();
        plan
    }

    /// An unchanged image is not pushed again; what is built on it builds on the published
    /// image (its base label says so), and is pushed when it changed.
    #[test]
    fn an_unchanged_parent_is_not_pushed_and_its_children_build_on_the_published_one() {
        let world = Script { unchanged: vec!["a"], ..Default::default() };
        let plan = compared(plan(&[("a", &[]), ("b", &["a"]), ("c", &[])], true), &["a", "b", "c"]);
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        result.unwrap();
        let events = world.events();
        let at =
            |e: &str| events.iter().position(|x| x == e).unwrap_or_else(|| panic!("no {e} in {events:?}"));
        assert!(at("adopt a sha256:published-a") < at("build b"));
        assert!(events.contains(&"label b sha256:id-of-published-a".to_string()), "{events:?}");
        assert!(events.contains(&"label a sha256:upstream:1".to_string()), "{events:?}");
        assert!(!events.iter().any(|e| e.starts_with("tag r/a:")), "{events:?}");
        assert!(events.contains(&"tag r/b:1".to_string()) && events.contains(&"tag r/c:latest".to_string()));
        assert!(report.unchanged("a") && !report.unchanged("b"));
        assert_eq!(report.origins["b"].base.as_ref().unwrap().digest, "sha256:id-of-published-a");
        assert_eq!(
            world.events().iter().filter(|e| e.starts_with("base ")).count(),
            1,
            "asked once per base"
        );
    }

    /// An inventory parent a child only copies from is recorded among its sources, by the image
    /// id the child was built with: the published one when the parent is unchanged.
    #[test]
    fn a_parent_copied_from_is_among_the_sources_by_the_id_built_on() {
        let world = Script { unchanged: vec!["a"], ..Default::default() };
        let mut plan = compared(plan(&[("a", &[]), ("b", &["a"])], true), &["a", "b"]);
        plan.builds[1].base = Some(BaseSource::Outside("upstream:1".into()));
        plan.builds[1].parent_sources = vec![("a".into(), "r/a:1".into())];
        let (_, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        result.unwrap();
        let events = world.events();
        assert!(events.contains(&"sources b r/a:1@sha256:id-of-published-a".to_string()), "{events:?}");
    }

    /// --force publishes what is unchanged too, and children then build on this run's parent.
    #[test]
    fn force_publishes_the_unchanged_and_builds_children_on_this_run() {
        let world = Script { unchanged: vec!["a", "b"], ..Default::default() };
        let mut plan = compared(plan(&[("a", &[]), ("b", &["a"])], true), &["a", "b"]);
        plan.force = true;
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        result.unwrap();
        let events = world.events();
        assert!(!events.iter().any(|e| e.starts_with("adopt ")), "{events:?}");
        assert!(events.contains(&"label b sha256:a".to_string()), "{events:?}");
        assert_eq!(report.pushed.len(), 4);
    }

    /// With a failed build as well, the broken rules found meanwhile are still reported.
    #[test]
    fn a_failed_build_does_not_hide_the_broken_rules_found_meanwhile() {
        let world = Script { failing: vec!["b"], failing_check: Some("a"), ..Default::default() };
        let plan = checked(plan(&[("a", &[]), ("b", &[])], true), &["a", "b"]);
        let (_, result) = run(&world, &plan, 1, OnBuildFailure::KeepGoing);
        let message = format!("{:#}", result.unwrap_err());
        assert!(message.starts_with("build of b failed: "), "{message}");
        assert!(
            message.contains("\nAlso, the hardening baseline is not met:\n  a: absent: /bin/su: present"),
            "{message}"
        );
    }

    #[test]
    fn the_first_failure_stops_new_builds_and_nothing_is_tagged() {
        let world = Script { failing: vec!["a"], ..Default::default() };
        let plan = plan(&[("a", &[]), ("b", &[]), ("c", &["a"])], true);
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        let message = format!("{:#}", result.unwrap_err());
        assert_eq!(world.started(), ["a"]);
        assert!(message.starts_with("build of a failed: docker build exited with exit status: 1: Step 2/2 : RUN false\nreturned a non-zero code: 1\nNothing was pushed"), "{message}");
        assert!(message.ends_with("Not built: b (stopped after the failure), c (needs a)"), "{message}");
        assert!(report.pushed.is_empty() && !world.events().iter().any(|e| e.starts_with("tag ")));
        // Only what was built is cleaned up: a's build made no image.
        assert!(!world.events().iter().any(|e| e.starts_with("rm ")), "{:?}", world.events());
    }

    #[test]
    fn keep_going_builds_what_does_not_depend_on_the_failure() {
        let world = Script { failing: vec!["a"], ..Default::default() };
        let plan = plan(&[("a", &[]), ("b", &[]), ("c", &["a"]), ("d", &["b"])], true);
        let (_, result) = run(&world, &plan, 1, OnBuildFailure::KeepGoing);
        let message = format!("{:#}", result.unwrap_err());
        assert_eq!(world.started(), ["a", "b", "d"]);
        assert!(message.ends_with("Nothing was pushed. Built: b, d. Not built: c (needs a)"), "{message}");
        assert!(!world.events().iter().any(|e| e.starts_with("tag ")));
        let removed: Vec<String> = world.events().into_iter().filter(|e| e.starts_with("rm ")).collect();
        assert_eq!(removed, ["rm r/b:run-1", "rm r/d:run-1"]);
    }

    #[test]
    fn each_image_goes_out_in_order_and_its_run_name_goes_last() {
        let world = Script::default();
        let plan = plan(&[("a", &[]), ("b", &["a"])], true);
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        result.unwrap();
        let events = world.events();
        assert_eq!(
            events,
            [
                "build a",
                "build b",
                "tag r/a:1",
                "push r/a:1",
                "tag r/a:latest",
                "push r/a:latest",
                "tag r/b:1",
                "push r/b:1",
                "tag r/b:latest",
                "push r/b:latest",
                "rm r/a:run-1",
                "rm r/b:run-1"
            ]
        );
        assert_eq!(report.digest("b"), Some("sha256:m-b"));
    }

    #[test]
    fn a_failed_push_says_what_the_registry_holds_of_each_image() {
        let world = Script { failing_push: Some("r/b:latest"), ..Default::default() };
        let plan = plan(&[("a", &[]), ("b", &[])], true);
        let (report, result) = run(&world, &plan, 1, OnBuildFailure::Stop);
        let message = format!("{:#}", result.unwrap_err());
        assert!(message.starts_with("push of b (r/b:latest) failed: denied"), "{message}");
        assert!(message.ends_with("Fully pushed: a; not fully pushed: b (1 of 2 tags)"), "{message}");
        assert_eq!(report.pushed.len(), 3);
    }

    /// With jobs to spare, a child still goes out only after its parent, and not at all when
    /// the parent's push failed.
    #[test]
    fn a_child_is_published_only_after_its_parent() {
        let world = Script::default();
        let plan = plan(&[("a", &[]), ("b", &["a"]), ("c", &[])], true);
        run(&world, &plan, 3, OnBuildFailure::Stop).1.unwrap();
        let events = world.events();
        let at =
            |e: &str| events.iter().position(|x| x == e).unwrap_or_else(|| panic!("no {e} in {events:?}"));
        assert!(at("push r/a:latest") < at("tag r/b:1"), "{events:?}");

        let world = Script { failing_push: Some("r/a:latest"), ..Default::default() };
        let (_, result) = run(&world, &plan, 3, OnBuildFailure::Stop);
        let message = format!("{:#}", result.unwrap_err());
        assert!(
            !world.events().iter().any(|e| e.starts_with("tag r/b") || e.starts_with("push r/b")),
            "{:?}",
            world.events()
        );
        assert!(message.contains("not fully pushed: a (1 of 2 tags), b"), "{message}");
    }

    #[test]
    fn a_worker_that_panics_fails_the_run_with_a_message() {
        let world = Script { panicking: Some("b"), ..Default::default() };
        let plan = plan(&[("a", &[]), ("b", &[]), ("c", &[])], true);
        let (_, result) = run(&world, &plan, 2, OnBuildFailure::Stop);
        let message = format!("{:#}", result.unwrap_err());
        assert!(
            message.contains("build of b failed: internal error: the build of b panicked (scripted panic)"),
            "{message}"
        );
        assert!(!world.events().iter().any(|e| e.starts_with("push ")));
    }
}
