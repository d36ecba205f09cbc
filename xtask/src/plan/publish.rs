//! What a plan publishes: local tags for a build, the three tags of each image for a publish
//! (an image with several platforms: each platform's build, then one index), and the two
//! plans of a pull request.

use anyhow::bail;

use super::platforms;
use super::{
    building, local_target, select, Build, Comparison, Image, Inputs, Inventory, Plan, Publication, Step,
    Target, Verification,
};
use crate::model::oci::{self, split_reference};
use crate::model::platform::Platform;
use crate::model::tags::{self, BuildId};

/// Builds `images` (already in dependency order) and gives each its local-only tag
/// (`local-v<version>`, with the platform for one of several); pushes nothing.
pub fn build_plan(inputs: &Inputs<'_>) -> anyhow::Result<Plan> {
    let mut plan = building(inputs, &|_| Vec::new())?;
    plan.publications = plan
        .builds
        .iter()
        .map(|b| {
            let image = &inputs.inventory.images[&b.of];
            let local =
                platforms::suffixed(&tags::local_reference(inputs.registry, image), b.platform.as_ref());
            Publication {
                image: b.image.clone(),
                targets: vec![local_target(&b.reference, &local, false, false)],
                source: b.reference.clone(),
                after: Vec::new(),
            }
        })
        .collect();
    Ok(plan)
}

/// Builds every image, then tags and pushes the three published tags of each image whose
/// `push` is true (unique, version, latest), per image in that order. An image with several
/// platforms pushes each platform's build under the unique tag and its platform
/// (`v1.0.0_12.3-linux-arm64`), then one index of them under the three tags.
pub fn publish_plan(
    inputs: &Inputs<'_>,
    build_id: &BuildId,
    labels: &dyn Fn(&Image) -> Vec<(String, String)>,
    force: bool,
) -> anyhow::Result<Plan> {
    let mut plan = Plan { force, ..building(inputs, labels)? };
    for image in inputs.images {
        let references = tags::published_references(inputs.registry, image, build_id)?;
        if image.push {
            plan.must_be_absent.push(references[0].clone());
        }
        let variants = platforms::variants(image);
        for platform in &variants {
            let key = platforms::key(&image.name, platform.as_ref());
            let source = inputs.reference(&image.name, platform.as_ref());
            if image.push {
                plan.comparisons.push(Comparison {
                    image: key.clone(),
                    of: image.name.clone(),
                    platform: platform.clone(),
                    platforms: variants.iter().flatten().cloned().collect(),
                    published: references[1].clone(),
                });
            }
            let targets = match platform {
                None => published_targets(&source, &references, image.push),
                Some(_) if image.push => {
                    let unique = platforms::suffixed(&references[0], platform.as_ref());
                    if let Some(problem) =
                        oci::tag_problem(split_reference(&unique).1.as_deref().unwrap_or_default())
                    {
                        bail!("--build-id: {unique}: {problem}");
                    }
                    plan.must_be_absent.push(unique.clone());
                    vec![local_target(&source, &unique, true, true)]
                }
                // Never pushed: each platform's build gets the tags locally, with its platform.
                Some(p) => references
                    .iter()
                    .map(|r| local_target(&source, &platforms::suffixed(r, Some(p)), false, false))
                    .collect(),
            };
            plan.publications.push(Publication { image: key, source, targets, after: Vec::new() });
        }
        if image.push && !image.platforms.is_empty() {
            plan.publications.push(index_publication(inputs, image, &references, &variants));
        }
    }
    Ok(plan)
}

/// The three tags of a single-platform image: the unique tag pushed, the version tag and
/// `latest` given its manifest in the registry.
fn published_targets(source: &str, references: &[String; 3], push: bool) -> Vec<Target> {
    references
        .iter()
        .enumerate()
        .map(|(i, r)| Target {
            retag_of: (push && i > 0).then(|| references[0].clone()),
            ..local_target(source, r, push, i == 0)
        })
        .collect()
}

