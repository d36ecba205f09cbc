//! Reads a built image's files once (`docker create` and `docker export`; it never runs) for
//! both of what the run needs of them: the hardening rules it breaks and the packages it holds.

use crate::model::hardening::Spec;
use crate::model::packages::{self, Found};
use crate::run::Checked;
use crate::sys::docker::Docker;
use crate::sys::export::Listing;
use crate::sys::rpm;

/// The rules of `spec` that `reference` breaks, and its packages.
pub fn inspect(docker: &Docker, reference: &str, spec: Option<&Spec>) -> anyhow::Result<Checked> {
    let rules_read = spec.map(Spec::files_to_read).unwrap_or_default();
    let (user, files) = read_files(docker, reference, &rules_read)?;
    let violations = spec.map(|s| s.check(&user, &files)).unwrap_or_default();
    let (packages, notes) = packages_in(docker, reference, &files)?;
    Ok(Checked { violations, files: files.entries.len(), packages, notes })
}

/// The configured user of `reference` and its files, keeping the contents of the package
/// databases (and of what may be hard-linked to them) and of `also`.
pub fn read_files(docker: &Docker, reference: &str, also: &[String]) -> anyhow::Result<(String, Listing)> {
    let keep = |path: &str| {
        packages::wanted(path) || packages::may_be_linked_to(path) || also.iter().any(|k| k == path)
    };
    docker.image_files(reference, &keep)
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
    let mut notes = Vec::new();
    if let Some((rpms, how)) = rpm::read(&files.contents, docker, reference)? {
        found.packages.extend(rpms);
        found.packages.sort();
        notes.push(how);
    }
    Ok((found, notes))
}
