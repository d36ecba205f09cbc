//! What several commands share: the context every command runs in, the images a building
//! command works on, its build settings, and running or showing its plans.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::sys::git;

pub(super) use super::changes::{changed_from_revision, changed_since, chosen_images};
use super::sboms::{default_sbom_dir, sbom_file, writable, write_sboms};
use crate::flags::BuildArgs;
use crate::model::inventory::{Image, Inventory};
use crate::model::labels;
use crate::model::platform::Platform;
use crate::model::sources::own_ignore_file;
use crate::model::tags::ActionsRun;
use crate::plan;
use crate::plan::{BuildOptions, Builder, Inputs, Plan, RunNames};
use crate::run::{execute, lock, ExecOptions, InputsSince, Live, OnBuildFailure, Report};
use crate::sys::docker::Docker;
use crate::sys::env::Env;
use crate::sys::gha::Log;
use crate::sys::registry::Registry;
use crate::sys::{emulation, inputs, random, timing};

/// How to build (builder, pull, cache) and how to run (jobs, failure policy), from the flags
/// and what the container CLI offers. BuildKit is used whenever the client has it; the legacy
/// builder is said once.
fn build_settings(
    ctx: &Ctx,
    flags: &BuildArgs,
    images: usize,
) -> anyhow::Result<(BuildOptions, ExecOptions)> {
    if flags.jobs == Some(0) {
        bail!("--jobs: must be at least 1");
    }
    let builder = match ctx.docker.detect_builder(flags.builder.as_deref()) {
        Ok(builder) => builder,
        // A dry run on a machine without docker still shows the plan, in the plain form.
        Err(e) if flags.dry_run && flags.builder.is_none() => {
            ctx.log.note(&format!("{e:#}; showing the legacy builder's commands"));
            Builder::Legacy
        }
        Err(e) => return Err(e),
    };
    if builder == Builder::Legacy {
        let why = match ctx.docker.buildkit_off() {
            true => "DOCKER_BUILDKIT=0 asks for it".to_string(),
            false => format!("BuildKit is not available from `{}` (no buildx plugin)", ctx.docker.program()),
        };
        ctx.log.note(&format!("{why}: building with the legacy builder, one layer at a time"));
    }
    let jobs = flags.jobs.unwrap_or_else(|| default_jobs(&builder, images));
    let on_failure = if flags.keep_going { OnBuildFailure::KeepGoing } else { OnBuildFailure::Stop };
    Ok((
        BuildOptions { pull: flags.pull, no_cache: flags.no_cache, builder, host: emulation::host() },
        ExecOptions { jobs, on_failure },
    ))
}

/// How many images build (and push) at once when --jobs does not say. BuildKit schedules the
/// steps of every build it is given in the engine itself, so every ready build starts at once;
/// the legacy builder and podman build in the client, one process a build, so as many as there
/// are CPUs. (Measured on the bench's fixture, five 25-step images with BuildKit on 2 CPUs:
/// 23.1 s at two jobs, 16.9 s at five.)
fn default_jobs(builder: &Builder, images: usize) -> usize {
    match builder {
        Builder::Buildx { .. } | Builder::BuildKit => images.max(1),
        Builder::Legacy | Builder::Podman => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// What a building command plans from, prepared alike by build, publish, ci-pr and ci-main:
/// how its images build on their parents, the build settings, and the run's names.
pub(super) struct Prepared<'a> {
    inventory: &'a Inventory,
    pub images: Vec<&'a Image>,
    lineage: plan::Lineage,
    options: BuildOptions,
    pub exec: ExecOptions,
    run: RunNames,
}

impl<'a> Prepared<'a> {
    pub fn new(
        ctx: &Ctx,
        inventory: &'a Inventory,
        images: Vec<&'a Image>,
        flags: &BuildArgs,
    ) -> anyhow::Result<Prepared<'a>> {
        let lineage = plan::lineage(inventory, &images)?;
        let (options, exec) = build_settings(ctx, flags, images.len())?;
        if !flags.dry_run {
            builder_makes_platforms(ctx, &options.builder, &images)?;
        }
        if options.builder == Builder::Legacy {
            for image in images
                .iter()
                .filter(|i| inventory.sources.image(&i.name).is_ok_and(|f| f.own_ignore.is_some()))
            {
                ctx.log.note(&format!(
                    "{}: the legacy builder reads only the context's .dockerignore, not {}: BuildKit (the buildx \
                     plugin) or podman keeps what it excludes out of the image",
                    image.name,
                    own_ignore_file(&image.dockerfile).display()
                ));
            }
        }
        Ok(Prepared {
            inventory,
            images,
            lineage,
            options,
            exec,
            run: RunNames::new(random::token(48), &std::env::temp_dir()),
        })
    }

    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            inventory: self.inventory,
            registry: &self.inventory.registry,
            images: &self.images,
            lineage: &self.lineage,
            options: &self.options,
            run: &self.run,
        }
    }
}