/// The index of an image's platforms, pushed under its unique tag once every platform's build
/// is out (and its parents' indexes), then given to the version tag and `latest`.
fn index_publication(
    inputs: &Inputs<'_>,
    image: &Image,
    references: &[String; 3],
    variants: &[Option<Platform>],
) -> Publication {
    let members: Vec<(Platform, String)> = variants
        .iter()
        .flatten()
        .map(|p| (p.clone(), platforms::suffixed(&references[0], Some(p))))
        .collect();
    let targets = references
        .iter()
        .enumerate()
        .map(|(i, r)| Target {
            reference: r.clone(),
            tag: None,
            push: Some(Step::push(r)),
            immutable: i == 0,
            retag_of: (i > 0).then(|| references[0].clone()),
            index: (i == 0).then(|| members.clone()),
        })
        .collect();
    let mut after: Vec<String> = variants.iter().map(|p| platforms::key(&image.name, p.as_ref())).collect();
    after.extend(image.depends_on.iter().filter(|p| inputs.images.iter().any(|i| &&i.name == p)).cloned());
    Publication { image: image.name.clone(), source: String::new(), targets, after }
}

/// The plans ci-pr runs, in order. With `probe` (a write token is present) the first builds
/// the test package's image and its parents, tags it as the test package and pushes it, so a
/// missing permission shows before the long builds; the second builds every other image.
/// Without it, one plan builds `images`. Nothing but the test package is ever pushed. The
/// run-private names go at the end of the last plan.
pub fn pull_request_plans(
    inventory: &Inventory,
    inputs: &Inputs<'_>,
    probe: bool,
) -> anyhow::Result<Vec<Plan>> {
    let Some(package) = inventory.test_package.as_ref().filter(|_| probe) else {
        return Ok(vec![build_plan(inputs)?]);
    };
    let first = select(inventory, std::slice::from_ref(&package.image))?;
    let ordered: Vec<&Image> = first
        .iter()
        .copied()
        .chain(inputs.images.iter().copied().filter(|i| !first.iter().any(|f| f.name == i.name)))
        .collect();
    let mut whole = build_plan(&Inputs { images: &ordered, ..*inputs })?;
    let in_first = |of: &str| first.iter().any(|f| f.name == of);
    let (probe_builds, rest_builds): (Vec<Build>, Vec<Build>) =
        whole.builds.into_iter().partition(|b| in_first(&b.of));
    let probe_keys: Vec<String> = probe_builds.iter().map(|b| b.image.clone()).collect();
    let (probe_publications, rest_publications): (Vec<Publication>, Vec<Publication>) =
        whole.publications.into_iter().partition(|p| probe_keys.contains(&p.image));
    whole.builds = probe_builds;
    whole.publications = probe_publications;
    let (probe_checks, rest_checks): (Vec<Verification>, Vec<Verification>) =
        whole.verifications.into_iter().partition(|v| probe_keys.contains(&v.image));
    let target = format!("{}:{}", tags::repository(inputs.registry, &package.name), package.tag);
    let mut probe_publications = whole.publications;
    // The test package is the image's build (its first platform's, for several).
    if let Some(p) = probe_publications
        .iter_mut()
        .find(|p| p.image == package.image || p.image.starts_with(&format!("{}@", package.image)))
    {
        let source = p.source.clone();
        p.targets.push(local_target(&source, &target, true, false));
    }
    // Both plans pin what their builds start from (the second names the same pins again).
    let probe = Plan {
        pins: whole.pins.clone(),
        builds: whole.builds,
        verifications: probe_checks,
        publications: probe_publications,
        ..Plan::empty(inputs.run)
    };
    let rest = Plan {
        pins: whole.pins,
        builds: rest_builds,
        verifications: rest_checks,
        publications: rest_publications,
        cleanup: whole.cleanup,
        ..Plan::empty(inputs.run)
    };
    Ok(vec![probe, rest])
}
