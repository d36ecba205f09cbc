use anyhow::{bail, Context};

use crate::cmd::Ctx;
use crate::flags;
use crate::model::tags::local_reference;
use crate::run::inspect::inspect;

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
        let checked = inspect(&ctx.docker, &reference, &reference, Some(&spec), None)?;
        let violations = &checked.violations;
        if violations.is_empty() {
            ctx.log.info(&checked.passed(&reference));
        } else {
            let list: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
            bail!("{reference} breaks {} hardening rule(s):\n{}", violations.len(), list.join("\n"));
        }
        Ok(())
    }
}
