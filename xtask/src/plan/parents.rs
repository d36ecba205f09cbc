//! How an image builds on its inventory parents, and the rules `check` and every building
//! command enforce before anything builds. Pure.
//!
//! A child whose `depends_on` names a parent is always built on the parent built in the same
//! run. Its Dockerfile says so in one of two ways:
//! - `ARG <PARENT>_IMAGE` before the first FROM and `FROM ${<PARENT>_IMAGE}`: the build gets the
//!   reference of the parent this run built as that build argument;
//! - `FROM <registry>/<parent>:<tag>` with a tag the run produces (`latest` or `v<version>`):
//!   the build runs on a copy of the Dockerfile whose FROM names this run's parent instead, so
//!   it can never start from an older parent in the engine's store or the registry.

use std::collections::BTreeMap;
use std::path::Path;

use crate::dockerfile::{is_arg_reference, Dockerfile};
use crate::model::inventory::{Image, Inventory};
use crate::model::oci::split_reference;
use crate::model::tags::version_tag;

/// How a Dockerfile builds FROM one parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// `FROM ${NAME}` with `ARG NAME`: passed as `--build-arg NAME=<reference>`.
    Arg(String),
    /// `FROM <registry>/<parent>:<tag>`: the FROM of these lines is rewritten, `written` being
    /// the image as written there.
    Named { first_line: usize, last_line: usize, written: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentUse {
    pub parent: String,
    pub how: Use,
}

/// The build argument through which an image receives the reference of an inventory parent
/// built in the same run: `alpine` -> `ALPINE_IMAGE`, `python-alpine` -> `PYTHON_ALPINE_IMAGE`.
pub fn parent_build_arg(parent: &str) -> String {
    let mut arg: String = parent
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    arg.push_str("_IMAGE");
    arg
}

/// How `image`'s Dockerfile uses each of its parents, or every rule it breaks (each message
/// naming the Dockerfile, the line where there is one, and what to write instead).
pub fn parent_uses(
    inventory: &Inventory,
    image: &Image,
    dockerfile: &Dockerfile,
) -> Result<Vec<ParentUse>, Vec<String>> {
    let file = image.dockerfile.display();
    let mut problems = Vec::new();
    let froms = dockerfile.froms(&BTreeMap::new());
    if froms.is_empty() {
        problems.push(format!("{file}: no FROM instruction"));
    }
    let global: Vec<String> = dockerfile.global_args().into_iter().map(|(name, _)| name).collect();
    let registries = registries(inventory);
    // The inventory image a reference names, whichever of the inventory's registries it uses.
    let inventory_image = |reference: &str| -> Option<(String, Option<String>, Option<String>)> {
        let (repository, tag, digest) = split_reference(reference);
        let name = registries.iter().find_map(|r| repository.strip_prefix(&format!("{r}/")))?;
        inventory.images.contains_key(name).then(|| (name.to_string(), tag, digest))
    };
    let mut uses = Vec::new();
    for from in &froms {
        let Some((other, _, _)) = inventory_image(&from.resolved) else { continue };
        if other != image.name && !image.depends_on.contains(&other) {
            problems.push(format!(
                "{file}:{}: builds FROM {}, an image of this inventory, but images.{}.depends_on leaves out \
                 `{other}`: add it, so that {other} is built first in the same run and this image is built on it",
                from.line, from.resolved, image.name
            ));
        }
    }
    for parent in &image.depends_on {
        let Some(parent_image) = inventory.images.get(parent) else { continue };
        let arg = parent_build_arg(parent);
        let mut used = false;
        if global.contains(&arg) {
            if froms.iter().any(|f| is_arg_reference(&f.image, &arg)) {
                uses.push(ParentUse { parent: parent.clone(), how: Use::Arg(arg.clone()) });
                used = true;
            } else {
                problems.push(format!(
                    "{file}: declares ARG {arg} but no FROM builds on it, so images.{}.depends_on = [\"{parent}\"] \
                     would pass this run's {parent} for nothing: write `FROM ${{{arg}}}`",
                    image.name
                ));
                continue;
            }
        }
        let produced = ["latest".to_string(), version_tag(parent_image)];
        for from in froms.iter().filter(|f| !is_arg_reference(&f.image, &arg)) {
            let Some((name, tag, digest)) = inventory_image(&from.resolved) else { continue };
            if &name != parent {
                continue;
            }
            let tag = tag.unwrap_or_else(|| "latest".into());
            if digest.is_some() || !produced.contains(&tag) {
                problems.push(format!(
                    "{file}:{}: builds FROM {}, which this run does not produce: a child is built on the {parent} \
                     built in the same run, which is tagged {}; write FROM {}/{parent}:latest, or declare \
                     ARG {arg} and write FROM ${{{arg}}}",
                    from.line,
                    from.resolved,
                    produced.join(" and "),
                    inventory.registry
                ));
                used = true;
                continue;
            }
            let instruction = dockerfile.instructions.iter().find(|i| i.first_line == from.line);
            let last_line = instruction.map_or(from.line, |i| i.last_line);
            uses.push(ParentUse {
                parent: parent.clone(),
                how: Use::Named { first_line: from.line, last_line, written: from.image.clone() },
            });
            used = true;
        }
        if !used {
            problems.push(format!(
                "{file}: images.{}.depends_on names `{parent}`, but the Dockerfile never builds FROM it: declare \
                 `ARG {arg}` and write `FROM ${{{arg}}}` (the tool passes the {parent} it just built), or write \
                 FROM {}/{parent}:latest",
                image.name, inventory.registry
            ));
        }
    }
    if problems.is_empty() {
        Ok(uses)
    } else {
        Err(problems)
    }
}

/// The parent rules for every image of `images`, reading each Dockerfile; one error that lists
/// every problem, as `check` reports them.
pub fn all_parent_uses(
    inventory: &Inventory,
    images: &[&Image],
) -> anyhow::Result<BTreeMap<String, Vec<ParentUse>>> {
    let mut all = BTreeMap::new();
    let mut problems = Vec::new();
    for image in images {
        match read(&image.dockerfile).map(|d| parent_uses(inventory, image, &d)) {
            Ok(Ok(uses)) => {
                all.insert(image.name.clone(), uses);
            }
            Ok(Err(found)) => problems.extend(found),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(all)
    } else {
        anyhow::bail!(
            "{} problem(s) with how images build on their parents; nothing was built:\n{}",
            problems.len(),
            problems.join("\n")
        )
    }
}

pub fn read(path: &Path) -> Result<Dockerfile, String> {
    std::fs::read_to_string(path)
        .map(|t| Dockerfile::parse(&t))
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// The Dockerfile text with each named FROM of a parent replaced by `reference(parent)`.
pub fn rewrite(text: &str, uses: &[ParentUse], reference: &dyn Fn(&str) -> String) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    for u in uses {
        let Use::Named { first_line, last_line, written } = &u.how else { continue };
        for line in lines.iter_mut().take(*last_line).skip(first_line - 1) {
            if let Some(at) = line.find(written.as_str()) {
                line.replace_range(at..at + written.len(), &reference(&u.parent));
                break;
            }
        }
    }
    lines.concat()
}

/// Every registry a Dockerfile may name the inventory's images under: the one in images.toml
/// and the one this run publishes to (`--registry`).
fn registries(inventory: &Inventory) -> Vec<&str> {
    let mut all = vec![inventory.registry.as_str(), inventory.declared_registry.as_str()];
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn inventory(dir: &TestDir, child_dockerfile: &str) -> Inventory {
        dir.write("Dockerfile-base", "FROM scratch\n");
        dir.write("Dockerfile-other", "FROM scratch\n");
        dir.write("Dockerfile-child", child_dockerfile);
        let text = "registry = \"ghcr.io/x\"\n\
                    [images.base]\nversion = \"1.2.3\"\ndockerfile = \"Dockerfile-base\"\n\
                    [images.other]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-other\"\n\
                    [images.child]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-child\"\ndepends_on = [\"base\"]\n";
        Inventory::parse(&dir.path().join("images.toml"), text).unwrap()
    }

    fn uses(dockerfile: &str) -> Result<Vec<ParentUse>, Vec<String>> {
        let d = TestDir::new("parents");
        let inv = inventory(&d, dockerfile);
        parent_uses(&inv, &inv.images["child"], &Dockerfile::parse(dockerfile))
    }

    fn problem(dockerfile: &str) -> String {
        let found = uses(dockerfile).expect_err("should break a rule");
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
    }

    #[test]
    fn parent_arg_names() {
        assert_eq!(parent_build_arg("alpine"), "ALPINE_IMAGE");
        assert_eq!(parent_build_arg("python-alpine"), "PYTHON_ALPINE_IMAGE");
        assert_eq!(parent_build_arg("a.b_c"), "A_B_C_IMAGE");
    }

    #[test]
    fn either_form_is_accepted() {
        let arg = uses("ARG BASE_IMAGE=ghcr.io/x/base:latest\nFROM ${BASE_IMAGE}\n").unwrap();
        assert_eq!(arg, [ParentUse { parent: "base".into(), how: Use::Arg("BASE_IMAGE".into()) }]);
        for from in ["ghcr.io/x/base:latest", "ghcr.io/x/base:v1.2.3", "ghcr.io/x/base"] {
            let named = uses(&format!("# a comment\nFROM {from} AS build\nRUN true\n")).unwrap();
            assert_eq!(
                named,
                [ParentUse {
                    parent: "base".into(),
                    how: Use::Named { first_line: 2, last_line: 2, written: from.into() }
                }],
                "{from}"
            );
        }
        // Through another ARG's default, the FROM still names the parent.
        let named = uses("ARG REG=ghcr.io/x\nFROM ${REG}/base:latest\n").unwrap();
        assert!(matches!(&named[0].how, Use::Named { written, .. } if written == "${REG}/base:latest"));
    }

    #[test]
    fn a_tag_the_run_does_not_produce_is_refused() {
        for from in ["ghcr.io/x/base:v1.0.0", "ghcr.io/x/base:v1.2.3_42.1", "ghcr.io/x/base@sha256:abc"] {
            let p = problem(&format!("FROM {from}\n"));
            assert!(
                p.contains(&format!(
                    "Dockerfile-child:1: builds FROM {from}, which this run does not produce"
                )),
                "{p}"
            );
            assert!(p.contains("latest and v1.2.3"), "{p}");
        }
    }

    #[test]
    fn an_arg_declared_but_never_built_from_is_refused() {
        let p = problem("ARG BASE_IMAGE=ghcr.io/x/base:latest\nFROM alpine:3.20\n");
        assert!(p.contains("declares ARG BASE_IMAGE but no FROM builds on it"), "{p}");
        // Declared after the first FROM, an ARG cannot reach a FROM at all.
        let p = problem("FROM alpine:3.20\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n");
        assert!(p.contains("never builds FROM it"), "{p}");
    }

    #[test]
    fn a_parent_never_built_from_and_an_undeclared_parent_are_refused() {
        let p = problem("FROM alpine:3.20\n");
        assert!(
            p.contains("images.child.depends_on names `base`, but the Dockerfile never builds FROM it"),
            "{p}"
        );
        let found = uses("FROM ghcr.io/x/base:latest AS a\nFROM ghcr.io/x/other:latest\n").unwrap_err();
        assert!(
            found[0].contains("Dockerfile-child:2: builds FROM ghcr.io/x/other:latest")
                && found[0].contains("leaves out `other`"),
            "{found:?}"
        );
        let found = uses("# nothing\nRUN true\n").unwrap_err();
        assert!(
            found.iter().any(|p| p == "Dockerfile-child: no FROM instruction")
                || found[0].contains("no FROM"),
            "{found:?}"
        );
    }

    #[test]
    fn the_run_registry_counts_as_well_as_the_inventory_one() {
        let d = TestDir::new("parents");
        let text = "FROM ghcr.io/x/base:latest\n";
        let inv = inventory(&d, text).with_registry(Some("127.0.0.1:5000/y")).unwrap();
        assert!(parent_uses(&inv, &inv.images["child"], &Dockerfile::parse(text)).is_ok());
        let text = "FROM 127.0.0.1:5000/y/base:latest\n";
        assert!(parent_uses(&inv, &inv.images["child"], &Dockerfile::parse(text)).is_ok());
    }

    #[test]
    fn rewriting_replaces_only_the_named_from() {
        let text = "# base: ghcr.io/x/base:latest\nFROM ghcr.io/x/base:latest AS b\nRUN echo ghcr.io/x/base:latest\n";
        let found = uses(text).unwrap();
        let out = rewrite(text, &found, &|p| format!("r/{p}:run-1"));
        assert_eq!(
            out,
            "# base: ghcr.io/x/base:latest\nFROM r/base:run-1 AS b\nRUN echo ghcr.io/x/base:latest\n"
        );
    }
}
