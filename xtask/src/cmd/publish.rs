use crate::cmd::{build_settings, Ctx};
use crate::execute::{execute, ExecOptions, Report};
use crate::flags;
use crate::inventory::{Image, Inventory};
use crate::labels;
use crate::plan::{self, BuildOptions, Plan};
use crate::preflight::check_unique_tags_free;
use crate::tags::{published_references, BuildId};

impl flags::Publish {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let build_id = BuildId::require(self.build_id.as_deref(), &ctx.env)?;
        let images = plan::select(&inventory, &self.images)?;
        let (options, exec) = build_settings(ctx, &self.build)?;
        let plan = publish_plan(ctx, &inventory, &images, &build_id, &options)?;
        if self.build.dry_run {
            print!("{}", plan.display(ctx.docker.program()));
            return Ok(());
        }
        ctx.docker.check_engine()?;
        let (report, result) = publish(ctx, &inventory, &images, &build_id, &plan, exec);
        result?;
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
        Ok(())
    }
}

/// The publish plan of `images`, with OCI labels from the environment.
pub(super) fn publish_plan(
    ctx: &Ctx,
    inventory: &Inventory,
    images: &[&Image],
    build_id: &BuildId,
    options: &BuildOptions,
) -> anyhow::Result<Plan> {
    let created = labels::created(&ctx.env);
    let labels = |image: &Image| labels::oci_labels(image, &ctx.env, &created);
    plan::publish_plan(&inventory.registry, images, build_id, &labels, options)
}

/// Asks the registry first (access, unique tags still free), then runs the plan. Shared by
/// publish and ci-main; the report holds what was done even when the run failed.
pub(super) fn publish(
    ctx: &Ctx,
    inventory: &Inventory,
    images: &[&Image],
    build_id: &BuildId,
    plan: &Plan,
    exec: ExecOptions,
) -> (Report, anyhow::Result<()>) {
    let mut unique = Vec::new();
    for image in images.iter().filter(|i| i.push) {
        match published_references(&inventory.registry, image, build_id) {
            Ok([first, _, _]) => unique.push(first),
            Err(e) => return (Report::default(), Err(e)),
        }
    }
    if let Err(e) = check_unique_tags_free(&ctx.docker, &inventory.registry, &unique, exec.jobs) {
        return (Report::default(), Err(e));
    }
    execute(&ctx.docker, plan, &ctx.log, exec)
}
