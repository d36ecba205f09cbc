use crate::cmd::Ctx;
use crate::flags;
use crate::model::tags::local_reference;
use crate::run::inspect::inspect;

impl flags::Packages {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let image = inventory.image(&self.image)?;
        let local = self.reference.is_none();
        let reference = self.reference.unwrap_or_else(|| local_reference(&inventory.registry, image));
        ctx.docker.check_engine()?;
        let checked = inspect(&ctx.docker, &reference, None).map_err(|e| match local {
            true => e.context(format!(
                "{reference} is the local build of {}: build it first (`cargo xtask build {}`), or name another \
                 image with --reference",
                image.name, image.name
            )),
            false => e,
        })?;
        for note in &checked.notes {
            ctx.log.note(note);
        }
        let found = &checked.packages;
        if self.json {
            let json = serde_json::json!({ "reference": reference, "distro": found.distro, "packages": found.packages });
            say!("{}", serde_json::to_string_pretty(&json)?);
            return Ok(());
        }
        let width = |f: &dyn Fn(&crate::model::packages::Package) -> usize| {
            found.packages.iter().map(f).max().unwrap_or(0)
        };
        let (name_w, version_w) = (width(&|p| p.name.len()), width(&|p| p.version.len()));
        for p in &found.packages {
            say!(
                "{:<6} {:<name_w$} {:<version_w$} {}",
                p.ecosystem.to_string(),
                p.name,
                p.version,
                p.license.as_deref().unwrap_or("-")
            );
        }
        ctx.log.note(&format!("{}: {} packages", reference, found.packages.len()));
        Ok(())
    }
}
