//! What changed in the repository since a reference, from git. Paths are relative to the
//! repository root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::sys::process::{self, Io};

const INSTALL_GIT: &str = "Install git, or leave out --changed-since to build every image";

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut full = vec!["-C".to_string(), dir.to_string_lossy().into_owned()];
    full.extend(args.iter().map(|a| a.to_string()));
    let out = process::run("git", &full, Io::Capture(None), Duration::from_secs(60), INSTALL_GIT)?;
    if !out.success {
        bail!("git {}: {}", args.join(" "), out.error_line());
    }
    Ok(out.stdout)
}

/// The root of the repository holding `dir`.
pub fn repository_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = git(dir, &["rev-parse", "--show-toplevel"]).with_context(|| {
        format!("--changed-since needs a git repository, and {} is not in one", dir.display())
    })?;
    Ok(PathBuf::from(out.trim()))
}

/// The commit checked out in the repository holding `dir`, if it is one.
pub fn head(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Files changed since the merge base of `reference` and HEAD: committed, uncommitted and new
/// (untracked, not ignored) files, so that a laptop's work in progress counts too.
pub fn changed_since(root: &Path, reference: &str) -> anyhow::Result<Vec<PathBuf>> {
    if reference.starts_with('-') {
        bail!("--changed-since: `{reference}` is not a git reference (it would be read as an option)");
    }
    let base = git(root, &["merge-base", reference, "HEAD"]).with_context(|| {
        format!(
            "--changed-since {reference}: git cannot relate it to HEAD. Fetch it (in GitHub Actions, \
             check out with fetch-depth: 0), or name another reference"
        )
    })?;
    // NUL-separated, so that names git would quote (non-ASCII, spaces) come through as they
    // are; without rename detection, so that a moved file counts at its old path as well as its
    // new one (an image that copied the old path is affected).
    let names = |out: String| -> Vec<PathBuf> {
        out.split('\0').filter(|n| !n.is_empty()).map(PathBuf::from).collect()
    };
    let mut files = names(git(root, &["diff", "--name-only", "--no-renames", "-z", base.trim()])?);
    files.extend(names(git(root, &["ls-files", "--others", "--exclude-standard", "-z"])?));
    files.sort();
    files.dedup();
    Ok(files)
}
