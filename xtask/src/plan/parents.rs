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

use crate::dockerfile::{is_arg_reference, Dockerfile, ImageReference};
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
    let mut problems = Vec::new();
    if dockerfile.froms(&image.build_args).is_empty() {
        problems.push(format!("{}: no FROM instruction", image.dockerfile.display()));
    }
    // Every image it takes files from (FROM, COPY --from, RUN --mount from), with the ARGs
    // substituted as the build will: images.toml's build_args over the Dockerfile's defaults.
    let references = dockerfile.image_references(&image.build_args);
    let global: Vec<String> = dockerfile.global_args().into_iter().map(|(name, _)| name).collect();
    let registries = registries(inventory);
    problems.extend(undeclared_parents(inventory, &registries, image, &references));
    let mut uses = Vec::new();
    for parent in &image.depends_on {
        let Some(parent_image) = inventory.images.get(parent) else { continue };
        let arg = parent_build_arg(parent);
        let by_arg = references.iter().any(|r| is_arg_reference(&r.written, &arg));
        if global.contains(&arg) && !by_arg {
            problems.push(format!(
                "{}: declares ARG {arg} but no FROM builds on it, so images.{}.depends_on = [\"{parent}\"] would \
                 pass this run's {parent} for nothing: write `FROM ${{{arg}}}`",
                image.dockerfile.display(),
                image.name
            ));
            continue;
        }
        if global.contains(&arg) {
            uses.push(ParentUse { parent: parent.clone(), how: Use::Arg(arg.clone()) });
        }
        let named = named_uses(inventory, &registries, image, parent_image, &references);
        problems.extend(named.problems);
        if !global.contains(&arg) && !named.mentioned {
            problems.push(format!(
                "{}: images.{}.depends_on names `{parent}`, but the Dockerfile never builds FROM it: declare \
                 `ARG {arg}` and write `FROM ${{{arg}}}` (the tool passes the {parent} it just built), or write \
                 FROM {}/{parent}:{}",
                image.dockerfile.display(),
                image.name,
                inventory.registry,
                version_tag(parent_image)
            ));
        }
        uses.extend(named.uses);
    }
    if problems.is_empty() {
        Ok(uses)
    } else {
        Err(problems)
    }
}

/// References to an inventory image that `image` does not declare in depends_on (a parent it
/// takes through its ARG is declared by definition).
fn undeclared_parents(
    inventory: &Inventory,
    registries: &[&str],
    image: &Image,
    references: &[ImageReference],
) -> Vec<String> {
    let arg_of_parent = |r: &ImageReference| {
        image.depends_on.iter().any(|p| is_arg_reference(&r.written, &parent_build_arg(p)))
    };
    let mut problems = Vec::new();
    for r in references.iter().filter(|r| !arg_of_parent(r)) {
        let Some((other, _, _)) = inventory_image(inventory, registries, &r.resolved) else { continue };
        if other != image.name && !image.depends_on.contains(&other) {
            problems.push(format!(
                "{}:{}: names {}, an image of this inventory, but images.{}.depends_on leaves out `{other}`: \
                 add it, so that {other} is built first in the same run and this image is built on it",
                image.dockerfile.display(),
                r.first_line,
                r.resolved,
                image.name
            ));
        }
    }
    problems
}

/// Where `image` names `parent` by its registry name: each use, and each name this run does not
/// produce (a digest, a tag other than the version tag or latest).
struct NamedUses {
    uses: Vec<ParentUse>,
    problems: Vec<String>,
    /// Whether any reference names the parent at all.
    mentioned: bool,
}

