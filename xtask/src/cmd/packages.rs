use crate::cmd::Ctx;
use crate::flags;
use crate::model::tags::local_reference;
use crate::model::text::one_line;
use crate::run::inspect::inspect;

impl flags::Packages {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let image = inventory.image(&self.image)?;
        let local = self.reference.is_none();
        let reference = self.reference.unwrap_or_else(|| local_reference(&inventory.registry, image));
        ctx.docker.check_engine()?;
        let checked = inspect(&ctx.docker, &reference, &reference, None, None).map_err(|e| match local {
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
            ctx.log.say(&serde_json::to_string_pretty(&json)?);
            return Ok(());
        }
        // One package a line, whatever its database says of it.
        let rows: Vec<[String; 4]> = found
            .packages
            .iter()
            .map(|p| {
                let license = p.license.as_deref().unwrap_or("-");
                [p.ecosystem.to_string(), one_line(&p.name), one_line(&p.version), one_line(license)]
            })
            .collect();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (name_w, version_w) = (width(1), width(2));
        for [ecosystem, name, version, license] in &rows {
            ctx.log.info(&format!("{ecosystem:<6} {name:<name_w$} {version:<version_w$} {license}"));
        }
        ctx.log.note(&format!("{}: {} packages", reference, found.packages.len()));
        Ok(())
    }
}
