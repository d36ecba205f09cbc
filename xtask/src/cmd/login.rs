use anyhow::Context;

use crate::cmd::Ctx;
use crate::flags;
use crate::model::oci::registry_host;
use crate::model::step::Step;
use crate::sys::docker::Secret;

impl flags::Login {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let host = registry_host(&inventory.registry);
        let username = self
            .username
            .as_deref()
            .or(ctx.env.get("GITHUB_ACTOR"))
            .context("no registry user: pass --username USER (or set GITHUB_ACTOR)")?;
        if self.dry_run {
            let login = Step::Login { host: host.to_string(), username: username.to_string() };
            ctx.log.say(&login.command().display(ctx.docker.program()));
            return Ok(());
        }
        let token = ctx.env.get("CR_PAT").context(
            "CR_PAT is not set: export a personal access token with read:packages and write:packages \
             as CR_PAT; it is passed to docker on stdin only",
        )?;
        ctx.docker.login(host, username, &Secret::new(token.to_string()))?;
        ctx.log.info(&format!("logged in to {host} as {username}"));
        Ok(())
    }
}
