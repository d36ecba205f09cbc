//! `cargo xtask`: build, tag, test and publish the base images of images/images.toml.

mod changes;
mod cmd;
mod docker;
mod dockerfile;
mod env;
mod execute;
mod flags;
mod gha;
mod git;
mod github;
mod interrupt;
mod inventory;
mod labels;
mod lock;
mod oci;
mod parents;
mod plan;
mod preflight;
mod process;
#[cfg(test)]
mod proptests;
mod registry;
mod retry;
mod tags;
mod tarscan;
#[cfg(test)]
mod testdir;
mod verify;
mod workflows;

use std::process::ExitCode;

use flags::XtaskCmd;

fn main() -> ExitCode {
    let flags = flags::Xtask::from_env_or_exit();
    interrupt::install();
    let env = env::Env::from_process();
    let log = gha::Log::new(&env);
    match run(flags, env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(flags: flags::Xtask, env: env::Env) -> anyhow::Result<()> {
    let ctx = cmd::Ctx::new(env, flags.inventory, flags.registry)?;
    match flags.subcommand {
        XtaskCmd::List(c) => c.run(&ctx),
        XtaskCmd::Check(c) => c.run(&ctx),
        XtaskCmd::Lint(c) => c.run(&ctx),
        XtaskCmd::Tags(c) => c.run(&ctx),
        XtaskCmd::Build(c) => c.run(&ctx),
        XtaskCmd::Publish(c) => c.run(&ctx),
        XtaskCmd::Login(c) => c.run(&ctx),
        XtaskCmd::Verify(c) => c.run(&ctx),
        XtaskCmd::Matrix(c) => c.run(&ctx),

        XtaskCmd::CiPr(c) => c.run(&ctx),
        XtaskCmd::CiMain(c) => c.run(&ctx),
        XtaskCmd::CleanupTestPackage(c) => c.run(&ctx),
    }
}
