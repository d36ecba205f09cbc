use crate::cmd::common::{
    changed_from_revision, run_or_show, unpublished_parents, warn_about_base_support, Ctx, Prepared,
};
use crate::flags;
use crate::model::inventory::Image;
use crate::model::labels;
use crate::model::rebuild;
use crate::model::tags::{self, BuildId};
use crate::plan::{self, Inputs, Plan};
use crate::sys::git;

impl flags::Publish {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let build_id = BuildId::require(self.build_id.as_deref(), ctx.actions_run().as_ref())?;
        let images = plan::select(&inventory, &self.images)?;
        say_why_parents_come_along(ctx, &self.images, &images);
        warn_about_base_support(ctx, &images);
        for line in unpublished_parents(&inventory, &images) {
            ctx.log.warning(&line);
        }
        let prepared = Prepared::new(ctx, &inventory, images, &self.build)?;
        let plan = publish_plan(ctx, &prepared.inputs(), &build_id, self.build.force)?;
        let (reports, result) =
            run_or_show(ctx, &inventory, std::slice::from_ref(&plan), prepared.exec, &self.build);
        result?;
        if self.build.dry_run {
            return Ok(());
        }
        let pushed: Vec<&crate::run::Pushed> = reports.iter().flat_map(|r| &r.pushed).collect();
        if !pushed.is_empty() {
            ctx.log.info("published (digests as the registry holds them):");
        }
        for p in pushed {
            ctx.log.info(&format!("  {}  {}", p.reference, p.digest));
        }
        for (image, verdict) in reports.iter().flat_map(|r| &r.verdicts) {
            let verb = if verdict.publish { "published" } else { "not pushed" };
            ctx.log.info(&format!("  {image}: {verb}: {}", verdict.line()));
        }
        for image in prepared.images.iter().filter(|i| !i.push) {
            ctx.log.info(&format!("  {}: built and tagged, not pushed (push = false)", image.name));
        }
        Ok(())
    }
}

/// The publish plan of the inputs, with OCI labels (source from the Actions environment; the
/// revision from git), and each image's unique tag as its `ref.name` label: a later run that
/// finds it unchanged names that tag.
pub(super) fn publish_plan(
    ctx: &Ctx,
    inputs: &Inputs<'_>,
    build_id: &BuildId,
    force: bool,
) -> anyhow::Result<Plan> {
    let created = ctx.created()?;
    let (revision, uncommitted) = revision(ctx, inputs)?;
    let labels = |image: &Image| {
        let mut labels = labels::oci_labels(image, ctx.source_url().as_deref(), &created);
        if let (Some(revision), false) = (&revision, uncommitted.contains(&image.name)) {
            labels.push((rebuild::REVISION.to_string(), revision.clone()));
        }
        if let Ok([unique, ..]) = tags::published_tags(image, build_id) {
            labels.push((rebuild::REF_NAME.to_string(), unique));
        }
        labels
    };
    plan::publish_plan(inputs, build_id, &labels, force)
}

/// The revision the images are built from, and the images it does not describe. It is what git
/// has checked out (GITHUB_SHA only outside a git repository, and a warning when the two
/// differ): the comparisons of later runs start from it. An image whose inputs have uncommitted
/// changes gets none, so that a later publish cannot take the commit for what it was built from.
fn revision(ctx: &Ctx, inputs: &Inputs<'_>) -> anyhow::Result<(Option<String>, Vec<String>)> {
    let sha = ctx.env.get("GITHUB_SHA");
    let Some(head) = git::head(inputs.inventory.folder()) else {
        return Ok((sha.map(String::from), Vec::new()));
    };
    if let Some(sha) = sha.filter(|sha| *sha != head) {
        ctx.log.warning(&format!(
            "GITHUB_SHA is {sha} but git has {head} checked out: the images are labelled with what was built, {head}"
        ));
    }
    let changed = changed_from_revision(inputs.inventory, &head)?;
    let uncommitted: Vec<String> = changed.into_iter().map(|(name, _)| name).collect();
    let touched: Vec<&str> = inputs
        .images
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| uncommitted.iter().any(|u| u == n))
        .collect();
    if !touched.is_empty() {
        ctx.log.note(&format!(
            "uncommitted changes (or files git ignores) touch the inputs of {}: they get no revision label, \
             so the next publish cannot tell whether their inputs changed and publishes them again",
            touched.join(", ")
        ));
    }
    Ok((Some(head), uncommitted))
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
                "{} is built too, and published if it changed: {children} is built on it, and is published on the {} \
                 the registry holds",
                image.name, image.name
            ),
            false => format!("{} is built too (push = false, so it is not pushed): {children} is built on it", image.name),
        });
    }
}
