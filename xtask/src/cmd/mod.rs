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
use crate::execute::OnBuildFailure;
use crate::gha::Log;
use crate::inventory::Inventory;

/// `--keep-going` as the executor's policy.
fn on_build_failure(keep_going: bool) -> OnBuildFailure {
    if keep_going {
        OnBuildFailure::KeepGoing
    } else {
        OnBuildFailure::Stop
    }
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
