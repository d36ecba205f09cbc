use anyhow::{bail, Context};

use crate::cmd::Ctx;
use crate::flags;
use crate::model::tags::local_reference;
use crate::plan::Verification;
use crate::run::verify_one;

impl flags::Verify {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let image = inventory.image(&self.image)?;
        let spec = image.verify.clone().with_context(|| {
            format!(
                "{}: no hardening rules for {}: add a [verify] table (all images) or [images.{}.verify]",
                inventory.path.display(),
                image.name,
                image.name
            )
        })?;
        let reference = self.reference.unwrap_or_else(|| local_reference(&inventory.registry, image));
        ctx.docker.check_engine()?;
        let check = Verification { image: image.name.clone(), reference, spec };
        let checked = verify_one(&ctx.docker, &check)?;
        let violations = &checked.violations;
        if violations.is_empty() {
            ctx.log.info(&checked.passed(&check.reference));
        } else {
            let list: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
            bail!("{} breaks {} hardening rule(s):\n{}", check.reference, violations.len(), list.join("\n"));
        }
        Ok(())
    }
}