fn named_uses(
    inventory: &Inventory,
    registries: &[&str],
    image: &Image,
    parent: &Image,
    references: &[ImageReference],
) -> NamedUses {
    let arg = parent_build_arg(&parent.name);
    let version = version_tag(parent);
    let produced = [version.clone(), "latest".to_string()];
    let mut named = NamedUses { uses: Vec::new(), problems: Vec::new(), mentioned: false };
    for r in references.iter().filter(|r| !is_arg_reference(&r.written, &arg)) {
        let Some((name, tag, digest)) = inventory_image(inventory, registries, &r.resolved) else { continue };
        if name != parent.name {
            continue;
        }
        named.mentioned = true;
        let tag = tag.unwrap_or_else(|| "latest".into());
        if digest.is_some() || !produced.contains(&tag) {
            named.problems.push(format!(
                "{}:{}: names {}, which this run does not produce: a child is built on the {p} built in the same \
                 run, which is tagged {}; write {}/{p}:{version}, or declare ARG {arg} and write FROM ${{{arg}}}",
                image.dockerfile.display(),
                r.first_line,
                r.resolved,
                produced.join(" and "),
                inventory.registry,
                p = parent.name,
            ));
            continue;
        }
        let how = Use::Named { first_line: r.first_line, last_line: r.last_line, written: r.written.clone() };
        named.uses.push(ParentUse { parent: parent.name.clone(), how });
    }
    named
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
        match inventory.sources.image(&image.name).map(|s| parent_uses(inventory, image, &s.dockerfile)) {
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

/// The images other than inventory images that `image` takes files from (its FROMs, COPY
/// --from and RUN --mount), as the build will resolve them.
pub fn other_images(inventory: &Inventory, image: &Image, dockerfile: &Dockerfile) -> Vec<String> {
    let registries = registries(inventory);
    let args: Vec<String> = image.depends_on.iter().map(|p| parent_build_arg(p)).collect();
    dockerfile
        .image_references(&image.build_args)
        .into_iter()
        .filter(|r| !args.iter().any(|a| is_arg_reference(&r.written, a)) && !r.resolved.is_empty())
        .filter(|r| inventory_image(inventory, &registries, &r.resolved).is_none())
        .map(|r| r.resolved)
        .collect()
}

/// The image a Dockerfile's final stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// An image from outside the inventory, as the FROM resolves it (`alpine:3.23`).
    Outside(String),
    /// An inventory parent built (or published) in this run; `named` is its version tag's
    /// reference, the name its published image goes by.
    Parent { image: String, named: String },
}

/// What `image`'s final stage is built FROM, following stage names back to an image; None for
/// `scratch`.
pub fn final_base(inventory: &Inventory, image: &Image, dockerfile: &Dockerfile) -> Option<BaseSource> {
    let froms = dockerfile.froms(&image.build_args);
    let mut from = froms.last()?;
    // `FROM build` names an earlier stage: the base is what that stage starts from.
    for _ in 0..froms.len() {
        match froms
            .iter()
            .find(|f| f.stage.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(&from.resolved)))
        {
            Some(stage) if stage.line < from.line => from = stage,
            _ => break,
        }
    }
    let parent = image
        .depends_on
        .iter()
        .find(|p| is_arg_reference(&from.image, &parent_build_arg(p)))
        .cloned()
        .or_else(|| {
            inventory_image(inventory, &registries(inventory), &from.resolved)
                .map(|(name, _, _)| name)
                .filter(|name| image.depends_on.contains(name))
        });
    match parent {
        Some(parent) => {
            let named =
                format!("{}/{parent}:{}", inventory.registry, version_tag(&inventory.images[&parent]));
            Some(BaseSource::Parent { image: parent, named })
        }
        None if from.resolved.eq_ignore_ascii_case("scratch") || from.resolved.is_empty() => None,
        None => Some(BaseSource::Outside(from.resolved.clone())),
    }
}

/// An image named on some lines of a Dockerfile, and what it is replaced with in the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub first_line: usize,
    pub last_line: usize,
    pub written: String,
    pub with: String,
}

/// `text` with the first occurrence of each replacement's image, within its lines, replaced.
pub fn rewrite_lines(text: &str, replacements: &[Replacement]) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    for r in replacements {
        for line in lines.iter_mut().take(r.last_line).skip(r.first_line - 1) {
            if let Some(at) = line.find(r.written.as_str()) {
                line.replace_range(at..at + r.written.len(), &r.with);
                break;
            }
        }
    }
    lines.concat()
}

/// How a FROM of an outside image is pinned: the line rewritten, or (`FROM ${NAME}`) the ARG
/// given the pinned name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutsideFrom {
    Line(Replacement),
    Arg { name: String, image: String },
}

