//! The builds of a plan: one per image, or per platform of an image built for several, each
//! on its parents' builds for its platform, from its Dockerfile or a copy that names them (and
//! its outside bases pinned to the platform).

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::parents::{self, BaseSource, OutsideFrom, Replacement, Use};
use super::platforms::{self, Pin};
use super::{Build, BuildStep, Builder, Inputs, RunNames, Verification};
use crate::model::inventory::Image;
use crate::model::platform::Platform;
use crate::model::sources::own_ignore_file;
use crate::model::tags;

/// The build of one image for `platform`, from `dockerfile`.
fn build_step(
    image: &Image,
    platform: Option<&Platform>,
    inputs: &Inputs<'_>,
    labels: &[(String, String)],
    dockerfile: &Path,
    pins: &[Pin],
) -> BuildStep {
    let parents = inputs.lineage.get(&image.name).map(|l| l.uses.as_slice()).unwrap_or_default();
    let parent_args = parents.iter().filter_map(|u| match &u.how {
        Use::Arg(arg) => Some((arg.clone(), inputs.reference(&u.parent, platform))),
        Use::Named { .. } => None,
    });
    // BuildKit and buildah set TARGET* themselves; the legacy builder needs them passed.
    let target_args = match (platform, &inputs.options.builder) {
        (Some(p), Builder::Legacy) => platforms::target_args(p, inputs.options.host.as_ref()),
        _ => Vec::new(),
    };
    // A base that `FROM ${NAME}` takes from an ARG: the ARG names its pin.
    let pinned: Vec<(String, String)> =
        pins.iter().filter_map(|p| p.arg.clone().map(|arg| (arg, p.local.clone()))).collect();
    let own: Vec<(String, String)> =
        image.build_args.clone().into_iter().filter(|(k, _)| !pinned.iter().any(|(a, _)| a == k)).collect();
    BuildStep {
        builder: inputs.options.builder.clone(),
        no_cache: inputs.options.no_cache,
        platforms: platform.map(|p| vec![p.to_string()]).unwrap_or_default(),
        dockerfile: dockerfile.to_path_buf(),
        tag: inputs.reference(&image.name, platform),
        iidfile: iidfile(inputs.run, &platforms::key(&image.name, platform)),
        build_args: own.into_iter().chain(parent_args).chain(pinned).chain(target_args).collect(),
        labels: labels.to_vec(),
        context: image.context.clone(),
    }
}

fn iidfile(run: &RunNames, key: &str) -> PathBuf {
    run.dir.join(format!("{}.iid", platforms::file_name(key)))
}

/// The builds of `images` (in dependency order, each image's platforms in its order), with
/// their verifications.
pub(super) fn builds(
    inputs: &Inputs<'_>,
    labels: &dyn Fn(&Image) -> Vec<(String, String)>,
) -> anyhow::Result<(Vec<Build>, Vec<Verification>)> {
    let mut builds = Vec::new();
    let mut verifications = Vec::new();
    for image in inputs.images {
        for platform in platforms::variants(image) {
            let build = build_of(inputs, image, platform.as_ref(), labels)?;
            verifications.push(Verification {
                image: build.image.clone(),
                reference: build.reference.clone(),
                platform: platform.clone(),
                spec: image.verify.clone(),
                kept_as: platforms::suffixed(
                    &tags::rejected_reference(inputs.registry, &image.name),
                    platform.as_ref(),
                ),
            });
            builds.push(build);
        }
    }
    Ok((builds, verifications))
}

/// The build of `image` for `platform`: on its parents' builds for that platform, and (for one
/// platform of several) on its outside base pinned to that platform.
fn build_of(
    inputs: &Inputs<'_>,
    image: &Image,
    platform: Option<&Platform>,
    labels: &dyn Fn(&Image) -> Vec<(String, String)>,
) -> anyhow::Result<Build> {
    let key = platforms::key(&image.name, platform);
    let links = inputs.lineage.get(&image.name);
    let needs = parents_for(inputs, image, platform)?;
    let (copies, pins) = dockerfile_copy(inputs, image, platform)?;
    let dockerfile = copies.first().map_or(image.dockerfile.as_path(), |(p, _)| p.as_path());
    let step = build_step(image, platform, inputs, &labels(image), dockerfile, &pins);
    let base = links.and_then(|l| l.base.clone());
    let version_tag = |p: &str| {
        let parent = &inputs.inventory.images[p];
        format!("{}:{}", tags::repository(inputs.registry, p), tags::version_tag(parent))
    };
    let parent_sources = image
        .depends_on
        .iter()
        .filter(|p| inputs.images.iter().any(|i| &&i.name == p))
        .filter(|p| !matches!(&base, Some(BaseSource::Parent { image, .. }) if image == *p))
        .map(|p| (platforms::key(p, platform), version_tag(p)))
        .collect();
    Ok(Build {
        image: key.clone(),
        of: image.name.clone(),
        platform: platform.cloned(),
        step,
        reference: inputs.reference(&image.name, platform),
        iidfile: iidfile(inputs.run, &key),
        copies,
        needs,
        base,
        sources: links.map(|l| l.sources.clone()).unwrap_or_default(),
        parent_sources,
        pins,
    })
}

