//! The build phase of a plan: builds start as soon as the images they are built on are built
//! (the longest chain first, up to `jobs` at once), each built image is checked against its
//! hardening rules (and compared with the published one) beside the builds still running, and
//! a failure stops new builds unless the run keeps going. `Scheduler` holds that state; the
//! loop in `build_all` feeds it the events the workers send.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Sender};
use std::thread::Scope;
use std::time::{Duration, Instant};

use super::progress::Progress;
use super::summary::build_result;
use super::{Built, Checked, ExecOptions, OnBuildFailure, Report, World};
use crate::model::rebuild::{Base, Origins, Verdict};
use crate::model::step::BuildStep;
use crate::plan::{order, BaseSource, Build, Plan, Verification};
use crate::sys::gha::Log;
use crate::sys::interrupt::{self, Interrupted};
use crate::sys::process::last_lines;

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
pub(super) fn resolve_bases(world: &dyn World, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    // A base pinned for one platform is known by that platform's manifest digest.
    let mut pinned: BTreeMap<String, String> = BTreeMap::new();
    for pin in &plan.pins {
        let digest = world.pin(pin).map_err(|e| e.context(format!("{} for {}", pin.base, pin.platform)))?;
        report.pinned.push(pin.local.clone());
        pinned.insert(pin.local.clone(), digest);
    }
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
        let pin = |name: &str| build.pins.iter().find(|p| p.base == name).and_then(|p| pinned.get(&p.local));
        let base = match &build.base {
            Some(BaseSource::Outside(name)) => match pin(name) {
                Some(digest) => Some(Base { name: name.clone(), digest: digest.clone() }),
                None => Some(digest_of(name, &build.image)?),
            },
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
        // An unchanged image hands on the published one: to its children, which build on it, and
        // (one platform of several) to its image's new index when another platform changed, so
        // that an unchanged platform keeps the manifest digest it was published with.
        let has_children = plan.builds.iter().any(|b| b.needs.contains(&v.image));
        let hands_on = has_children || c.platform.is_some();
        let adopted = match (&verdict.published, verdict.publish, hands_on) {
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
pub(super) fn build_all(
    world: &dyn World,
    plan: &Plan,
    log: &Log,
    options: ExecOptions,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut s = Scheduler::new(world, plan, log, options);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Event>();
        loop {
            skip_dependents(&plan.builds, &mut s.state);
            if !s.stopping {
                s.start_ready(report, scope, &tx);
            }
            if s.building + s.checking == 0 {
                break;
            }
            let event = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(event) => event,
                Err(_) => {
                    s.progress.show(log, &plan.builds, &s.state);
                    continue;
                }
            };
            s.progress.clear(log);
            match event {
                Event::Built { index, elapsed, outcome } => {
                    s.on_built(index, elapsed, outcome, report, scope, &tx)
                }
                Event::Checked { index, elapsed, outcome } => s.on_checked(index, elapsed, outcome, report),
            }
        }
    });
    s.progress.clear(log);
    s.interrupted |= interrupt::requested();
    report.passed = plan
        .builds
        .iter()
        .zip(&s.state)
        .filter(|(_, st)| **st == State::Built)
        .map(|(b, _)| b.image.clone())
        .collect();
    build_result(plan, &s.state, s.interrupted, world.program())
}

/// Where the builds of one plan stand.
struct Scheduler<'a> {
    world: &'a dyn World,
    plan: &'a Plan,
    log: &'a Log,
    jobs: usize,
    on_failure: OnBuildFailure,
    /// One job (or one image): a build's output streams as it comes.
    live: bool,
    progress: Progress,
    state: Vec<State>,
    /// Each build as it ran: with its base's labels, which only the run knows.
    steps: Vec<BuildStep>,
    priority: Vec<usize>,
    building: usize,
    checking: usize,
    stopping: bool,
    interrupted: bool,
}

