//! `cargo xtask test`: the tool's own checks, one after another, as CI runs them.

use std::time::Duration;

use anyhow::bail;

use crate::cmd::Ctx;
use crate::flags;
use crate::sys::process::{self, Io};

/// Each check with what to do when it fails.
const CHECKS: [(&[&str], &str); 3] = [
    (&["fmt", "--all", "--", "--check"], "run `cargo fmt --all` and commit the result"),
    (&["clippy", "--all-targets", "--", "-D", "warnings"], "fix the warnings above"),
    (&["test", "--workspace"], "fix the failing tests above"),
];

impl flags::Test {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        // The cargo that runs this tool, as cargo tells its children.
        let cargo = ctx.env.get("CARGO").unwrap_or("cargo").to_string();
        let workspace = crate::cmd::common::workspace_root();
        for (args, fix) in CHECKS {
            // `cargo <check> --manifest-path <workspace> [--quiet] <its arguments>`.
            let mut full = vec![
                args[0].to_string(),
                "--manifest-path".into(),
                workspace.join("Cargo.toml").display().to_string(),
            ];
            if args[0] != "fmt" {
                full.push("--quiet".into());
            }
            full.extend(args[1..].iter().map(|a| a.to_string()));
            let shown = format!("cargo {}", args.join(" "));
            let out = ctx.log.group(&shown, || {
                ctx.log.verbatim(|| {
                    process::run(
                        &cargo,
                        &full,
                        Io::Stream(ctx.log.sink()),
                        Duration::from_secs(3 * 3600),
                        "Install Rust with rustup",
                    )
                })
            })?;
            if !out.success {
                bail!("`{shown}` {}: {fix}", out.status);
            }
        }
        ctx.log.info("formatting, clippy and the whole test suite passed");
        Ok(())
    }
}