/// Files written before a build: (path, text).
type Copies = Vec<(PathBuf, String)>;

/// The builds `image`'s build for `platform` builds on: its parents' for the same platform.
fn parents_for(
    inputs: &Inputs<'_>,
    image: &Image,
    platform: Option<&Platform>,
) -> anyhow::Result<Vec<String>> {
    let mut needs = Vec::new();
    for parent in image.depends_on.iter().filter_map(|p| inputs.images.iter().find(|i| &i.name == p)) {
        let offered = platforms::variants(parent);
        if !offered.iter().any(|p| p.as_ref() == platform) {
            let what =
                |p: Option<&Platform>| p.map_or("the engine's own platform".to_string(), |p| p.to_string());
            bail!(
                "images.{}.platforms: {} is built for {}, which its parent {} is not built for (its platforms: \
                 {}): give both the same platforms",
                image.name,
                image.name,
                what(platform),
                parent.name,
                if parent.platforms.is_empty() { "none, the engine's own".to_string() } else { parent.platforms.join(", ") }
            );
        }
        needs.push(platforms::key(&parent.name, platform));
    }
    Ok(needs)
}

/// The Dockerfile copy a build needs, if any: its named parents replaced by this run's builds
/// (for its platform), and for one platform of several its outside base replaced by the pin
/// (with the Dockerfile's own `.dockerignore`, which BuildKit reads beside it).
fn dockerfile_copy(
    inputs: &Inputs<'_>,
    image: &Image,
    platform: Option<&Platform>,
) -> anyhow::Result<(Copies, Vec<Pin>)> {
    let links = inputs.lineage.get(&image.name);
    let mut replacements: Vec<Replacement> = Vec::new();
    if let Some(links) = links {
        replacements.extend(links.uses.iter().filter_map(|u| match &u.how {
            Use::Named { first_line, last_line, written } => Some(Replacement {
                first_line: *first_line,
                last_line: *last_line,
                written: written.clone(),
                with: inputs.reference(&u.parent, platform),
            }),
            Use::Arg(_) => None,
        }));
    }
    let files = inputs.inventory.sources.image(&image.name).map_err(|e| anyhow::anyhow!(e))?;
    let mut pins = Vec::new();
    if let Some(platform) = platform {
        let outside = parents::outside_froms(inputs.inventory, image, &files.dockerfile)
            .map_err(|e| anyhow::anyhow!(e))?;
        for from in outside {
            let pin = match from {
                OutsideFrom::Line(mut line) => {
                    let pin = Pin::new(inputs.run, &line.written, platform);
                    line.with = pin.local.clone();
                    replacements.push(line);
                    pin
                }
                // `FROM ${BASE}`: the ARG is given the pinned name (build_step).
                OutsideFrom::Arg { name, image } => {
                    Pin { arg: Some(name), ..Pin::new(inputs.run, &image, platform) }
                }
            };
            if !pins.contains(&pin) {
                pins.push(pin);
            }
        }
    }
    if replacements.is_empty() {
        return Ok((Vec::new(), pins));
    }
    let name = image.dockerfile.file_name().map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
    // A folder per build: children's Dockerfiles often share a file name.
    let folder = platforms::file_name(&platforms::key(&image.name, platform));
    let copy = inputs.run.dir.join(folder).join(name);
    let mut copies = vec![(copy.clone(), parents::rewrite_lines(&files.text, &replacements))];
    if let Some(ignore) = &files.own_ignore {
        copies.push((own_ignore_file(&copy), ignore.clone()));
    }
    Ok((copies, pins))
}
