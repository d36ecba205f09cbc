use crate::cmd::{changed_since, Ctx};
use crate::flags;
use crate::inventory::Image;
use crate::json;
use crate::plan;
use crate::tags;

impl flags::List {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let mut images = plan::select(&inventory, &[])?;
        // With --changed-since, only the affected images, each with why.
        let reasons: Option<Vec<(String, String)>> = match self.changed_since.as_deref() {
            None => None,
            Some(reference) => {
                let selection = changed_since(&inventory, reference)?;
                Some(selection.into_iter().map(|(name, reason)| (name, reason.to_string())).collect())
            }
        };
        if let Some(reasons) = &reasons {
            images.retain(|i| reasons.iter().any(|(n, _)| *n == i.name));
        }
        let reason =
            |name: &str| reasons.as_ref().and_then(|r| r.iter().find(|(n, _)| n == name)).map(|(_, why)| why);
        if self.json {
            let items = images.iter().map(|i| {
                let mut item = image_json(&inventory.registry, i);
                if let Some(why) = reason(&i.name) {
                    item.pop();
                    item.push_str(&format!(",\"reason\":{}}}", json::string(why)));
                }
                item
            });
            println!("{}", json::array(items));
            return Ok(());
        }
        if let (Some(reference), true) = (self.changed_since.as_deref(), images.is_empty()) {
            println!("no image is affected by the changes since {reference}");
            return Ok(());
        }
        let rows: Vec<[String; 6]> = images
            .iter()
            .map(|i| {
                [
                    i.name.clone(),
                    i.version.to_string(),
                    if i.push { "yes" } else { "no" }.to_string(),
                    if i.depends_on.is_empty() { "-".to_string() } else { i.depends_on.join(",") },
                    tag_templates(i).join(" "),
                    reason(&i.name).cloned().unwrap_or_default(),
                ]
            })
            .collect();
        println!("registry: {}", inventory.registry);
        if let Some(tp) = &inventory.test_package {
            println!(
                "test package: {}:{} (built from {})",
                tags::repository(&inventory.registry, &tp.name),
                tp.tag,
                tp.image
            );
        }
        let last = if reasons.is_some() { "WHY" } else { "" };
        print_table(["IMAGE", "VERSION", "PUSH", "DEPENDS ON", "TAGS", last], &rows);
        Ok(())
    }
}

/// The published tags with the build id left as a placeholder.
fn tag_templates(image: &Image) -> [String; 3] {
    let version = tags::version_tag(image);
    [format!("{version}_<build-id>"), version, "latest".into()]
}

fn image_json(registry: &str, image: &Image) -> String {
    json::object([
        ("name", json::string(&image.name)),
        ("repository", json::string(&tags::repository(registry, &image.name))),
        ("version", json::string(&image.version.to_string())),
        ("push", image.push.to_string()),
        ("depends_on", json::array(image.depends_on.iter().map(|d| json::string(d)))),
        ("tags", json::array(tag_templates(image).iter().map(|t| json::string(t)))),
        ("dockerfile", json::string(&image.dockerfile.to_string_lossy())),
        ("context", json::string(&image.context.to_string_lossy())),
        ("platforms", json::array(image.platforms.iter().map(|p| json::string(p)))),
    ])
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
