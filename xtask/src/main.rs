//! `cargo xtask`: build, tag, test and publish the base images of images/images.toml.

mod cmd;
mod dockerfile;
mod flags;
mod model;
mod plan;
mod run;
mod sys;

#[cfg(test)]
#[path = "../tests/unit/properties.rs"]
mod properties;
#[cfg(test)]
#[path = "../tests/support/testdir.rs"]
mod testdir;

use std::process::ExitCode;

use flags::XtaskCmd;

fn main() -> ExitCode {
    let flags = flags::Xtask::from_env_or_exit();
    sys::interrupt::install();
    let env = sys::env::Env::from_process();
    sys::timing::start(env.get("XTASK_TIMINGS"));
    let log = sys::gha::Log::new(&env);
    let result = run(flags, env);
    sys::timing::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(flags: flags::Xtask, env: sys::env::Env) -> anyhow::Result<()> {
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
        XtaskCmd::Packages(c) => c.run(&ctx),
        XtaskCmd::Matrix(c) => c.run(&ctx),

        XtaskCmd::CiPr(c) => c.run(&ctx),
        XtaskCmd::CiMain(c) => c.run(&ctx),
        XtaskCmd::CleanupTestPackage(c) => c.run(&ctx),
        XtaskCmd::Test(c) => c.run(&ctx),
    }
}
