//! Which images to build, in which order, and the docker steps that do it. Pure: a plan is
//! computed first, then either printed (--dry-run) or handed to run/ to run.
//!
//! Every image is built under a run-private name (`<registry>/<name>:run-<token>`) that no
//! other run and no published tag uses. Children are built on their parents by that name, the
//! published and local tags are made from it right before each push, and it is removed at the
//! end: two runs on one engine never build on, tag or push each other's images.

use std::path::{Path, PathBuf};

use crate::model::inventory::{Image, Inventory};
mod builds;
pub mod changes;
mod display;
pub mod order;
pub mod parents;
pub mod platforms;
mod publish;

use crate::model::hardening;
use crate::model::platform::Platform;
use crate::model::rebuild::{self, Base, Origins};
pub use crate::model::step::{BuildStep, Builder, Step};
use crate::model::tags::{self};
use builds::builds;
pub use order::{runner_groups, select};
pub use parents::{lineage, BaseSource, Lineage};
pub use platforms::Pin;
pub use publish::{build_plan, publish_plan, pull_request_plans};

/// The names one run gives what it builds, and the folder for its files (image ids, Dockerfile
/// copies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNames {
    pub token: String,
    pub dir: PathBuf,
}

impl RunNames {
    /// The names of a run with `token` (one no other run on this machine uses), its files in
    /// a folder of its own under `temp`.
    pub fn new(token: String, temp: &Path) -> RunNames {
        let dir = temp.join(format!("xtask-run-{token}"));
        RunNames { token, dir }
    }

    /// The run-private reference `image` is built as.
    pub fn reference(&self, registry: &str, image: &str) -> String {
        format!("{}:run-{}", tags::repository(registry, image), self.token)
    }
}

/// One build: its command, the run-private reference it makes, where the engine writes the
/// image's id, and the files to write first (when its FROM names a parent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// What the run calls it: the image's name, with the platform when it has several
    /// (`base@linux/arm64`, platforms::key).
    pub image: String,
    /// The inventory image it is a build of.
    pub of: String,
    /// The platform it is built for; None for the engine's own (an image without `platforms`).
    pub platform: Option<Platform>,
    pub step: BuildStep,
    pub reference: String,
    pub iidfile: PathBuf,
    /// Files to write before building: a Dockerfile copy whose FROM names this run's parent
    /// (and the Dockerfile's own `.dockerignore`, which BuildKit reads beside it).
    pub copies: Vec<(PathBuf, String)>,
    /// Images whose builds this one builds on (inventory parents in the same run).
    pub needs: Vec<String>,
    /// What its final stage starts from; its name and digest become the image's
    /// `org.opencontainers.image.base.*` labels, which only the run can know.
    pub base: Option<BaseSource>,
    /// The other images from outside the inventory it takes files from (build stages,
    /// `COPY --from`); their digests become its SOURCES label.
    pub sources: Vec<String>,
    /// Its inventory parents that it takes files from without starting from them (`COPY
    /// --from`): (parent, its version tag's reference). The image ids built on join the
    /// SOURCES label, so that a changed parent republishes this image too.
    pub parent_sources: Vec<(String, String)>,
    /// For one platform of several: its outside bases (FROM), pinned to that platform.
    pub pins: Vec<Pin>,
}

impl Build {
    /// The build with the labels of what it starts from and takes files from.
    pub fn with_origins(&self, origins: &Origins) -> BuildStep {
        let mut step = self.step.clone();
        let labels = &mut step.labels;
        if let Some(base) = &origins.base {
            labels.push((rebuild::BASE_NAME.to_string(), base.name.clone()));
            labels.push((rebuild::BASE_DIGEST.to_string(), base.digest.clone()));
        }
        if !origins.sources.is_empty() {
            labels.push((rebuild::SOURCES.to_string(), origins.sources_label()));
        }
        step
    }