impl<'a> Scheduler<'a> {
    fn new(world: &'a dyn World, plan: &'a Plan, log: &'a Log, options: ExecOptions) -> Scheduler<'a> {
        let jobs = options.jobs.max(1);
        let live = jobs == 1 || plan.builds.len() <= 1;
        Scheduler {
            world,
            plan,
            log,
            jobs,
            on_failure: options.on_failure,
            live,
            progress: Progress::new(!live && log.sink().shows_progress()),
            state: vec![State::Waiting; plan.builds.len()],
            steps: plan.builds.iter().map(|b| b.step.clone()).collect(),
            priority: order::longest_chain_first(&plan.builds),
            building: 0,
            checking: 0,
            stopping: false,
            interrupted: false,
        }
    }

    /// Starts every build whose parents are built, longest chain first, while a job is free.
    /// One job means one thing at a time, a check included: the order a dry run lists. With
    /// more, checks read images beside the builds.
    fn start_ready<'s>(&mut self, report: &mut Report, scope: &'s Scope<'s, '_>, tx: &Sender<Event>)
    where
        'a: 's,
    {
        for index in self.priority.clone() {
            let busy = if self.jobs == 1 { self.building + self.checking } else { self.building };
            if busy >= self.jobs {
                break;
            }
            let build = &self.plan.builds[index];
            if self.state[index] != State::Waiting || !parents_built(&self.plan.builds, &self.state, build) {
                continue;
            }
            self.state[index] = State::Running(Instant::now());
            self.building += 1;
            let origins = origins_built_on(build, report);
            self.steps[index] = build.with_origins(&origins);
            report.origins.insert(build.image.clone(), origins);
            let build = Build { step: self.steps[index].clone(), ..build.clone() };
            let title = format!("build {} ({}/{})", build.image, index + 1, self.plan.builds.len());
            let (world, log, live, tx) = (self.world, self.log, self.live, tx.clone());
            scope.spawn(move || {
                let start = Instant::now();
                let run = || {
                    if live {
                        log.info(&build.step.command().display(world.program()));
                        log.verbatim(|| world.build(&build, true))
                    } else {
                        world.build(&build, false)
                    }
                };
                let guarded = || guard(&format!("the build of {}", build.image), run);
                let outcome = if live { log.group(&title, guarded) } else { guarded() };
                let _ = tx.send(Event::Built { index, elapsed: start.elapsed(), outcome });
            });
        }
    }

