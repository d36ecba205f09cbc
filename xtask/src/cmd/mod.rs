//! One module per command; each is `impl flags::Cmd { fn run(self, ctx) }`.

mod build;
mod check;
mod ci;
mod cleanup;
mod lint;
mod list;
mod login;
mod publish;
mod tags;
mod verify;

use std::path::PathBuf;

use crate::docker::Docker;
use crate::env::Env;
use crate::execute::{ExecOptions, OnBuildFailure};
use crate::gha::Log;
use crate::inventory::Inventory;
use crate::plan::{BuildOptions, Builder};

/// The shared build flags of a command's flag struct: build, publish, ci-pr and ci-main all
/// name them alike. `pull` and `no_cache` are given, since ci-pr has no such flags and
/// ci-main adds the schedule to them.
macro_rules! build_flags {
    ($flags:expr, pull: $pull:expr, no_cache: $no_cache:expr) => {
        $crate::cmd::BuildFlags {
            pull: $pull,
            no_cache: $no_cache,
            keep_going: $flags.keep_going,
            jobs: $flags.jobs,
            builder: $flags.builder.as_deref(),
            dry_run: $flags.dry_run,
        }
    };
}
use build_flags;

/// The build-related flags every building command shares.
struct BuildFlags<'a> {
    pull: bool,
    no_cache: bool,
    keep_going: bool,
    jobs: Option<usize>,
    builder: Option<&'a str>,
    dry_run: bool,
}

/// How to build (builder, pull, cache) and how to run (jobs, failure policy), from the flags
/// and what the docker client offers. BuildKit is used whenever the client has it; the legacy
/// builder is said once.
fn build_settings(ctx: &Ctx, flags: BuildFlags<'_>) -> anyhow::Result<(BuildOptions, ExecOptions)> {
    let jobs = match flags.jobs {
        Some(0) => anyhow::bail!("--jobs: must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let builder = match ctx.docker.detect_builder(flags.builder) {
        Ok(builder) => builder,
        // A dry run on a machine without docker still shows the plan, in the plain form.
        Err(e) if flags.dry_run && flags.builder.is_none() => {
            ctx.log.notice(&format!("{e:#}; showing the legacy builder's commands"));
            Builder::Legacy
        }
        Err(e) => return Err(e),
    };
    if builder == Builder::Legacy {
        ctx.log.notice(&format!(
            "BuildKit is not available from `{}` (no buildx plugin): building with the legacy builder, one layer at a time",
            ctx.docker.program()
        ));
    }
    let on_failure = if flags.keep_going { OnBuildFailure::KeepGoing } else { OnBuildFailure::Stop };
    Ok((
        BuildOptions { pull: flags.pull, no_cache: flags.no_cache, builder },
        ExecOptions { jobs, on_failure },
    ))
}

/// What every command may need: the environment, the docker CLI, the inventory's location.
pub struct Ctx {
    pub env: Env,
    pub docker: Docker,
    pub log: Log,
    inventory: PathBuf,
    registry: Option<String>,
}

impl Ctx {
    pub fn new(env: Env, inventory: Option<PathBuf>, registry: Option<String>) -> anyhow::Result<Ctx> {
        let docker = Docker::from_env(&env);
        let log = Log::new(&env);
        let inventory = inventory.unwrap_or_else(default_inventory);
        Ok(Ctx { env, docker, log, inventory, registry })
    }

    /// The validated inventory with any --registry override applied.
    pub fn inventory(&self) -> anyhow::Result<Inventory> {
        Inventory::load(&self.inventory)?.with_registry(self.registry.as_deref())
    }
}

/// images/images.toml beside the xtask crate, i.e. at the workspace root.
fn default_inventory() -> PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).join("images").join("images.toml")
}