    /// The images from outside the inventory it starts from or takes files from.
    pub fn outside_images(&self) -> impl Iterator<Item = &String> {
        let base = match &self.base {
            Some(BaseSource::Outside(name)) => Some(name),
            _ => None,
        };
        base.into_iter().chain(&self.sources)
    }

    /// What it starts from as the dry run shows it: the digests are only known when the run asks.
    fn origins_placeholder(&self) -> Origins {
        let base = self.base.as_ref().map(|b| match b {
            BaseSource::Outside(name) => Base { name: name.clone(), digest: format!("<digest of {name}>") },
            BaseSource::Parent { image, named } => {
                Base { name: named.clone(), digest: format!("<image id of the {image} this run builds on>") }
            }
        });
        let outside = self
            .sources
            .iter()
            .map(|name| Base { name: name.clone(), digest: format!("<digest of {name}>") });
        let parents = self.parent_sources.iter().map(|(image, named)| Base {
            name: named.clone(),
            digest: format!("<image id of the {image} this run builds on>"),
        });
        let mut sources: Vec<Base> = outside.chain(parents).collect();
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        Origins { base, sources }
    }
}

/// An image compared with what is published under its version tag before it is pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The build compared (Build::image).
    pub image: String,
    /// Its inventory image.
    pub of: String,
    /// The platform whose manifest of the published index it is compared with.
    pub platform: Option<Platform>,
    /// Every platform its image is built for (empty for the engine's own).
    pub platforms: Vec<Platform>,
    /// `<registry>/<name>:v<version>`.
    pub published: String,
}

/// The hardening rules one built image must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub image: String,
    pub reference: String,
    /// The platform it must be: its configuration and its executables say so.
    pub platform: Option<Platform>,
    /// None when the inventory has no rules for it: its files are still read for its packages.
    pub spec: Option<hardening::Spec>,
    /// The name the build is kept under when it breaks a rule (`tags::rejected_reference`).
    pub kept_as: String,
}

impl Comparison {
    /// Its image's platforms, as a list to read.
    pub fn platforms_text(&self) -> String {
        self.platforms.iter().map(Platform::to_string).collect::<Vec<_>>().join(", ")
    }
}

impl Verification {
    /// Keeps a build that broke its rules under `kept_as`: the one kept before goes first,
    /// with the layers only it used, then the run's name is copied there.
    pub fn keep(&self) -> [Step; 2] {
        [Step::remove(&self.kept_as), Step::tag(&self.reference, &self.kept_as)]
    }
}

/// What one built image becomes once every build and check passed: its tags, in order, each
/// made right before it is pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The build it publishes (Build::image), or for an index the inventory image.
    pub image: String,
    /// The run-private reference it was built as (none for an index).
    pub source: String,
    pub targets: Vec<Target>,
    /// Publications that must be out before this one: an index waits for its platforms'.
    pub after: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub reference: String,
    /// The local name it gets (none for an index, which the engine cannot hold).
    pub tag: Option<Step>,
    pub push: Option<Step>,
    /// An index of the platforms' manifests, pushed under `reference` by a manifest PUT:
    /// (platform, the reference its manifest was pushed and read back under).
    pub index: Option<Vec<(Platform, String)>>,
    /// A unique tag: asked about again right before it is pushed.
    pub immutable: bool,
    /// Pushed by giving it, in the registry, the manifest this earlier target of the image was
    /// pushed with (the version tag and `latest` after the unique tag): the same digest, and no
    /// layer sent again. `push` is then what it would take without the registry's help.
    pub retag_of: Option<String>,
}

