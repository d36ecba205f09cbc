//! The SPDX SBOMs of what a run built: where they go, that the folder takes them before
//! anything builds, and writing them once the run knows each image's digest.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::common::{workspace_root, Ctx};
use crate::model::inventory::Inventory;
use crate::model::platform::Platform;
use crate::model::sbom;
use crate::plan::{Build, Plan};
use crate::run::Report;
use crate::sys::gha;

/// The SBOM of every image the plans built, as `<dir>/<image>.spdx.json`, describing the image
/// by the digest the registry holds when it is published (or already was, unchanged), else by
/// its image id. In GitHub Actions the folder is the step output `sbom-dir`.
pub(super) fn write_sboms(
    ctx: &Ctx,
    inventory: &Inventory,
    plans: &[Plan],
    reports: &mut [Report],
    dir: &Path,
) -> anyhow::Result<()> {
    let created = ctx.created()?;
    let mut written = 0;
    for (plan, report) in plans.iter().zip(reports.iter_mut()) {
        for build in &plan.builds {
            let image = &build.image;
            let (Some(found), Some(entry)) = (report.packages.get(image), inventory.images.get(&build.of))
            else {
                continue;
            };
            let digest = report
                .digest(image)
                .map(String::from)
                .or_else(|| {
                    report.verdicts.get(image).filter(|v| !v.publish).and_then(|v| v.published.clone())
                })
                .or_else(|| report.ids.get(image).cloned())
                .unwrap_or_default();
            let repository = crate::model::tags::repository(&inventory.registry, &build.of);
            let version = entry.version.to_string();
            // Where the image is: by digest in the registry when it is published there, else
            // under its first local tag.
            let in_registry = report.digest(image).is_some() || report.unchanged(image);
            let local = plan.publications.iter().find(|p| &p.image == image).and_then(|p| p.targets.first());
            let reference = match (in_registry, local) {
                (false, Some(target)) => target.reference.clone(),
                _ => format!("{repository}@{digest}"),
            };
            let subject = sbom::Subject {
                image,
                version: &version,
                repository: &repository,
                digest: &digest,
                reference: &reference,
                created: &created,
                run: &plan.run.token,
            };
            let document = sbom::document(&subject, found);
            let file = sbom_file(dir, build);
            // An image named `team/base` has its SBOM in a folder `team` (made by `writable`).
            std::fs::write(&file, serde_json::to_string_pretty(&document)? + "\n")
                .with_context(|| format!("--sbom-dir: cannot write {}", file.display()))?;
            report.sboms.push(image.clone());
            written += 1;
        }
    }
    if written > 0 {
        ctx.log.info(&format!("SBOMs (SPDX 2.3) of {written} image(s) written to {}", dir.display()));
        gha::set_output(&ctx.env, "sbom-dir", &dir.to_string_lossy())?;
    }
    Ok(())
}

/// Creates `dir` and the folders of `files` in it, and checks that a file can be written in
/// each.
pub(super) fn writable(dir: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut folders: Vec<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    folders.push(dir);
    folders.sort();
    folders.dedup();
    for folder in folders {
        let fail = |e: std::io::Error| {
            anyhow::anyhow!("--sbom-dir: cannot write SBOMs to {}: {e}", folder.display())
        };
        std::fs::create_dir_all(folder).map_err(fail)?;
        let probe = folder.join(".xtask-write-check");
        std::fs::write(&probe, b"").map_err(fail)?;
        let _ = std::fs::remove_file(probe);
    }
    Ok(())
}

pub(super) fn sbom_file(dir: &Path, build: &Build) -> PathBuf {
    dir.join(sbom_name(&build.of, build.platform.as_ref()))
}

/// The SBOM's path in the SBOM folder (a folder of its own for an image named `team/base`):
/// `base.spdx.json`, or one per platform, `base.linux-arm64.spdx.json`.
pub(super) fn sbom_name(image: &str, platform: Option<&Platform>) -> String {
    match platform {
        Some(p) => format!("{image}.{}.spdx.json", p.tag_suffix()),
        None => format!("{image}.spdx.json"),
    }
}

/// target/sbom at the workspace root.
pub(super) fn default_sbom_dir() -> PathBuf {
    workspace_root().join("target").join("sbom")
}
