use crate::cmd::common::{chosen_images, run_or_show, warn_about_base_support, Ctx, Prepared};
use crate::flags;
use crate::plan;

impl flags::Build {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let Some(images) = chosen_images(ctx, &inventory, &self.images, self.changed_since.as_deref())?
        else {
            return Ok(());
        };
        warn_about_base_support(ctx, &images);
        let prepared = Prepared::new(ctx, &inventory, images, &self.build)?;
        let plan = plan::build_plan(&prepared.inputs())?;
        run_or_show(ctx, &inventory, std::slice::from_ref(&plan), prepared.exec, &self.build).1?;
        if !self.build.dry_run {
            for target in plan.publications.iter().flat_map(|p| &p.targets) {
                ctx.log.info(&format!("built {}", target.reference));
            }
        }
        Ok(())
    }
}