/// The steps of one command, in phases. Nothing of a later phase runs unless every step of
/// the earlier ones succeeded: that is what keeps a failed build from pushing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub run: RunNames,
    /// References that must be absent before anything builds (unique tags).
    pub must_be_absent: Vec<String>,
    /// With --pull, every image from outside the inventory the builds start from or take files
    /// from, pulled before the builds: no build pulls by itself, so what each uses is what its
    /// labels record.
    pub pulls: Vec<Step>,
    /// Outside bases pinned per platform before the builds (images with several platforms).
    pub pins: Vec<Pin>,
    pub builds: Vec<Build>,
    pub verifications: Vec<Verification>,
    /// Images published only when they differ from the published ones (publish, ci-main).
    pub comparisons: Vec<Comparison>,
    /// Publish what the comparisons find unchanged too.
    pub force: bool,
    pub publications: Vec<Publication>,
    /// Removes the run-private names when the run is over.
    pub cleanup: Vec<Step>,
}

impl Plan {
    fn empty(run: &RunNames) -> Plan {
        Plan {
            run: run.clone(),
            must_be_absent: Vec::new(),
            pulls: Vec::new(),
            pins: Vec::new(),
            builds: Vec::new(),
            verifications: Vec::new(),
            comparisons: Vec::new(),
            force: false,
            publications: Vec::new(),
            cleanup: Vec::new(),
        }
    }

    /// Whether any of its targets goes to a registry (a local build pushes nothing).
    pub fn pushes(&self) -> bool {
        self.publications.iter().flat_map(|p| &p.targets).any(|t| t.push.is_some())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    pub pull: bool,
    pub no_cache: bool,
    pub builder: Builder,
    /// The platform the builds run on (the legacy builder is told, as BuildKit tells a
    /// Dockerfile, for `FROM --platform=$BUILDPLATFORM`).
    pub host: Option<Platform>,
}

/// Everything a plan is made from.
pub struct Inputs<'a> {
    pub inventory: &'a Inventory,
    pub registry: &'a str,
    pub images: &'a [&'a Image],
    pub lineage: &'a Lineage,
    pub options: &'a BuildOptions,
    pub run: &'a RunNames,
}

impl Inputs<'_> {
    /// The run-private reference `image` is built as for `platform`.
    fn reference(&self, image: &str, platform: Option<&Platform>) -> String {
        platforms::suffixed(&self.run.reference(self.registry, image), platform)
    }
}

/// `docker pull` of every image from outside the inventory the builds start from or take files
/// from, when --pull asks for fresh ones: a child's build cannot pull (its parent exists only
/// in this run), and the digests the labels record must be those the builds will use. A base
/// pinned per platform is pulled by its digest anyway.
fn pulls(inputs: &Inputs<'_>, builds: &[Build]) -> Vec<Step> {
    if !inputs.options.pull {
        return Vec::new();
    }
    let mut images: Vec<&String> = builds
        .iter()
        .flat_map(|b| b.outside_images().filter(move |i| !b.pins.iter().any(|p| &p.base == *i)))
        .collect();
    images.sort();
    images.dedup();
    images.into_iter().map(|image| Step::pull(image)).collect()
}

/// Every outside base pinned for a platform, once.
fn pins(builds: &[Build]) -> Vec<Pin> {
    let mut pins: Vec<Pin> = builds.iter().flat_map(|b| b.pins.iter().cloned()).collect();
    pins.sort();
    pins.dedup();
    pins
}

/// Removing every run-private name once the run is over. An image that kept another tag (a
/// published or local one) only loses the name. One that did not (unchanged, or a run that
/// failed) goes with the untagged layers only it used: the legacy builder commits every
/// `--label` as a layer of its own, and the `created` label differs on every run, so kept
/// layers would pile up on a long-lived runner, one chain per image per run. The names the
/// pinned bases were given go too; the bases stay, as any pulled base does.
fn cleanup(builds: &[Build]) -> Vec<Step> {
    let names = builds.iter().map(|b| b.reference.clone());
    names.chain(pins(builds).into_iter().map(|p| p.local)).map(|r| Step::remove(&r)).collect()
}

