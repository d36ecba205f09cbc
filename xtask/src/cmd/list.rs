use crate::cmd::common::{changed_since, Ctx};
use crate::flags;
use crate::model::inventory::Image;
use crate::model::tags;
use crate::plan;
use crate::sys::gha::Log;

impl flags::List {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        // With --changed-since: what `build --changed-since` builds, each with why, the parents
        // it builds first included.
        let (images, reasons) = match self.changed_since.as_deref() {
            None => (plan::select(&inventory, &[])?, None),
            Some(reference) => {
                let selection = changed_since(&inventory, reference)?;
                let mut reasons: Vec<(String, String)> =
                    selection.into_iter().map(|(name, reason)| (name, reason.to_string())).collect();
                let names: Vec<String> = reasons.iter().map(|(n, _)| n.clone()).collect();
                let images = if names.is_empty() { Vec::new() } else { plan::select(&inventory, &names)? };
                for image in images.iter().filter(|i| !names.contains(&i.name)) {
                    let children: Vec<&str> = images
                        .iter()
                        .filter(|c| c.depends_on.contains(&image.name))
                        .map(|c| c.name.as_str())
                        .collect();
                    reasons.push((
                        image.name.clone(),
                        format!("unchanged, built first: {} is built on it", children.join(", ")),
                    ));
                }
                (images, Some(reasons))
            }
        };
        let reason =
            |name: &str| reasons.as_ref().and_then(|r| r.iter().find(|(n, _)| n == name)).map(|(_, why)| why);
        if self.json {
            let items: Vec<serde_json::Value> = images
                .iter()
                .map(|i| {
                    let mut item = image_json(&inventory.registry, i);
                    if let Some(why) = reason(&i.name) {
                        item["reason"] = serde_json::Value::String(why.clone());
                    }
                    item
                })
                .collect();
            ctx.log.say(&serde_json::Value::Array(items).to_string());
            return Ok(());
        }
        if let (Some(reference), true) = (self.changed_since.as_deref(), images.is_empty()) {
            ctx.log.say(&format!("no image is affected by the changes since {reference}"));
            return Ok(());
        }
        let rows: Vec<[String; 8]> = images
            .iter()
            .map(|i| {
                [
                    i.name.clone(),
                    i.version.to_string(),
                    if i.push { "yes" } else { "no" }.to_string(),
                    if i.depends_on.is_empty() { "-".to_string() } else { i.depends_on.join(",") },
                    tag_templates(i).join(" "),
                    if i.platforms.is_empty() { "engine's own".to_string() } else { i.platforms.join(",") },
                    i.base_support_ends.as_ref().map_or("-".to_string(), |e| e.date.clone()),
                    reason(&i.name).cloned().unwrap_or_default(),
                ]
            })
            .collect();
        ctx.log.say(&format!("registry: {}", inventory.registry));
        if let Some(tp) = &inventory.test_package {
            ctx.log.say(&format!(
                "test package: {}:{} (built from {})",
                tags::repository(&inventory.registry, &tp.name),
                tp.tag,
                tp.image
            ));
        }
        let last = if reasons.is_some() { "WHY" } else { "" };
        print_table(
            &ctx.log,
            ["IMAGE", "VERSION", "PUSH", "DEPENDS ON", "TAGS", "PLATFORMS", "BASE SUPPORT ENDS", last],
            &rows,
        );
        Ok(())
    }
}

/// The published tags with the build id left as a placeholder.
fn tag_templates(image: &Image) -> [String; 3] {
    let version = tags::version_tag(image);
    [format!("{version}_<build-id>"), version, "latest".into()]
}

fn image_json(registry: &str, image: &Image) -> serde_json::Value {
    serde_json::json!({
        "name": image.name,
        "repository": tags::repository(registry, &image.name),
        "version": image.version.to_string(),
        "push": image.push,
        "depends_on": image.depends_on,
        "tags": tag_templates(image),
        "dockerfile": image.dockerfile.to_string_lossy(),
        "context": image.context.to_string_lossy(),
        "platforms": image.platforms,
        "base_support_ends": image.base_support_ends.as_ref().map(|e| e.date.clone()),
    })
}

fn print_table<const N: usize>(log: &Log, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
        log.say(padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
