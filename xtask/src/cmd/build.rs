use crate::cmd::common::{build_settings, chosen_images, run_or_show, Ctx};
use crate::flags;
use crate::plan::{self, Inputs, RunNames};

impl flags::Build {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let Some(images) = chosen_images(ctx, &inventory, &self.images, self.changed_since.as_deref())?
        else {
            return Ok(());
        };
        let lineage = plan::lineage(&inventory, &images)?;
        let (options, exec) = build_settings(ctx, &self.build)?;
        let run = RunNames::new();
        let inputs = Inputs {
            registry: &inventory.registry,
            images: &images,
            lineage: &lineage,
            options: &options,
            run: &run,
        };
        let plan = plan::build_plan(&inputs)?;
        run_or_show(ctx, &inventory, std::slice::from_ref(&plan), exec, self.build.dry_run).1?;
        if !self.build.dry_run {
            for target in plan.publications.iter().flat_map(|p| &p.targets) {
                ctx.log.info(&format!("built {}", target.reference));
            }
        }
        Ok(())
    }
}