pub(super) fn local_target(source: &str, reference: &str, push: bool, immutable: bool) -> Target {
    Target {
        reference: reference.to_string(),
        tag: Some(Step::tag(source, reference)),
        push: push.then(|| Step::push(reference)),
        immutable,
        retag_of: None,
        index: None,
    }
}

/// The plan's phases before the publications: pulls, pins, builds, checks, cleanup.
pub(super) fn building(
    inputs: &Inputs<'_>,
    labels: &dyn Fn(&Image) -> Vec<(String, String)>,
) -> anyhow::Result<Plan> {
    let (builds, verifications) = builds(inputs, labels)?;
    Ok(Plan {
        pulls: pulls(inputs, &builds),
        pins: pins(&builds),
        cleanup: cleanup(&builds),
        builds,
        verifications,
        ..Plan::empty(inputs.run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tags::BuildId;
    use crate::testdir::TestDir;

    fn inventory(dir: &TestDir) -> Inventory {
        dir.write("Dockerfile-base", "FROM scratch\n");
        dir.write("Dockerfile-mid", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n");
        dir.write(
            "Dockerfile-leaf",
            "FROM reg.example/ns/mid:latest AS m\nFROM reg.example/ns/base:v1.0.0\nCOPY --from=m / /\n",
        );
        dir.write("Dockerfile-other", "FROM scratch\n");
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
        crate::sys::inputs::parse_inventory(&dir.path().join("images.toml"), text).unwrap()
    }

    fn run() -> RunNames {
        RunNames { token: "t0".into(), dir: PathBuf::from("/tmp/xtask-run-t0") }
    }

    fn names(images: &[&Image]) -> Vec<String> {
        images.iter().map(|i| i.name.clone()).collect()
    }

    /// The inputs a command would plan `wanted` (all when empty) from, handed to `f`.
    fn with_inputs<T>(
        inv: &Inventory,
        wanted: &[&str],
        options: &BuildOptions,
        f: impl FnOnce(&Inputs<'_>) -> T,
    ) -> T {
        // Tests write Dockerfiles after loading the inventory: read them as a run would, now.
        let mut inv = inv.clone();
        inv.sources = crate::sys::inputs::read_sources(&inv, &inv.sources.inventory);
        let inv = &inv;
        let names: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        let images = select(inv, &names).unwrap();
        let lineage = lineage(inv, &images).unwrap();
        let run = run();
        f(&Inputs {
            inventory: inv,
            registry: &inv.registry,
            images: &images,
            lineage: &lineage,
            options,
            run: &run,
        })
    }

    /// A plan of `images` for `inv`, through the same steps a command takes.
    fn plan_of(inv: &Inventory, wanted: &[&str], options: &BuildOptions, publish: Option<&BuildId>) -> Plan {
        with_inputs(inv, wanted, options, |inputs| match publish {
            Some(id) => {
                let labels = |i: &Image| vec![("org.opencontainers.image.title".to_string(), i.name.clone())];
                publish_plan(inputs, id, &labels, false).unwrap()
            }
            None => build_plan(inputs).unwrap(),
        })
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

    /// The images a build starts from and takes files from are known to the plan: pulled first
    /// with --pull, and labelled with their digests (placeholders in a dry run).
    #[test]
    fn build_stage_images_are_pulled_first_and_labelled() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        d.write(
            "Dockerfile-other",
            "FROM golang:1.22 AS build\nFROM alpine:3.23\nCOPY --from=build /x /x\nCOPY --from=busybox:1 /bin/sh /sh\n",
        );
        let plan = plan_of(&inv, &["other"], &BuildOptions { pull: true, ..Default::default() }, None);
        let build = &plan.builds[0];
        assert_eq!(build.base, Some(BaseSource::Outside("alpine:3.23".into())));
        assert_eq!(build.sources, ["busybox:1", "golang:1.22"]);
        let pulls: Vec<String> = plan.pulls.iter().map(|p| p.command().args.join(" ")).collect();
        assert_eq!(pulls, ["pull alpine:3.23", "pull busybox:1", "pull golang:1.22"]);
        let shown = plan.display("docker");
        assert!(
            shown.contains(
                "--label 'gov.cfpb.images.build-sources=busybox:1@<digest of busybox:1> golang:1.22@<digest of golang:1.22>'"
            ),
            "{shown}"
        );
    }

    #[test]
    fn local_build_plan_builds_on_run_names_and_never_pushes() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let plan =
            plan_of(&inv, &["mid"], &BuildOptions { pull: true, no_cache: true, ..Default::default() }, None);
        let dir = d.path().display();
        assert_eq!(
            plan.display("docker"),
            format!(
                "DOCKER_BUILDKIT=0 docker build --force-rm --no-cache --file {dir}/Dockerfile-base --tag reg.example/ns/base:run-t0 \
                 --iidfile /tmp/xtask-run-t0/base.iid {dir}\n\
                 # verify base (reg.example/ns/base:run-t0): image inspect, create, export, rm; then its packages\n\
                 DOCKER_BUILDKIT=0 docker build --force-rm --no-cache --file {dir}/Dockerfile-mid --tag reg.example/ns/mid:run-t0 \
                 --iidfile /tmp/xtask-run-t0/mid.iid --build-arg A=1 --build-arg BASE_IMAGE=reg.example/ns/base:run-t0 \
                 --label org.opencontainers.image.base.name=reg.example/ns/base:v1.0.0 \
                 --label 'org.opencontainers.image.base.digest=<image id of the base this run builds on>' {dir}\n\
                 # verify mid (reg.example/ns/mid:run-t0): image inspect, create, export, rm; then its packages\n\
                 docker tag reg.example/ns/base:run-t0 reg.example/ns/base:local-v1.0.0\n\
                 docker tag reg.example/ns/mid:run-t0 reg.example/ns/mid:local-v2.0.0\n\
                 docker image rm reg.example/ns/base:run-t0\n\
                 docker image rm reg.example/ns/mid:run-t0\n"
            )
        );
    }

    #[test]
    fn a_from_naming_a_parent_builds_on_a_copy_that_names_this_runs_parent() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let plan = plan_of(&inv, &["leaf"], &BuildOptions::default(), None);
        let leaf = &plan.builds[2];
        let (path, text) = leaf.copies[0].clone();
        assert_eq!(path, PathBuf::from("/tmp/xtask-run-t0/leaf/Dockerfile-leaf"));
        assert_eq!(
            text,
            "FROM reg.example/ns/mid:run-t0 AS m\nFROM reg.example/ns/base:run-t0\nCOPY --from=m / /\n"
        );
        assert!(leaf
            .step
            .command()
            .args
            .windows(2)
            .any(|w| w == ["--file", "/tmp/xtask-run-t0/leaf/Dockerfile-leaf"]));
        // Named parents get no build argument that nothing would consume.
        assert!(!leaf
            .step
            .command()
            .args
            .iter()
            .any(|a| a.starts_with("MID_IMAGE=") || a.starts_with("BASE_IMAGE=")));
        assert_eq!(leaf.needs, ["mid", "base"]);
        assert!(plan
            .display("docker")
            .contains("# write /tmp/xtask-run-t0/leaf/Dockerfile-leaf: a copy for leaf"));
        assert_eq!(leaf.copies.len(), 1, "no .dockerignore of its own, none copied");
    }

    /// BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile before the context's
    /// `.dockerignore`: the copy keeps it beside it, or ignored files would reach the image.
    #[test]
    fn a_dockerfile_copy_keeps_its_own_dockerignore() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        d.write("Dockerfile-leaf.dockerignore", "secret.txt\n");
        let plan = plan_of(&inv, &["leaf"], &BuildOptions::default(), None);
        let copies: Vec<(PathBuf, String)> = plan.builds[2].copies.clone();
        assert_eq!(
            copies[1],
            (
                PathBuf::from("/tmp/xtask-run-t0/leaf/Dockerfile-leaf.dockerignore"),
                "secret.txt\n".to_string()
            )
        );
    }

    #[test]
    fn publish_plan_checks_tags_pushes_and_reads_back_unique_version_latest() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let id = BuildId::parse("42.2").unwrap();
        let plan = plan_of(&inv, &["leaf"], &BuildOptions::default(), Some(&id));
        assert_eq!(
            plan.must_be_absent,
            ["reg.example/ns/base:v1.0.0_42.2", "reg.example/ns/mid:v2.0.0_42.2"]
        );
        let mid = &plan.builds[1].step.command().args;
        assert!(mid.contains(&"BASE_IMAGE=reg.example/ns/base:run-t0".to_string()), "{mid:?}");
        assert!(mid.contains(&"org.opencontainers.image.title=mid".to_string()), "{mid:?}");
        let base = &plan.publications[0];
        let refs: Vec<&str> = base.targets.iter().map(|t| t.reference.as_str()).collect();
        assert_eq!(
            refs,
            ["reg.example/ns/base:v1.0.0_42.2", "reg.example/ns/base:v1.0.0", "reg.example/ns/base:latest"]
        );
        assert_eq!(
            base.targets[1].tag.as_ref().unwrap().command().args,
            ["tag", "reg.example/ns/base:run-t0", "reg.example/ns/base:v1.0.0"]
        );
        assert!(base.targets[0].immutable && !base.targets[1].immutable);
        // leaf has push = false: built and tagged, never pushed.
        let leaf = &plan.publications[2];
        assert!(leaf.targets.iter().all(|t| t.push.is_none()));
        let shown = plan.display("docker");
        let pushes: Vec<&str> = shown.lines().filter(|l| l.starts_with("docker push")).collect();
        // Only unique tags are pushed; the registry gives their manifests to the other tags.
        assert_eq!(
            pushes,
            ["docker push reg.example/ns/base:v1.0.0_42.2", "docker push reg.example/ns/mid:v2.0.0_42.2"]
        );
        let retags: Vec<&str> = shown.lines().filter(|l| l.contains(": PUT /v2/")).collect();
        assert_eq!(retags.len(), 4, "{shown}");
        assert!(
            retags[0]
                .ends_with("PUT /v2/ns/base/manifests/v1.0.0 (the manifest of v1.0.0_42.2: the same digest)"),
            "{shown}"
        );
        assert!(!shown.contains("--all-tags"));
        let first_push = shown.lines().position(|l| l.starts_with("docker push")).unwrap();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines[first_push - 2].contains("GET /v2/ns/base/manifests/v1.0.0_42.2 (must still be absent"),
            "{shown}"
        );
        assert!(lines[first_push + 1].contains("(read back: must hold the image this run built)"), "{shown}");
        assert!(
            lines[0]
                .starts_with("# registry reg.example: GET /v2/ns/base/manifests/v1.0.0_42.2 (must be absent"),
            "{shown}"
        );
    }

    /// With --pull the plan pulls what comes from outside the inventory before the builds, and
    /// no build pulls by itself: what a build uses is what its labels record.
    #[test]
    fn with_pull_images_from_outside_are_pulled_first_and_no_build_pulls() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        d.write("Dockerfile-base", "FROM alpine:3.23\n");
        let plan = plan_of(&inv, &["mid"], &BuildOptions { pull: true, ..Default::default() }, None);
        assert!(
            plan.builds.iter().all(|b| !b.step.command().args.contains(&"--pull".to_string())),
            "{plan:?}"
        );
        let pulls: Vec<String> = plan.pulls.iter().map(|p| p.command().args.join(" ")).collect();
        assert_eq!(pulls, ["pull alpine:3.23"], "mid's parent is this run's base, never pulled");
    }

    /// A child cannot pull (its parent exists only in this run), so with --pull the other
    /// images it takes files from are pulled before the builds; its parents never are.
    #[test]
    fn with_pull_a_childs_other_images_are_pulled_first() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        d.write(
            "Dockerfile-mid",
            "ARG BASE_IMAGE\nFROM golang:1.22 AS build\nFROM ${BASE_IMAGE}\nCOPY --from=build /out /out\n",
        );
        let plan = plan_of(&inv, &["leaf"], &BuildOptions { pull: true, ..Default::default() }, None);
        let pulls: Vec<String> = plan.pulls.iter().map(|p| p.command().args.join(" ")).collect();
        assert_eq!(pulls, ["pull golang:1.22"]);
        assert!(plan.display("docker").lines().next().unwrap().starts_with("docker pull golang:1.22"));
        let plan = plan_of(&inv, &["leaf"], &BuildOptions::default(), None);
        assert!(plan.pulls.is_empty());
    }

    #[test]
    fn podman_builds_without_docker_settings() {
        let d = TestDir::new("plan");
        let inv = inventory(&d);
        let plan =
            plan_of(&inv, &["base"], &BuildOptions { builder: Builder::Podman, ..Default::default() }, None);
        let shown = plan.display("podman");
        assert!(shown.starts_with("podman build --file "), "{shown}");
        assert!(!shown.contains("DOCKER_BUILDKIT") && !shown.contains("--no-prune"), "{shown}");
    }

    #[test]
    fn pull_request_plans_probe_first_and_push_only_the_test_package() {
        let d = TestDir::new("plan");
        let mut inv = inventory(&d);
        inv.test_package = Some(crate::model::inventory::TestPackage {
            name: "test".into(),
            tag: "do_not_use".into(),
            image: "mid".into(),
        });
        let plans =
            with_inputs(&inv, &[], &BuildOptions::default(), |i| pull_request_plans(&inv, i, true)).unwrap();
        assert_eq!(plans.len(), 2);
        let built = |p: &Plan| p.builds.iter().map(|s| s.image.clone()).collect::<Vec<_>>();
        assert_eq!(built(&plans[0]), ["base", "mid"]);
        assert_eq!(built(&plans[1]), ["leaf", "other"]);
        assert!(plans[0].cleanup.is_empty() && plans[1].cleanup.len() == 4, "run names last until the end");
        let pushed: Vec<&Target> = plans
            .iter()
            .flat_map(|p| &p.publications)
            .flat_map(|p| &p.targets)
            .filter(|t| t.push.is_some())
            .collect();
        assert_eq!(pushed.len(), 1);
        assert_eq!(
            pushed[0].tag.as_ref().unwrap().command().args,
            ["tag", "reg.example/ns/mid:run-t0", "reg.example/ns/test:do_not_use"]
        );

        let plans =
            with_inputs(&inv, &[], &BuildOptions::default(), |i| pull_request_plans(&inv, i, false)).unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(built(&plans[0]), ["base", "mid", "leaf", "other"]);
        assert!(plans[0].publications.iter().flat_map(|p| &p.targets).all(|t| t.push.is_none()));
    }

    #[test]
    fn each_platform_gets_a_build_on_its_parents_build_and_its_pinned_base() {
        let d = TestDir::new("plan");
        let mut inv = inventory(&d);
        d.write("Dockerfile-base", "FROM alpine:3.23\nRUN true\n");
        let both = vec!["linux/amd64".to_string(), "linux/arm64".to_string()];
        for name in ["base", "mid", "leaf"] {
            inv.images.get_mut(name).unwrap().platforms = both.clone();
        }
        let id = BuildId::parse("7").unwrap();
        let plan = plan_of(&inv, &["leaf"], &BuildOptions::default(), Some(&id));
        let keys: Vec<&str> = plan.builds.iter().map(|b| b.image.as_str()).collect();
        assert_eq!(
            keys,
            [
                "base@linux/amd64",
                "base@linux/arm64",
                "mid@linux/amd64",
                "mid@linux/arm64",
                "leaf@linux/amd64",
                "leaf@linux/arm64"
            ]
        );
        let arm = |key: &str| plan.builds.iter().find(|b| b.image == key).unwrap();
        // The base's FROM is pinned per platform; the legacy builder gets TARGET* itself.
        let base = arm("base@linux/arm64");
        assert_eq!(base.pins.len(), 1);
        assert_eq!(base.pins[0].local, "xtask-pin-t0/alpine-3-23-9aeca355:linux-arm64");
        assert!(
            base.copies[0].1.starts_with("FROM xtask-pin-t0/alpine-3-23-9aeca355:linux-arm64\n"),
            "{:?}",
            base.copies
        );
        let args = base.step.command().args.join(" ");
        assert!(
            args.contains("--platform linux/arm64") && args.contains("--build-arg TARGETARCH=arm64"),
            "{args}"
        );
        assert_eq!(plan.pins.len(), 2, "one pin per platform of the one base");
        // The child builds on the parent's build for the same platform, by ARG and by FROM.
        let mid = arm("mid@linux/arm64");
        assert_eq!(mid.needs, ["base@linux/arm64"]);
        assert!(mid
            .step
            .command()
            .args
            .contains(&"BASE_IMAGE=reg.example/ns/base:run-t0-linux-arm64".to_string()));
        let leaf = arm("leaf@linux/arm64");
        assert_eq!(leaf.needs, ["mid@linux/arm64", "base@linux/arm64"]);
        assert!(
            leaf.copies[0].1.contains("FROM reg.example/ns/mid:run-t0-linux-arm64 AS m\n"),
            "{:?}",
            leaf.copies
        );
        // Each platform goes out under the unique tag and its platform, then one index.
        let index = plan.publications.iter().find(|p| p.image == "base").unwrap();
        assert_eq!(index.after, ["base@linux/amd64", "base@linux/arm64"]);
        let members = index.targets[0].index.as_ref().unwrap();
        assert_eq!(members[1].1, "reg.example/ns/base:v1.0.0_7-linux-arm64");
        assert!(index.targets.iter().all(|t| t.tag.is_none()), "the engine cannot hold an index");
        assert!(plan.must_be_absent.contains(&"reg.example/ns/base:v1.0.0_7-linux-arm64".to_string()));
        let compared: Vec<&str> = plan.comparisons.iter().map(|c| c.image.as_str()).collect();
        assert_eq!(compared, ["base@linux/amd64", "base@linux/arm64", "mid@linux/amd64", "mid@linux/arm64"]);
        let shown = plan.display("docker");
        assert!(
            shown.contains("an OCI image index of linux/amd64 (v1.0.0_7-linux-amd64), linux/arm64"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "# base alpine:3.23 for linux/arm64: registry registry-1.docker.io: GET /v2/library/alpine/manifests/3.23"
            ),
            "{shown}"
        );

        // A child cannot be built for a platform its parent is not built for.
        inv.images.get_mut("base").unwrap().platforms = vec!["linux/amd64".into()];
        let err = with_inputs(&inv, &["mid"], &BuildOptions::default(), build_plan).unwrap_err().to_string();
        assert!(
            err.contains("mid is built for linux/arm64, which its parent base is not built for"),
            "{err}"
        );
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
    fn run_names_differ_between_runs() {
        let new = || RunNames::new(crate::sys::random::token(48), &std::env::temp_dir());
        let (a, b) = (new(), new());
        assert_ne!(a.token, b.token);
        assert_eq!(a.reference("r/ns", "alpine"), format!("r/ns/alpine:run-{}", a.token));
        assert!(crate::model::oci::tag_problem(&format!("run-{}", a.token)).is_none());
    }
}
