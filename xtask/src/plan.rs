//! Which images to build, in which order, and the docker commands that do it. Pure: a plan is
//! computed first, then either printed (--dry-run) or handed to docker.rs to run.

use std::fmt;
use std::path::Path;

use anyhow::bail;

use crate::inventory::{Image, Inventory};
use crate::tags::{self, BuildId};
use crate::verify;

/// One docker CLI invocation, as an argument vector (never a shell string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerCommand {
    pub args: Vec<String>,
    /// Environment variables the command needs on top of the tool's own.
    pub env: Vec<(String, String)>,
}

impl DockerCommand {
    pub fn new<I, S>(args: I) -> DockerCommand
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DockerCommand { args: args.into_iter().map(Into::into).collect(), env: Vec::new() }
    }

    /// The command as a user would type it, quoted where a shell needs it.
    pub fn display(&self, program: &str) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v)));
        let words = std::iter::once(program).chain(self.args.iter().map(String::as_str)).map(shell_quote);
        env.chain(words).collect::<Vec<_>>().join(" ")
    }
}

fn shell_quote(word: &str) -> String {
    let plain =
        !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Build,
    Tag,
    Push,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub image: String,
    pub action: Action,
    pub command: DockerCommand,
    /// The reference this step produces or pushes.
    pub reference: String,
    /// Images whose builds this step builds on (inventory parents in the same plan).
    pub needs: Vec<String>,
}

/// The docker steps of one command, in three phases. Nothing of a later phase runs unless every
/// step of the earlier ones succeeded: that is what keeps a failed build from pushing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub builds: Vec<Step>,
    /// Checked after every build succeeded and before anything is tagged or pushed.
    pub verifications: Vec<Verification>,
    pub tags: Vec<Step>,
    pub pushes: Vec<Step>,
}

/// The hardening rules one built image must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub image: String,
    pub reference: String,
    pub spec: verify::Spec,
}

impl Plan {
    /// One line per docker command, exactly as it would run; verifications, which are several
    /// commands and a check, as a comment line between the builds and the tags.
    pub fn display(&self, program: &str) -> String {
        let line = |s: &Step| s.command.display(program) + "\n";
        let mut out: String = self.builds.iter().map(line).collect();
        for v in &self.verifications {
            out.push_str(&format!(
                "# verify {} ({}): docker image inspect, create, export, rm; then the inventory's rules\n",
                v.image, v.reference
            ));
        }
        out.extend(self.tags.iter().chain(&self.pushes).map(line));
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    pub pull: bool,
    pub no_cache: bool,
    pub builder: Builder,
}

/// How images are built: BuildKit whenever the docker CLI offers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Builder {
    /// `docker build` without BuildKit: a docker 23+ client without the buildx plugin.
    #[default]
    Legacy,
    /// A client with BuildKit built in (docker before 23), switched on by DOCKER_BUILDKIT=1.
    BuildKit,
    /// `docker buildx build --load`, on the named builder (which may be remote or multi-node)
    /// or the current one.
    Buildx { name: Option<String> },
}

/// Multi-platform images need buildx; say so before anything runs.
fn check_platforms(images: &[&Image], builder: &Builder) -> anyhow::Result<()> {
    if matches!(builder, Builder::Buildx { .. }) {
        return Ok(());
    }
    match images.iter().find(|i| !i.platforms.is_empty()) {
        Some(image) => bail!(
            "images.{}.platforms needs docker buildx, which this docker client does not have: install \
             the buildx plugin, or remove `platforms` to build for this machine's platform",
            image.name
        ),
        None => Ok(()),
    }
}

/// The named images (all when none are named) plus everything they depend on, parents first.
/// Ties are broken by name so the order is stable.
pub fn select<'a>(inventory: &'a Inventory, names: &[String]) -> anyhow::Result<Vec<&'a Image>> {
    let roots: Vec<&Image> = if names.is_empty() {
        inventory.images.values().collect()
    } else {
        names.iter().map(|n| inventory.image(n)).collect::<anyhow::Result<_>>()?
    };
    let mut ordered = Vec::new();
    let mut seen = Vec::new();
    for root in roots {
        visit(inventory, root, &mut seen, &mut ordered);
    }
    Ok(ordered)
}