/// Fails before anything builds when an image's platforms cannot be built here: a buildx
/// builder that does not offer one, or a foreign architecture this machine cannot emulate.
fn builder_makes_platforms(ctx: &Ctx, builder: &Builder, images: &[&Image]) -> anyhow::Result<()> {
    let mut asked: Vec<(&str, &String)> =
        images.iter().flat_map(|i| i.platforms.iter().map(move |p| (i.name.as_str(), p))).collect();
    asked.dedup_by(|a, b| a.1 == b.1);
    if asked.is_empty() {
        return Ok(());
    }
    // A remote engine runs the builds on another machine, whose emulators this one cannot see.
    if ctx.env.get("DOCKER_HOST").is_none_or(|h| h.starts_with("unix://")) {
        for (image, written) in &asked {
            let Some(platform) = Platform::parse(written) else { continue };
            if let Some(why) = emulation::missing(&platform) {
                bail!(
                    "images.{image}.platforms asks for {platform}, which this machine cannot build: {why}. Install \
                     an emulator: on Debian or Ubuntu `apt-get install qemu-user-static` registers it with \
                     binfmt_misc (where no systemd runs: `grep -v '^#' /usr/lib/binfmt.d/qemu-{}.conf > \
                     /proc/sys/fs/binfmt_misc/register`); in GitHub Actions add docker/setup-qemu-action before \
                     the build. Or drop {platform} from the image's platforms",
                    platform.machine().map_or("<arch>", |m| m.0)
                );
            }
        }
    }
    let Builder::Buildx { name } = builder else { return Ok(()) };
    let (_, offered) = ctx.docker.buildx_builder(name.as_deref())?;
    let builder = name.as_deref().unwrap_or("the current builder");
    if let Some((image, missing)) = asked.iter().find(|(_, p)| !offered.is_empty() && !offered.contains(p)) {
        bail!(
            "images.{image}.platforms asks for {missing}, which {builder} does not build (it builds {}): pass \
             --builder with one that does, or drop {missing}",
            offered.join(", ")
        );
    }
    Ok(())
}

/// Prints the plans (a dry run: exactly the steps, on stdout) or runs them, then writes the
/// SBOM of every image built.
pub(super) fn run_or_show(
    ctx: &Ctx,
    inventory: &Inventory,
    plans: &[Plan],
    exec: ExecOptions,
    flags: &BuildArgs,
) -> (Vec<Report>, anyhow::Result<()>) {
    let sbom_dir = match (&flags.sbom_dir, ctx.env.get("XTASK_SBOM_DIR")) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => default_sbom_dir(),
    };
    if sbom_dir.to_string_lossy().trim().is_empty() {
        let e =
            anyhow::anyhow!("--sbom-dir is empty: name the folder the SBOMs go to (or leave the option out)");
        return (Vec::new(), Err(e));
    }
    if flags.dry_run {
        for plan in plans {
            ctx.log.say_raw(&plan.display(ctx.docker.program()));
        }
        for build in plans.iter().flat_map(|p| &p.builds) {
            ctx.log.say(&format!(
                "# write {}: the SPDX 2.3 SBOM of {}",
                sbom_file(&sbom_dir, build).display(),
                build.image
            ));
        }
        return (Vec::new(), Ok(()));
    }
    // The SBOM folder must take every file before anything builds or is pushed.
    let files: Vec<PathBuf> = plans.iter().flat_map(|p| &p.builds).map(|b| sbom_file(&sbom_dir, b)).collect();
    if let Err(e) = writable(&sbom_dir, &files) {
        return (Vec::new(), Err(e));
    }
    let (mut reports, result) = run(ctx, inventory, plans, exec);
    // Also after a failure: an image pushed before it is published, and gets its SBOM (and
    // its attestations, which take the SBOM).
    let written = timing::span("sbom", "", || write_sboms(ctx, inventory, plans, &mut reports, &sbom_dir));
    match (result, written) {
        (Err(e), Err(w)) => {
            ctx.log.warning(&format!("{w:#}"));
            (reports, Err(e))
        }
        (Err(e), Ok(())) | (Ok(()), Err(e)) => (reports, Err(e)),
        (Ok(()), Ok(())) => (reports, Ok(())),
    }
}

