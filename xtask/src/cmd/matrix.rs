use crate::cmd::common::{changed_since, Ctx};
use crate::flags;
use crate::plan::runner_groups;
use crate::sys::gha;

impl flags::Matrix {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let groups = match self.changed_since.as_deref() {
            None => runner_groups(&inventory, &[])?,
            Some(reference) => {
                let names: Vec<String> =
                    changed_since(&inventory, reference)?.into_iter().map(|(n, _)| n).collect();
                if names.is_empty() {
                    Vec::new()
                } else {
                    runner_groups(&inventory, &names)?
                }
            }
        };
        // `group` names the entry; `images` is what `cargo xtask build` takes on that runner.
        let entries: Vec<serde_json::Value> = groups
            .iter()
            .map(|group| {
                let names: Vec<&str> = group.iter().map(|i| i.name.as_str()).collect();
                serde_json::json!({ "group": names[0], "images": names.join(" ") })
            })
            .collect();
        let matrix = serde_json::json!({ "include": entries }).to_string();
        ctx.log.say(&matrix);
        gha::set_output(&ctx.env, "matrix", &matrix)
    }
}
