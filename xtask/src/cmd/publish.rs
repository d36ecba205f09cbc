use crate::cmd::common::{run_or_show, Ctx, Prepared};
use crate::flags;
use crate::model::inventory::Image;
use crate::model::labels;
use crate::model::tags::BuildId;
use crate::plan::{self, Inputs, Plan};

impl flags::Publish {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let build_id = BuildId::require(self.build_id.as_deref(), &ctx.env)?;
        let images = plan::select(&inventory, &self.images)?;
        say_why_parents_come_along(ctx, &self.images, &images);
        let prepared = Prepared::new(ctx, &inventory, images, &self.build)?;
        let plan = publish_plan(ctx, &prepared.inputs(), &build_id)?;
        let (reports, result) =
            run_or_show(ctx, &inventory, std::slice::from_ref(&plan), prepared.exec, self.build.dry_run);
        result?;
        if self.build.dry_run {
            return Ok(());
        }
        ctx.log.info("published (digests as the registry holds them):");
        for p in reports.iter().flat_map(|r| &r.pushed) {
            ctx.log.info(&format!("  {}  {}", p.reference, p.digest));
        }
        for image in prepared.images.iter().filter(|i| !i.push) {
            ctx.log.info(&format!("  {}: built and tagged, not pushed (push = false)", image.name));
        }
        Ok(())
    }
}

/// The publish plan of the inputs, with OCI labels from the environment.
pub(super) fn publish_plan(ctx: &Ctx, inputs: &Inputs<'_>, build_id: &BuildId) -> anyhow::Result<Plan> {
    let created = labels::created(&ctx.env)?;
    let labels = |image: &Image| labels::oci_labels(image, &ctx.env, &created);
    plan::publish_plan(inputs, build_id, &labels)
}

/// Publishing a child publishes the parents it is built on too: the child's layers start from
/// the parent this run builds, so that parent is what its published tags must hold.
fn say_why_parents_come_along(ctx: &Ctx, named: &[String], selected: &[&Image]) {
    if named.is_empty() {
        return;
    }
    for image in selected.iter().filter(|i| !named.contains(&i.name)) {
        let children: Vec<&str> =
            selected.iter().filter(|c| c.depends_on.contains(&image.name)).map(|c| c.name.as_str()).collect();
        let children = children.join(", ");
        ctx.log.note(&match image.push {
            true => format!(
                "{} is built and published too: {children} is built on it, and is published with the {} it was built on",
                image.name, image.name
            ),
            false => format!("{} is built too (push = false, so it is not pushed): {children} is built on it", image.name),
        });
    }
}
