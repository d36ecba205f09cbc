//! Reads a built image's files once (`docker create` and `docker export`; it never runs) for
//! both of what the run needs of them: the hardening rules it breaks and the packages it holds.

use crate::model::hardening::Spec;
use crate::model::packages::{self, Found};
use crate::run::Checked;
use crate::sys::docker::Docker;
use crate::sys::rpm;

/// The rules of `spec` that `reference` breaks, and its packages.
pub fn inspect(docker: &Docker, reference: &str, spec: Option<&Spec>) -> anyhow::Result<Checked> {
    let rules_read = spec.map(Spec::files_to_read).unwrap_or_default();
    let keep = |path: &str| packages::wanted(path) || rules_read.iter().any(|k| k == path);
    let (user, files) = docker.image_files(reference, &keep)?;
    let violations = spec.map(|s| s.check(&user, &files)).unwrap_or_default();
    let (packages, notes) = read_packages(docker, reference, &files.contents)?;
    Ok(Checked { violations, files: files.entries.len(), packages, notes })
}

/// The packages among `files` exported from `reference`, and how an RPM database was read.
pub fn read_packages(
    docker: &Docker,
    reference: &str,
    files: &[(String, Vec<u8>)],
) -> anyhow::Result<(Found, Vec<String>)> {
    let mut found = packages::read(files)?;
    let mut notes = Vec::new();
    if let Some((rpms, how)) = rpm::read(files, docker, reference)? {
        found.packages.extend(rpms);
        found.packages.sort();
        notes.push(how);
    }
    Ok((found, notes))
}
