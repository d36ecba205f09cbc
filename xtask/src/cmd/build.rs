use crate::cmd::{build_settings, chosen_images, Ctx};
use crate::execute::execute;
use crate::flags;
use crate::plan;

impl flags::Build {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let Some(images) = chosen_images(ctx, &inventory, &self.images, self.changed_since.as_deref())?
        else {
            return Ok(());
        };
        let (options, exec) = build_settings(ctx, &self.build)?;
        let plan = plan::build_plan(&inventory.registry, &images, &options)?;
        if self.build.dry_run {
            print!("{}", plan.display(ctx.docker.program()));
            return Ok(());
        }
        ctx.docker.check_engine()?;
        execute(&ctx.docker, &plan, &ctx.log, exec).1?;
        for step in &plan.builds {
            ctx.log.info(&format!("built {}", step.reference));
        }
        Ok(())
    }
}