/// The FROM lines of `image` that start from an image outside the inventory (neither a parent,
/// nor a stage, nor `scratch`); none with a `--platform` of its own (a stage that runs on the
/// build machine). One whose image is part of an ARG (`${REGISTRY}/alpine`) is refused: a
/// build for several platforms pins each base to its platform, which needs the whole image.
pub fn outside_froms(
    inventory: &Inventory,
    image: &Image,
    dockerfile: &Dockerfile,
) -> Result<Vec<OutsideFrom>, String> {
    let froms = dockerfile.froms(&image.build_args);
    let references = dockerfile.image_references(&image.build_args);
    let stages: Vec<&str> = froms.iter().filter_map(|f| f.stage.as_deref()).collect();
    let registries = registries(inventory);
    let mut found = Vec::new();
    for from in &froms {
        let stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&from.resolved));
        let parent = inventory_image(inventory, &registries, &from.resolved).is_some()
            || image.depends_on.iter().any(|p| is_arg_reference(&from.image, &parent_build_arg(p)));
        if stage || parent || from.resolved.eq_ignore_ascii_case("scratch") || from.platform.is_some() {
            continue;
        }
        let whole_arg = from.image.trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
        if from.image != from.resolved && is_arg_reference(&from.image, whole_arg) {
            found.push(OutsideFrom::Arg { name: whole_arg.to_string(), image: from.resolved.clone() });
            continue;
        }
        let whole_arg = from.image.trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
        if from.image != from.resolved && is_arg_reference(&from.image, whole_arg) {
            found.push(OutsideFrom::Arg { name: whole_arg.to_string(), image: from.resolved.clone() });
            continue;
        }
        if from.image != from.resolved {
            return Err(format!(
                "{}:{}: FROM {} takes its image from an ARG; to build images.{}.platforms each base is \
                 pinned to its platform's digest: write the image itself ({})",
                image.dockerfile.display(),
                from.line,
                from.image,
                image.name,
                from.resolved
            ));
        }
        let last_line = references
            .iter()
            .find(|r| r.first_line == from.line && r.written == from.image)
            .map_or(from.line, |r| r.last_line);
        found.push(OutsideFrom::Line(Replacement {
            first_line: from.line,
            last_line,
            written: from.image.clone(),
            with: String::new(),
        }));
    }
    Ok(found)
}

/// The inventory image `reference` names (with its tag and digest), under any of `registries`:
/// one may be a prefix of another (`r:5000` and `r:5000/sbl`), so each is tried.
fn inventory_image(
    inventory: &Inventory,
    registries: &[&str],
    reference: &str,
) -> Option<(String, Option<String>, Option<String>)> {
    let (repository, tag, digest) = split_reference(reference);
    let name = registries
        .iter()
        .filter_map(|r| repository.strip_prefix(&format!("{r}/")))
        .find(|name| inventory.images.contains_key(*name))?;
    Some((name.to_string(), tag, digest))
}

/// Every registry a Dockerfile may name the inventory's images under: the one in images.toml
/// and the one this run publishes to (`--registry`).
fn registries(inventory: &Inventory) -> Vec<&str> {
    let mut all = vec![inventory.registry.as_str(), inventory.declared_registry.as_str()];
    all.dedup();
    all
}

/// How one image builds on its parents (from parents.rs) and, when it names a parent, the
/// Dockerfile text to copy with those names rewritten, and its own `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub uses: Vec<ParentUse>,
    pub dockerfile: String,
    pub dockerignore: Option<String>,
    /// What its final stage starts from.
    pub base: Option<BaseSource>,
    /// The other images from outside the inventory it takes files from (build stages, `COPY
    /// --from`), sorted, its base left out.
    pub sources: Vec<String>,
}

pub type Lineage = BTreeMap<String, Links>;

