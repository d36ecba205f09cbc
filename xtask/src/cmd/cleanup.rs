use anyhow::Context;

use crate::cmd::Ctx;
use crate::flags;
use crate::sys::docker::Secret;
use crate::sys::github::DeletePackage;

impl flags::CleanupTestPackage {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let package = inventory
            .test_package
            .as_ref()
            .with_context(|| format!("{}: there is no [test_package] to delete", inventory.path.display()))?;
        let api = ctx.env.get("GITHUB_API_URL").unwrap_or("https://api.github.com");
        let request = DeletePackage::new(api, &inventory.registry, &package.name)?;
        if self.dry_run {
            ctx.log.say(&format!("DELETE {}", request.url));
            return Ok(());
        }
        let token = ctx.env.get("GH_ADMIN_TOKEN").context(
            "GH_ADMIN_TOKEN is not set: deleting an org package needs a token with delete:packages \
             and org admin rights (the workflow's GITHUB_TOKEN cannot)",
        )?;
        request.send(&Secret::new(token.to_string()))?;
        ctx.log.info(&format!("deleted container package {} of {}", request.package, request.org));
        Ok(())
    }
}