// The inventory has been checked for cycles and unknown parents, so a plain DFS terminates.
fn visit<'a>(inventory: &'a Inventory, image: &'a Image, seen: &mut Vec<&'a str>, out: &mut Vec<&'a Image>) {
    if seen.contains(&image.name.as_str()) {
        return;
    }
    seen.push(&image.name);
    let mut parents: Vec<&String> = image.depends_on.iter().collect();
    parents.sort();
    for parent in parents {
        if let Some(p) = inventory.images.get(parent) {
            visit(inventory, p, seen, out);
        }
    }
    out.push(image);
}

/// The build argument through which an image receives the reference of an inventory parent
/// built in the same run: `alpine` -> `ALPINE_IMAGE`, `python-alpine` -> `PYTHON_ALPINE_IMAGE`.
/// Its Dockerfile declares `ARG ALPINE_IMAGE=...` and starts `FROM ${ALPINE_IMAGE}`.
pub fn parent_build_arg(parent: &str) -> String {
    let mut arg: String = parent
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    arg.push_str("_IMAGE");
    arg
}

/// The `docker build` arguments shared by local and published builds.
fn build_command(
    image: &Image,
    reference: &str,
    parent_refs: &[(String, String)],
    labels: &[(String, String)],
    options: &BuildOptions,
) -> DockerCommand {
    let mut env = Vec::new();
    let mut args: Vec<String> = match &options.builder {
        Builder::Legacy => vec!["build".into()],
        Builder::BuildKit => {
            env.push(("DOCKER_BUILDKIT".to_string(), "1".to_string()));
            vec!["build".into(), "--progress=plain".into()]
        }
        Builder::Buildx { name } => {
            let mut args = vec!["buildx".to_string(), "build".to_string()];
            if let Some(name) = name {
                args.extend(["--builder".to_string(), name.clone()]);
            }
            // --load puts the result in the engine's image store, where tag, verify and push find it.
            args.extend(["--load".to_string(), "--progress=plain".to_string()]);
            args
        }
    };
    // An image built on an inventory parent must use the parent built in this run: --pull would
    // fetch last week's parent from the registry, or fail for a tag that exists only here.
    if options.pull && image.depends_on.is_empty() {
        args.push("--pull".into());
    }
    if options.no_cache {
        args.push("--no-cache".into());
    }
    if !image.platforms.is_empty() {
        args.push("--platform".into());
        args.push(image.platforms.join(","));
    }
    args.push("--file".into());
    args.push(path_arg(&image.dockerfile));
    args.push("--tag".into());
    args.push(reference.to_string());
    for (key, value) in image.build_args.iter().chain(parent_refs.iter().map(|(k, v)| (k, v))) {
        args.push("--build-arg".into());
        args.push(format!("{key}={value}"));
    }
    for (key, value) in labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    args.push(path_arg(&image.context));
    DockerCommand { args, env }
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Builds `images` (already in dependency order) with local-only tags; pushes nothing.
pub fn build_plan(registry: &str, images: &[&Image], options: &BuildOptions) -> anyhow::Result<Plan> {
    check_platforms(images, &options.builder)?;
    let reference = |image: &Image| tags::local_reference(registry, image);
    let builds = build_steps(images, &reference, &|_| Vec::new(), options);
    Ok(Plan { verifications: verifications(&builds, images), builds, ..Plan::default() })
}

/// A verification for every build whose image has rules.
fn verifications(builds: &[Step], images: &[&Image]) -> Vec<Verification> {
    builds
        .iter()
        .filter_map(|b| {
            let spec = images.iter().find(|i| i.name == b.image)?.verify.clone()?;
            Some(Verification { image: b.image.clone(), reference: b.reference.clone(), spec })
        })
        .collect()
}

fn build_steps(
    images: &[&Image],
    reference: &dyn Fn(&Image) -> String,
    labels: &dyn Fn(&Image) -> Vec<(String, String)>,
    options: &BuildOptions,
) -> Vec<Step> {
    images
        .iter()
        .map(|image| {
            let parents: Vec<(String, String)> = image
                .depends_on
                .iter()
                .filter_map(|p| images.iter().find(|i| &i.name == p))
                .map(|p| (parent_build_arg(&p.name), reference(p)))
                .collect();
            let own = reference(image);
            Step {
                image: image.name.clone(),
                action: Action::Build,
                command: build_command(image, &own, &parents, &labels(image), options),
                reference: own,
                needs: image
                    .depends_on
                    .iter()
                    .filter(|p| images.iter().any(|i| &&i.name == p))
                    .cloned()
                    .collect(),
            }
        })
        .collect()
}

/// Builds every image under its unique tag, then tags and pushes the three published tags of
/// each image whose `push` is true (unique, version, latest), per image in dependency order.
pub fn publish_plan(
    registry: &str,
    images: &[&Image],
    build_id: &BuildId,
    labels: &dyn Fn(&Image) -> Vec<(String, String)>,
    options: &BuildOptions,
) -> anyhow::Result<Plan> {
    check_platforms(images, &options.builder)?;
    let mut refs = Vec::new();
    for image in images {
        refs.push((image.name.as_str(), tags::published_references(registry, image, build_id)?));
    }
    let unique = |image: &Image| {
        refs.iter().find(|(n, _)| *n == image.name).map(|(_, r)| r[0].clone()).unwrap_or_default()
    };
    let builds = build_steps(images, &unique, labels, options);
    let mut plan = Plan { verifications: verifications(&builds, images), builds, ..Plan::default() };
    for (image, (_, [unique, version, latest])) in images.iter().zip(&refs) {
        plan.tags.push(tag_step(&image.name, unique, version));
        plan.tags.push(tag_step(&image.name, unique, latest));
        if image.push {
            plan.pushes.extend([unique, version, latest].map(|r| push_step(&image.name, r)));
        }
    }
    Ok(plan)
}

/// The plans ci-pr runs, in order. With `probe` (a write token is present) the first builds
/// the test package's image and its parents, tags it as the test package and pushes it, so a
/// missing permission shows before the long builds; the second builds every other image.
/// Without it, one plan builds `images`. Nothing but the test package is ever pushed.
pub fn pull_request_plans(
    inventory: &Inventory,
    images: &[&Image],
    probe: bool,
    options: &BuildOptions,
) -> anyhow::Result<Vec<Plan>> {
    let registry = &inventory.registry;
    let all = images.to_vec();
    let Some(package) = inventory.test_package.as_ref().filter(|_| probe) else {
        return Ok(vec![build_plan(registry, &all, options)?]);
    };
    let first = select(inventory, std::slice::from_ref(&package.image))?;
    let ordered: Vec<&Image> = first
        .iter()
        .copied()
        .chain(all.into_iter().filter(|i| !first.iter().any(|f| f.name == i.name)))
        .collect();
    let mut builds = build_plan(registry, &ordered, options)?.builds;
    let rest = builds.split_off(first.len());
    let (probe_checks, rest_checks) = (verifications(&builds, &ordered), verifications(&rest, &ordered));
    let source = tags::local_reference(registry, inventory.image(&package.image)?);
    let target = format!("{}:{}", tags::repository(registry, &package.name), package.tag);
    let probe = Plan {
        builds,
        verifications: probe_checks,
        tags: vec![tag_step(&package.name, &source, &target)],
        pushes: vec![push_step(&package.name, &target)],
    };
    Ok(vec![probe, Plan { builds: rest, verifications: rest_checks, ..Plan::default() }])
}

fn tag_step(image: &str, source: &str, target: &str) -> Step {
    Step {
        image: image.to_string(),
        action: Action::Tag,
        command: DockerCommand::new(["tag", source, target]),
        reference: target.to_string(),
        needs: Vec::new(),
    }
}

fn push_step(image: &str, reference: &str) -> Step {
    Step {
        image: image.to_string(),
        action: Action::Push,
        command: DockerCommand::new(["push", reference]),
        reference: reference.to_string(),
        needs: Vec::new(),
    }
}

/// Images that can build on separate runners: the groups of the selection connected by
/// depends_on (each with the parents it is built on), in dependency order within a group.
pub fn runner_groups<'a>(inventory: &'a Inventory, names: &[String]) -> anyhow::Result<Vec<Vec<&'a Image>>> {
    let selected = select(inventory, names)?;
    let mut groups: Vec<Vec<&Image>> = Vec::new();
    for image in selected {
        // Parents come first in `selected`, so a parent's group already exists.
        let joined: Vec<usize> = (0..groups.len())
            .filter(|&g| groups[g].iter().any(|i| image.depends_on.contains(&i.name)))
            .collect();
        match joined.split_first() {
            None => groups.push(vec![image]),
            Some((&first, rest)) => {
                for &g in rest.iter().rev() {
                    let moved = groups.remove(g);
                    groups[first].extend(moved);
                }
                groups[first].push(image);
            }
        }
    }
    Ok(groups)
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Build => "build",
            Action::Tag => "tag",
            Action::Push => "push",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn inventory(dir: &TestDir) -> Inventory {
        for f in ["Dockerfile-base", "Dockerfile-mid", "Dockerfile-leaf", "Dockerfile-other"] {
            dir.write(f, "FROM scratch\n");
        }
        let text = r#"
registry = "reg.example/ns"
[images.base]
version = "1.0.0"
dockerfile = "Dockerfile-base"
[images.mid]
version = "2.0.0"
dockerfile = "Dockerfile-mid"
depends_on = ["base"]
build_args = { A = "1" }
[images.leaf]
version = "3.0.0"
dockerfile = "Dockerfile-leaf"
depends_on = ["mid", "base"]
push = false
[images.other]
version = "4.0.0"
dockerfile = "Dockerfile-other"
"#;
        Inventory::parse(&dir.path().join("images.toml"), text).unwrap()
    }

    fn names(images: &[&Image]) -> Vec<String> {
        images.iter().map(|i| i.name.clone()).collect()
    }

    #[test]
    fn selection_puts_parents_first_and_adds_them() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let all = names(&select(&inv, &[]).unwrap());
        assert_eq!(all, ["base", "mid", "leaf", "other"]);
        assert_eq!(names(&select(&inv, &["leaf".into()]).unwrap()), ["base", "mid", "leaf"]);
        assert_eq!(names(&select(&inv, &["other".into(), "mid".into()]).unwrap()), ["other", "base", "mid"]);
        let err = select(&inv, &["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("unknown image `nope`") && err.contains("base, leaf, mid, other"), "{err}");
    }

    #[test]
    fn parent_arg_names() {
        assert_eq!(parent_build_arg("alpine"), "ALPINE_IMAGE");
        assert_eq!(parent_build_arg("python-alpine"), "PYTHON_ALPINE_IMAGE");
        assert_eq!(parent_build_arg("a.b_c"), "A_B_C_IMAGE");
    }

    #[test]
    fn local_build_plan_passes_parents_and_never_pushes() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let images = select(&inv, &["mid".into()]).unwrap();
        let plan = build_plan(
            &inv.registry,
            &images,
            &BuildOptions { pull: true, no_cache: true, ..Default::default() },
        )
        .unwrap();
        assert!(plan.tags.is_empty() && plan.pushes.is_empty());
        let dir = d.path().display();
        assert_eq!(
            plan.display("docker"),
            format!(
                "docker build --pull --no-cache --file {dir}/Dockerfile-base --tag reg.example/ns/base:local-v1.0.0 {dir}\n\
                 docker build --no-cache --file {dir}/Dockerfile-mid --tag reg.example/ns/mid:local-v2.0.0 \
                 --build-arg A=1 --build-arg BASE_IMAGE=reg.example/ns/base:local-v1.0.0 {dir}\n"
            )
        );
    }

    #[test]
    fn publish_plan_tags_then_pushes_unique_version_latest() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let images = select(&inv, &["leaf".into()]).unwrap();
        let id = BuildId::parse("42.2").unwrap();
        let labels = |i: &Image| vec![("org.opencontainers.image.title".to_string(), i.name.clone())];
        let plan = publish_plan(&inv.registry, &images, &id, &labels, &BuildOptions::default()).unwrap();
        let builds: Vec<&str> = plan.builds.iter().map(|s| s.reference.as_str()).collect();
        assert_eq!(
            builds,
            [
                "reg.example/ns/base:v1.0.0_42.2",
                "reg.example/ns/mid:v2.0.0_42.2",
                "reg.example/ns/leaf:v3.0.0_42.2"
            ]
        );
        let leaf = &plan.builds[2].command.args;
        assert!(leaf.contains(&"BASE_IMAGE=reg.example/ns/base:v1.0.0_42.2".to_string()), "{leaf:?}");
        assert!(leaf.contains(&"MID_IMAGE=reg.example/ns/mid:v2.0.0_42.2".to_string()), "{leaf:?}");
        assert!(leaf.contains(&"org.opencontainers.image.title=leaf".to_string()), "{leaf:?}");
        assert_eq!(plan.tags.len(), 6, "every built image gets its version and latest tags");
        assert_eq!(
            plan.tags[0].command.args,
            ["tag", "reg.example/ns/base:v1.0.0_42.2", "reg.example/ns/base:v1.0.0"]
        );
        // leaf has push = false: built and tagged, never pushed.
        let pushes: Vec<String> = plan.pushes.iter().map(|s| s.command.args.join(" ")).collect();
        assert_eq!(
            pushes,
            [
                "push reg.example/ns/base:v1.0.0_42.2",
                "push reg.example/ns/base:v1.0.0",
                "push reg.example/ns/base:latest",
                "push reg.example/ns/mid:v2.0.0_42.2",
                "push reg.example/ns/mid:v2.0.0",
                "push reg.example/ns/mid:latest",
            ]
        );
        let all = plan.builds.iter().chain(&plan.tags).chain(&plan.pushes);
        assert!(!all.into_iter().any(|s| s.command.args.contains(&"--all-tags".to_string())));
    }

    #[test]
    fn pull_only_images_whose_base_is_outside_the_inventory() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let images = select(&inv, &["mid".into()]).unwrap();
        let plan =
            build_plan(&inv.registry, &images, &BuildOptions { pull: true, ..Default::default() }).unwrap();
        assert!(plan.builds[0].command.args.contains(&"--pull".to_string()), "base pulls its external base");
        assert!(
            !plan.builds[1].command.args.contains(&"--pull".to_string()),
            "mid builds on this run's base"
        );
    }

    #[test]
    fn pull_request_plans_probe_first_and_push_only_the_test_package() {
        let d = TestDir::new("plan");
        let mut inv = inventory(&d);
        inv.test_package = Some(crate::inventory::TestPackage {
            name: "test".into(),
            tag: "do_not_use".into(),
            image: "mid".into(),
        });
        let plans =
            pull_request_plans(&inv, &select(&inv, &[]).unwrap(), true, &BuildOptions::default()).unwrap();
        assert_eq!(plans.len(), 2);
        let built = |p: &Plan| p.builds.iter().map(|s| s.image.clone()).collect::<Vec<_>>();
        assert_eq!(built(&plans[0]), ["base", "mid"]);
        assert_eq!(built(&plans[1]), ["leaf", "other"]);
        // leaf is built on this run's mid, whose step lives in the first plan.
        assert!(plans[1].builds[0]
            .command
            .args
            .contains(&"MID_IMAGE=reg.example/ns/mid:local-v2.0.0".to_string()));
        assert_eq!(
            plans[0].tags[0].command.args,
            ["tag", "reg.example/ns/mid:local-v2.0.0", "reg.example/ns/test:do_not_use"]
        );
        let pushes: Vec<&Step> = plans.iter().flat_map(|p| &p.pushes).collect();
        assert_eq!(pushes.len(), 1);
        assert_eq!(pushes[0].command.args, ["push", "reg.example/ns/test:do_not_use"]);

        let plans =
            pull_request_plans(&inv, &select(&inv, &[]).unwrap(), false, &BuildOptions::default()).unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(built(&plans[0]), ["base", "mid", "leaf", "other"]);
        assert!(plans[0].pushes.is_empty() && plans[0].tags.is_empty());
    }

    #[test]
    fn runner_groups_follow_depends_on() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let groups = runner_groups(&inv, &[]).unwrap();
        let names: Vec<Vec<&str>> =
            groups.iter().map(|g| g.iter().map(|i| i.name.as_str()).collect()).collect();
        assert_eq!(names, [vec!["base", "mid", "leaf"], vec!["other"]]);
        let groups = runner_groups(&inv, &["leaf".into()]).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len(), 3, "a group carries the parents it is built on");
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let cmd = DockerCommand::new(["build", "--build-arg", "X=a b", "it's"]);
        assert_eq!(cmd.display("docker"), r"docker build --build-arg 'X=a b' 'it'\''s'");
    }
}