/// Reads and checks how every image of `images` builds on its parents.
pub fn lineage(inventory: &Inventory, images: &[&Image]) -> anyhow::Result<Lineage> {
    let uses = all_parent_uses(inventory, images)?;
    let mut lineage = Lineage::new();
    for (name, uses) in uses {
        let mut links = Links { uses, ..Links::default() };
        let image = &inventory.images[&name];
        let files = inventory.sources.image(&name).map_err(|e| anyhow::anyhow!(e))?;
        links.base = final_base(inventory, image, &files.dockerfile);
        links.sources = other_images(inventory, image, &files.dockerfile);
        links.sources.retain(|s| !matches!(&links.base, Some(BaseSource::Outside(name)) if name == s));
        links.sources.sort();
        links.sources.dedup();
        if links.uses.iter().any(|u| matches!(u.how, Use::Named { .. })) {
            links.dockerfile = files.text.clone();
            links.dockerignore = files.own_ignore.clone();
        }
        lineage.insert(name, links);
    }
    Ok(lineage)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Dockerfile text with each named FROM of a parent replaced by `reference(parent)`.
    fn rewrite(text: &str, uses: &[ParentUse], reference: &dyn Fn(&str) -> String) -> String {
        let named: Vec<Replacement> = uses
            .iter()
            .filter_map(|u| match &u.how {
                Use::Named { first_line, last_line, written } => Some(Replacement {
                    first_line: *first_line,
                    last_line: *last_line,
                    written: written.clone(),
                    with: reference(&u.parent),
                }),
                Use::Arg(_) => None,
            })
            .collect();
        rewrite_lines(text, &named)
    }
    use crate::testdir::TestDir;

    fn inventory(dir: &TestDir, child_dockerfile: &str) -> Inventory {
        dir.write("Dockerfile-base", "FROM scratch\n");
        dir.write("Dockerfile-other", "FROM scratch\n");
        dir.write("Dockerfile-child", child_dockerfile);
        let text = "registry = \"ghcr.io/x\"\n\
                    [images.base]\nversion = \"1.2.3\"\ndockerfile = \"Dockerfile-base\"\n\
                    [images.other]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-other\"\n\
                    [images.child]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-child\"\ndepends_on = [\"base\"]\n";
        crate::sys::inputs::parse_inventory(&dir.path().join("images.toml"), text).unwrap()
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
                p.contains(&format!("Dockerfile-child:1: names {from}, which this run does not produce")),
                "{p}"
            );
            assert!(p.contains("v1.2.3 and latest"), "{p}");
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
            found[0].contains("Dockerfile-child:2: names ghcr.io/x/other:latest")
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

    /// An image the child takes files from counts wherever it is named: through images.toml's
    /// build_args, or in COPY --from and RUN --mount.
    #[test]
    fn every_reference_to_a_parent_is_held_to_the_rules() {
        let d = TestDir::new("parents");
        let inv = inventory(&d, "FROM scratch\n");
        let mut child = inv.images["child"].clone();
        let text = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY --from=ghcr.io/x/base:v1.0.0 /a /a\nRUN --mount=from=ghcr.io/x/base:v1.2.3,target=/m true\n";
        let found = parent_uses(&inv, &child, &Dockerfile::parse(text)).unwrap_err();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .contains("Dockerfile-child:3: names ghcr.io/x/base:v1.0.0, which this run does not produce"),
            "{found:?}"
        );
        // A build argument from images.toml that names an inventory image is held to the rules too.
        child.depends_on.clear();
        child.build_args.insert("PARENT".into(), "ghcr.io/x/base:latest".into());
        let found =
            parent_uses(&inv, &child, &Dockerfile::parse("ARG PARENT\nFROM ${PARENT}\n")).unwrap_err();
        assert!(
            found[0].contains("names ghcr.io/x/base:latest") && found[0].contains("leaves out `base`"),
            "{found:?}"
        );
        // With depends_on, that FROM is rewritten to this run's base like any other.
        child.depends_on.push("base".into());
        let uses = parent_uses(&inv, &child, &Dockerfile::parse("ARG PARENT\nFROM ${PARENT}\n")).unwrap();
        assert!(matches!(&uses[0].how, Use::Named { written, .. } if written == "${PARENT}"), "{uses:?}");
        let text = "ARG PARENT\nFROM ${PARENT}\nCOPY --from=ghcr.io/x/base:latest /a /a\n";
        let out = rewrite(text, &parent_uses(&inv, &child, &Dockerfile::parse(text)).unwrap(), &|p| {
            format!("r/{p}:run")
        });
        assert_eq!(out, "ARG PARENT\nFROM r/base:run\nCOPY --from=r/base:run /a /a\n");
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

    /// `--registry r:5000` beside images.toml's `r:5000/sbl`: one registry is a prefix of the
    /// other, and a FROM under either still names the inventory image.
    #[test]
    fn the_final_stage_s_base_is_found_through_stage_names_and_parent_forms() {
        let d = TestDir::new("parents-base");
        let inv = inventory(&d, "FROM ghcr.io/x/base:latest\n");
        let child = &inv.images["child"];
        let base = |text: &str| final_base(&inv, child, &Dockerfile::parse(text));
        let named = BaseSource::Parent { image: "base".into(), named: "ghcr.io/x/base:v1.2.3".into() };
        assert_eq!(base("FROM ghcr.io/x/base:latest\n"), Some(named.clone()));
        assert_eq!(base("ARG BASE_IMAGE=ghcr.io/x/base:latest\nFROM ${BASE_IMAGE}\n"), Some(named));
        assert_eq!(
            base("ARG V=3.23\nFROM golang AS build\nFROM alpine:${V} AS run\nFROM run\nCOPY --from=build / /\n"),
            Some(BaseSource::Outside("alpine:3.23".into()))
        );
        assert_eq!(base("FROM scratch\n"), None);
    }

    #[test]
    fn registries_that_prefix_each_other() {
        let d = TestDir::new("parents");
        let text = "FROM ghcr.io/x/base:latest\n";
        let inv = inventory(&d, text).with_registry(Some("ghcr.io")).unwrap();
        assert!(parent_uses(&inv, &inv.images["child"], &Dockerfile::parse(text)).is_ok());
        let mut orphan = inv.images["child"].clone();
        orphan.depends_on.clear();
        let found = parent_uses(&inv, &orphan, &Dockerfile::parse(text)).unwrap_err();
        assert!(found[0].contains("leaves out `base`"), "{found:?}");
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
