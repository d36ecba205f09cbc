use crate::cmd::Ctx;
use crate::flags;
use crate::model::tags::{published_references, BuildId};

impl flags::Tags {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let image = inventory.image(&self.image)?;
        let build_id = BuildId::require(self.build_id.as_deref(), ctx.actions_run().as_ref())?;
        if !image.push {
            ctx.log.note(&format!(
                "{}: push = false in images.toml: built and tagged as these, never pushed",
                image.name
            ));
        }
        for reference in published_references(&inventory.registry, image, &build_id)? {
            ctx.log.say(&reference);
        }
        Ok(())
    }
}