/// Runs the plans against the engine and, when anything is asked of or pushed to the
/// registry, the registry.
fn run(
    ctx: &Ctx,
    inventory: &Inventory,
    plans: &[Plan],
    exec: ExecOptions,
) -> (Vec<Report>, anyhow::Result<()>) {
    let asks = plans.iter().any(|p| {
        !p.must_be_absent.is_empty()
            || !p.comparisons.is_empty()
            || p.publications.iter().flat_map(|x| &x.targets).any(|t| t.push.is_some())
    });
    // The engine's answer and its registry settings are asked at once; an engine that does
    // not answer is the error to show, whatever the other question got.
    let (engine, registry) = timing::span("engine and registry", "", || {
        std::thread::scope(|scope| {
            let registry = scope.spawn(|| {
                asks.then(|| Registry::connect(&ctx.docker, &ctx.env, &inventory.registry, ctx.log.clone()))
            });
            let engine = ctx.docker.check_engine();
            (engine, registry.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })
    });
    if let Err(e) = engine {
        return (Vec::new(), Err(e));
    }
    let registry = match registry.transpose() {
        Ok(registry) => registry,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let since = |revision: &str| -> anyhow::Result<Vec<(String, String)>> {
        let changed = changed_from_revision(inventory, revision)?;
        Ok(changed.into_iter().map(|(name, why)| (name, why.to_string())).collect())
    };
    let in_git = git::repository_root(inventory.folder()).is_ok();
    let connect = |host: &str| Registry::connect(&ctx.docker, &ctx.env, host, ctx.log.clone());
    let world = Live {
        connect: &connect,
        docker: &ctx.docker,
        registry: registry.as_ref(),
        log: ctx.log.clone(),
        lock_dir: lock::folder(&ctx.env),
        read_back: Default::default(),
        inputs_since: in_git.then_some(&since as &InputsSince),
        changes: Default::default(),
        pulled: Default::default(),
    };
    execute(&world, plans, &ctx.log, exec)
}

/// Warns (an annotation in Actions) about every image whose base's support ends within 90
/// days, and returns the errors of those whose base's support has ended.
pub(super) fn base_support(ctx: &Ctx, images: &[&Image]) -> Vec<String> {
    let now = std::time::SystemTime::now();
    let mut ended = Vec::new();
    for image in images {
        let Some(ends) = &image.base_support_ends else { continue };
        match crate::model::support::message(&image.name, ends, now) {
            Some((crate::model::support::Support::Ended { .. }, text)) => ended.push(text),
            Some((_, text)) => ctx.log.warning(&text),
            None => {}
        }
    }
    ended
}

/// One line per pushed image built on an image that is never pushed: such a parent is rebuilt
/// every run and nothing published says what it was, so the child counts as changed (its base
/// moved) and is published again every run.
pub(super) fn unpublished_parents(inventory: &Inventory, images: &[&Image]) -> Vec<String> {
    let mut lines = Vec::new();
    for image in images.iter().filter(|i| i.push) {
        for parent in image.depends_on.iter().filter(|p| inventory.images.get(*p).is_some_and(|p| !p.push)) {
            lines.push(format!(
                "images.{}: built on {parent}, which has push = false, so it is published again on every run \
                 (its base, this run's {parent}, always counts as moved); push {parent} too for `publish only \
                 what changed` to skip it",
                image.name
            ));
        }
    }
    lines
}

/// Warns about every image whose base's support ends soon or has ended: build and publish
/// (a laptop, a hand-run publish) say so and go on; ci-pr and ci-main refuse.
pub(super) fn warn_about_base_support(ctx: &Ctx, images: &[&Image]) {
    for ended in base_support(ctx, images) {
        ctx.log.warning(&ended);
    }
}

/// Fails, naming each, when an image's base is out of support: ci-pr and ci-main build nothing
/// on an end-of-life base.
pub(super) fn require_base_support(ctx: &Ctx, images: &[&Image]) -> anyhow::Result<()> {
    let ended = base_support(ctx, images);
    if !ended.is_empty() {
        bail!("{}. Nothing was built or pushed", ended.join("\n"));
    }
    Ok(())
}

/// What every command may need: the environment, the container CLI, the inventory's location.
pub struct Ctx {
    pub env: Env,
    pub docker: Docker,
    pub log: Log,
    inventory: PathBuf,
    registry: Option<String>,
}

impl Ctx {
    /// Fails when a setting in the environment (XTASK_*) is not what it must be.
    pub fn new(env: Env, inventory: Option<PathBuf>, registry: Option<String>) -> anyhow::Result<Ctx> {
        let log = Log::new(&env);
        let docker = Docker::from_env(&env, log.clone())?;
        let inventory = inventory.unwrap_or_else(default_inventory);
        Ok(Ctx { env, docker, log, inventory, registry })
    }

    /// The workflow run the tool runs in, when it runs in GitHub Actions.
    pub fn actions_run(&self) -> Option<ActionsRun> {
        self.env.in_github_actions().then(|| ActionsRun {
            number: self.env.get("GITHUB_RUN_NUMBER").map(String::from),
            attempt: self.env.get("GITHUB_RUN_ATTEMPT").map(String::from),
        })
    }

    /// The repository's address in GitHub Actions (the images' source label).
    pub fn source_url(&self) -> Option<String> {
        let (server, repository) = (self.env.get("GITHUB_SERVER_URL")?, self.env.get("GITHUB_REPOSITORY")?);
        Some(format!("{}/{repository}", server.trim_end_matches('/')))
    }

    /// The build time: $SOURCE_DATE_EPOCH when set (reproducible builds), else now.
    pub fn created(&self) -> anyhow::Result<String> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(labels::rfc3339(self.env.number("SOURCE_DATE_EPOCH", now)?))
    }

    /// The validated inventory with any --registry override applied.
    pub fn inventory(&self) -> anyhow::Result<Inventory> {
        inputs::load_inventory(&self.inventory)?.with_registry(self.registry.as_deref())
    }
}

/// images/images.toml at the workspace root.
fn default_inventory() -> PathBuf {
    workspace_root().join("images").join("images.toml")
}

/// The folder holding the xtask crate: the workspace root.
pub(super) fn workspace_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).to_path_buf()
}
