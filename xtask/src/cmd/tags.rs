use crate::cmd::Ctx;
use crate::flags;
use crate::model::platform::Platform;
use crate::model::tags::{published_references, BuildId};
use crate::plan::platforms;

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
        let references = published_references(&inventory.registry, image, &build_id)?;
        // An image with several platforms: each platform's build first, then the index's tags.
        for platform in image.platforms.iter().filter_map(|p| Platform::parse(p)) {
            ctx.log.say(&platforms::suffixed(&references[0], Some(&platform)));
        }
        for reference in references {
            ctx.log.say(&reference);
        }
        Ok(())
    }
}
