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
use std::time::Duration;

use anyhow::bail;

mod compare;
mod indexes;
pub mod inspect;
mod live;
pub mod lock;
mod pin;
pub mod preflight;
mod progress;
mod publish;
mod schedule;
mod summary;

pub use compare::InputsSince;
pub use live::Live;
use publish::publish_all;
pub(crate) use schedule::State;
use schedule::{build_all, pull_all, resolve_bases};

use crate::model::filesystem::Content;
use crate::model::hardening::Violation;
use crate::model::packages::Found;
use crate::model::rebuild::{Origins, Verdict};
use crate::model::step::Step;
use crate::plan::Pin;
use crate::plan::{Build, Comparison, Plan, Publication, Target, Verification};
use crate::sys::gha::Log;
use crate::sys::interrupt::{self};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub image: String,
    pub reference: String,
    /// The digest the registry holds under the reference, read back after the push.
    pub digest: String,
}

#[derive(Debug, Default)]
pub struct Report {
    /// The local names given to bases pinned for a platform (removed at the end).
    pub pinned: Vec<String>,
    /// The builds whose SBOM this run wrote (cmd/sboms.rs).
    pub sboms: Vec<String>,
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
        match &self.live {
            Some(log) => log.info(line),
            None => {
                self.text.push_str(line);
                self.text.push('\n');
            }
        }
    }

    /// What another program printed.
    pub fn output(&mut self, text: &str) {
        match &self.live {
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
    /// Pins an outside base for one platform (its manifest for that platform, pulled by digest
    /// and named `pin.local`); returns that manifest's digest.
    fn pin(&self, pin: &Pin) -> anyhow::Result<String>;
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
            let built = build_all(world, plan, log, options, &mut report);
            indexes::decide_as_one(plan, &mut report);
            match built {
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
    remove_run_names(world, plans, &reports, log, options.jobs);
    for plan in plans {
        let _ = std::fs::remove_dir_all(&plan.run.dir);
    }
    (reports, result)
}

/// Every name this run gave goes (its builds', its pinned bases'); an image kept for a look
/// is first copied to its one kept name, which replaces the one an earlier run kept.
fn remove_run_names(world: &dyn World, plans: &[Plan], reports: &[Report], log: &Log, jobs: usize) {
    let mut built: Vec<&str> = plans
        .iter()
        .zip(reports)
        .flat_map(|(plan, report)| plan.builds.iter().filter(|b| report.ids.contains_key(&b.image)))
        .map(|b| b.reference.as_str())
        .chain(reports.iter().flat_map(|r| r.pinned.iter().map(String::as_str)))
        .collect();
    if interrupt::requested() && !built.is_empty() {
        // Every command would be stopped at once; say what is left instead.
        log.warning(&format!("interrupted: this run's names are left behind: {}", built.join(" ")));
        built.clear();
    }
    let kept = plans
        .iter()
        .zip(reports)
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
    for chunk in cleanup.chunks(jobs.max(1)) {
        let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
            let removing: Vec<_> = chunk.iter().map(|c| scope.spawn(|| world.clean_up(c))).collect();
            removing.into_iter().filter_map(|r| r.join().ok().and_then(Result::err)).collect()
        });
        for e in failures {
            log.warning(&format!("could not remove a name this run gave: {e:#}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::step::BuildStep;
    use crate::plan::Pin;
    use crate::plan::RunNames;
    use crate::plan::{order, BaseSource};
    use std::sync::{Condvar, Mutex};

    fn build(image: &str, needs: &[&str]) -> Build {
        Build {
            image: image.to_string(),
            of: image.to_string(),
            platform: None,
            pins: Vec::new(),
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
                after: Vec::new(),
                image: b.image.clone(),
                source: b.reference.clone(),
                targets: ["1", "latest"]
                    .iter()
                    .enumerate()
                    .map(|(i, tag)| {
                        let reference = format!("r/{}:{tag}", b.image);
                        Target {
                            tag: Some(Step::tag(&b.reference, &reference)),
                            index: None,
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
            pins: Vec::new(),
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

        fn pin(&self, pin: &Pin) -> anyhow::Result<String> {
            self.note(format!("pin {} {}", pin.base, pin.platform));
            Ok(format!("sha256:{}-{}", pin.base, pin.platform.tag_suffix()))
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
                index: None,
                platforms_changed: None,
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
        run_logged(world, plan, jobs, on_failure, &Log::captured(false))
    }

    fn run_logged(
        world: &Script,
        plan: &Plan,
        jobs: usize,
        on_failure: OnBuildFailure,
        log: &Log,
    ) -> (Report, anyhow::Result<()>) {
        let (mut reports, result) =
            execute(world, std::slice::from_ref(plan), log, ExecOptions { jobs, on_failure });
        (reports.remove(0), result)
    }

    /// What a run says, in order: each build in its group with its command, each verdict, each
    /// image's pushes; in GitHub Actions the groups are workflow commands, and stdout holds
    /// nothing the runner could mistake for one.
    #[test]
    fn a_run_reports_each_build_verdict_and_push_in_its_group() {
        use crate::sys::output::Stream;
        let world = Script { unchanged: vec!["a"], ..Default::default() };
        let plan = compared(plan(&[("a", &[]), ("b", &["a"])], true), &["a", "b"]);
        let log = Log::captured(false);
        run_logged(&world, &plan, 1, OnBuildFailure::Stop, &log).1.unwrap();
        let said = log.sink().text(Stream::Out);
        let expected = [
            "==> build a (1/2)\nDOCKER_BUILDKIT=0 docker build --force-rm --file Dockerfile --tag r/a:run-1 \
             --iidfile /nonexistent/a.iid --label org.opencontainers.image.base.name=upstream:1 --label \
             org.opencontainers.image.base.digest=sha256:upstream:1 .\n",
            "a: unchanged\n",
            "a is unchanged: what is built on it builds on the published a (image sha256:id-of-published-a)\n",
            "==> build b (2/2)\n",
            "b: packages: a 1 -> 2\n",
            "==> push b\n",
        ];
        let mut from = 0;
        for part in expected {
            let at =
                said[from..].find(part).unwrap_or_else(|| panic!("no {part:?} after {from} in:\n{said}"));
            from += at + part.len();
        }
        assert!(!said.contains("==> push a"), "an unchanged image is not pushed:\n{said}");
        assert_eq!(log.sink().text(Stream::Err), "", "nothing went wrong, so nothing is said on stderr");

        let github = Log::captured(true);
        let world = Script { unchanged: vec!["a"], ..Default::default() };
        run_logged(&world, &plan, 2, OnBuildFailure::Stop, &github).1.unwrap();
        let said = github.sink().text(Stream::Out);
        assert!(said.contains("::group::build a (") && said.contains("::group::push b\n"), "{said}");
        assert_eq!(said.matches("::group::").count(), said.matches("::endgroup::").count(), "{said}");
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
                platform: None,
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
            .map(|i| Comparison {
                image: i.to_string(),
                of: i.to_string(),
                platform: None,
                platforms: Vec::new(),
                published: format!("r/{i}:1"),
            })
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