    /// A build ended: its output is shown (kept whole unless live), and a built image's check
    /// starts; a failure is recorded and, unless the run keeps going, stops new builds.
    fn on_built<'s>(
        &mut self,
        index: usize,
        elapsed: Duration,
        outcome: anyhow::Result<Built>,
        report: &mut Report,
        scope: &'s Scope<'s, '_>,
        tx: &Sender<Event>,
    ) where
        'a: 's,
    {
        self.building -= 1;
        let build = &self.plan.builds[index];
        report.add_time(&build.image, elapsed);
        if let (false, Ok(built)) = (self.live, &outcome) {
            let verdict =
                if built.success { format!("{:.1}s", elapsed.as_secs_f64()) } else { "failed".into() };
            self.log.group(&format!("build {} ({verdict})", build.image), || {
                self.log.info(&self.steps[index].command().display(self.world.program()));
                self.log.passthrough(&built.output);
            });
        }
        let failure = match outcome {
            Ok(Built { success: true, id: Some(id), .. }) => {
                report.ids.insert(build.image.clone(), id);
                self.state[index] = State::Built;
                self.start_check(index, report, scope, tx);
                return;
            }
            Ok(Built { success: true, id: None, .. }) => {
                format!("the build reported no image id (expected in {})", build.iidfile.display())
            }
            Ok(built) => {
                let cause = last_lines(&built.tail, 5).join("\n");
                format!("{} build {}: {cause}", self.world.program(), built.status)
            }
            Err(e) => {
                self.interrupted |= e.downcast_ref::<Interrupted>().is_some();
                format!("{e:#}")
            }
        };
        self.state[index] = State::Failed(failure);
        self.stopping |=
            self.on_failure == OnBuildFailure::Stop || self.interrupted || interrupt::requested();
    }

    /// Checks (and compares) build `index` on a worker when the plan has a check for it.
    fn start_check<'s>(&mut self, index: usize, report: &Report, scope: &'s Scope<'s, '_>, tx: &Sender<Event>)
    where
        'a: 's,
    {
        let image = &self.plan.builds[index].image;
        let Some(v) = self.plan.verifications.iter().find(|v| &v.image == image) else { return };
        self.state[index] = State::Checking;
        self.checking += 1;
        let origins = report.origins.get(image).cloned().unwrap_or_default();
        let (world, plan, tx) = (self.world, self.plan, tx.clone());
        scope.spawn(move || {
            let start = Instant::now();
            let outcome = guard(&format!("the check of {}", v.image), || {
                inspect_built(world, plan, v, &origins).map(Box::new)
            });
            let _ = tx.send(Event::Checked { index, elapsed: start.elapsed(), outcome });
        });
    }

    /// A check ended: a passed image is built (its packages and verdict recorded), a broken
    /// rule rejects it, and a check that could not be done leaves it unchecked.
    fn on_checked(
        &mut self,
        index: usize,
        elapsed: Duration,
        outcome: anyhow::Result<Box<Inspected>>,
        report: &mut Report,
    ) {
        self.checking -= 1;
        let image = &self.plan.builds[index].image;
        report.add_time(image, elapsed);
        self.state[index] = match outcome {
            Ok(inspected) if inspected.checked.violations.is_empty() => {
                self.passed(index, *inspected, report);
                State::Built
            }
            Ok(inspected) => {
                report.kept.push(image.clone());
                let list: Vec<String> =
                    inspected.checked.violations.iter().map(|x| format!("  {image}: {x}")).collect();
                State::Rejected(list.join("\n"))
            }
            Err(e) => {
                self.interrupted |= e.downcast_ref::<Interrupted>().is_some();
                self.stopping |= self.on_failure == OnBuildFailure::Stop || self.interrupted;
                State::Unchecked(format!("{e:#}"))
            }
        };
    }

    /// Says and records what the check of a passed image found.
    fn passed(&self, index: usize, inspected: Inspected, report: &mut Report) {
        let Inspected { checked, verdict, adopted } = inspected;
        let image = &self.plan.builds[index].image;
        if self.plan.verifications.iter().any(|v| v.image == *image && v.spec.is_some()) {
            self.log.info(&checked.passed(&self.plan.builds[index].reference));
        }
        for note in &checked.notes {
            self.log.note(&format!("{image}: {note}"));
        }
        report.packages.insert(image.clone(), checked.packages);
        if let Some(verdict) = verdict {
            self.log.info(&format!("{image}: {}", verdict.line()));
            report.verdicts.insert(image.clone(), verdict);
        }
        if let Some(id) = adopted {
            self.log.info(&format!(
                "{image} is unchanged: what is built on it builds on the published {image} (image {id})"
            ));
            report.ids.insert(image.clone(), id);
        }
    }
}

/// What `build` starts from and takes files from: outside images by the digests asked before
/// the builds, inventory parents by the image id this run builds on (its own build, or the
/// published image an unchanged parent handed on).
fn origins_built_on(build: &Build, report: &Report) -> Origins {
    let mut origins = report.origins.get(&build.image).cloned().unwrap_or_default();
    let built_on = |image: &str, named: &str| {
        report.ids.get(image).map(|id| Base { name: named.to_string(), digest: id.clone() })
    };
    if let Some(BaseSource::Parent { image, named }) = &build.base {
        // The parent's build for this build's platform.
        origins.base = built_on(&crate::plan::platforms::key(image, build.platform.as_ref()), named);
    }
    origins.sources.extend(build.parent_sources.iter().filter_map(|(p, named)| built_on(p, named)));
    origins.sources.sort_by(|a, b| a.name.cmp(&b.name));
    origins
}
/// Pulls the fresh bases children need, one after another (the engine shares each layer).
pub(super) fn pull_all(world: &dyn World, plan: &Plan, log: &Log) -> anyhow::Result<()> {
    for pull in &plan.pulls {
        let image = pull.subject();
        log.group(&format!("pull {image}"), || world.pull(image))
            .map_err(|e| e.context(format!("pulling {image} failed. Nothing was built or pushed")))?;
    }
    Ok(())
}

/// Runs `work` on a worker thread; a panic becomes an error that says what was running, so the
/// scheduler never waits for a worker that is gone.
pub(super) fn guard<T>(what: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
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
