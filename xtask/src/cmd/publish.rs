use crate::cmd::Ctx;
use crate::execute::{execute, Report};
use crate::flags;
use crate::labels;
use crate::plan::{self, BuildOptions};
use crate::preflight::check_unique_tags_free;
use crate::tags::{published_references, BuildId};

impl flags::Publish {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let build_id = BuildId::require(self.build_id.as_deref(), &ctx.env)?;
        let images = plan::select(&inventory, &self.images)?;
        let created = labels::created(&ctx.env);
        let labels = |image: &_| labels::oci_labels(image, &ctx.env, &created);
        let options = BuildOptions { pull: self.pull, no_cache: self.no_cache };
        let plan = plan::publish_plan(&inventory.registry, &images, &build_id, &labels, options)?;
        if self.dry_run {
            print!("{}", plan.display(ctx.docker.program()));
            return Ok(());
        }
        ctx.docker.check_engine()?;
        let mut unique = Vec::new();
        for image in images.iter().filter(|i| i.push) {
            let [unique_ref, _, _] = published_references(&inventory.registry, image, &build_id)?;
            unique.push(unique_ref);
        }
        check_unique_tags_free(&ctx.docker, &inventory.registry, &unique)?;
        let report = execute(&ctx.docker, &plan, &ctx.log)?;
        print_report(ctx, &report, &images);
        Ok(())
    }
}

fn print_report(ctx: &Ctx, report: &Report, images: &[&crate::inventory::Image]) {
    ctx.log.info("published:");
    for p in &report.pushed {
        ctx.log.info(&format!(
            "  {}  {}",
            p.reference,
            p.digest.as_deref().unwrap_or("(no digest reported)")
        ));
    }
    for image in images.iter().filter(|i| !i.push) {
        ctx.log.info(&format!("  {}: built and tagged, not pushed (push = false)", image.name));
    }
}
