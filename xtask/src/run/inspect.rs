//! Reads a built image's files once (`docker create` and `docker export`; it never runs) for
//! all of what the run needs of them: the hardening rules it breaks, the packages it holds,
//! and what it is, to compare with the published image.

use crate::model::filesystem::{Config, Content, Node, Tree};
use crate::model::hardening::Spec;
use crate::model::listing::{Kind, Listing};
use crate::model::packages::{self, Found};
use crate::model::platform::Platform;
use crate::run::Checked;
use crate::sys::docker::Docker;
use crate::sys::rpm;
use crate::sys::timing;

/// The rules of `spec` that `reference` breaks, its packages, and what it holds.
pub fn inspect(
    docker: &Docker,
    image: &str,
    reference: &str,
    spec: Option<&Spec>,
    platform: Option<&Platform>,
) -> anyhow::Result<Checked> {
    let rules_read = spec.map(Spec::files_to_read).unwrap_or_default();
    let (config, files) = timing::span("check", image, || read_files(docker, reference, &rules_read))
        .map_err(|e| e.context("its files could not be read"))?;
    if let Some(platform) = platform {
        is_platform(docker, reference, &files, platform)?;
    }
    let violations = spec.map(|s| s.check(&config.user, &files)).unwrap_or_default();
    let (packages, notes) = timing::span("packages", image, || packages_in(docker, reference, &files))
        .map_err(|e| e.context("its packages could not be listed"))?;
    let content = Content { files: tree(&files), config };
    Ok(Checked { violations, files: files.entries.len(), packages, notes, content })
}

/// Fails unless `reference` is `platform`: its configuration says so, and its executables are
/// of that machine (an image of another platform's layers under this one's name is not).
fn is_platform(docker: &Docker, reference: &str, files: &Listing, platform: &Platform) -> anyhow::Result<()> {
    let (os, arch, variant) = docker.platform_of(reference)?;
    if !platform.matches(&os, &arch, &variant) {
        let is = [os, arch, variant].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/");
        anyhow::bail!("it was to be built for {platform}, but its configuration says {is}");
    }
    let Some((_, expected)) = platform.machine() else { return Ok(()) };
    let other: Vec<&str> = files
        .entries
        .iter()
        .filter(|e| e.mode & 0o111 != 0 && e.machine.is_some_and(|m| m != expected))
        .map(|e| e.path.as_str())
        .collect();
    if !other.is_empty() {
        anyhow::bail!(
            "it was to be built for {platform}, but {} of its executables are for another machine ({}{})",
            other.len(),
            other.iter().take(3).copied().collect::<Vec<_>>().join(", "),
            if other.len() > 3 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// The configuration of `reference` and its files, keeping the contents of the package
/// databases (and of what may be hard-linked to them) and of `also`.
pub fn read_files(docker: &Docker, reference: &str, also: &[String]) -> anyhow::Result<(Config, Listing)> {
    let keep = |path: &str| {
        packages::wanted(path) || packages::may_be_linked_to(path) || also.iter().any(|k| k == path)
    };
    let (config, mut files) = docker.image_files(reference, &keep)?;
    if !files.unkept_links.is_empty() {
        // A package manager's store holds the data under names of its own (pnpm's hashes):
        // read the image once more, keeping those files too.
        let stored: Vec<String> = files.unkept_links.iter().map(|(_, target)| target.clone()).collect();
        let keep_stored = |path: &str| keep(path) || stored.iter().any(|s| s == path);
        files = docker.image_files(reference, &keep_stored)?.1;
    }
    files.add_linked_names();
    Ok((config, files))
}

/// The entries of `listing` as compared: a hard link is the file it links to.
pub fn tree(listing: &Listing) -> Tree {
    listing
        .entries
        .iter()
        .map(|e| {
            let kind = match e.kind {
                Kind::File | Kind::Hardlink => 'f',
                Kind::Dir => 'd',
                Kind::Symlink => 'l',
                Kind::Other => 'o',
            };
            let link = if e.kind == Kind::Symlink { e.link.clone() } else { String::new() };
            let size = if kind == 'f' { e.size } else { 0 };
            let node = Node {
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                size,
                digest: e.digest.clone(),
                link,
                xattrs: e.xattrs.clone(),
            };
            (e.path.clone(), node)
        })
        .collect()
}

/// The packages in the files of `reference`, and how an RPM database was read.
pub fn packages_in(
    docker: &Docker,
    reference: &str,
    files: &Listing,
) -> anyhow::Result<(Found, Vec<String>)> {
    if let Some((path, size)) = files.too_large.iter().find(|(p, _)| packages::wanted(p)) {
        anyhow::bail!(
            "{path} in {reference} is {size} bytes, more than this tool reads of one file: its packages cannot be listed"
        );
    }
    let mut found = packages::read(&files.contents)?;
    let mut notes: Vec<String> =
        packages::missing_database(&found.distro, &files.contents).into_iter().collect();
    if let Some((rpms, how)) = rpm::read(&files.contents, docker, reference)? {
        found.packages.extend(rpms);
        found.packages.sort();
        notes.push(how);
    }
    Ok((found, notes))
}
