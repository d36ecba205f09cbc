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

/// The merge base of `reference` and HEAD: where `--changed-since` compares from.
pub fn merge_base(root: &Path, reference: &str) -> anyhow::Result<String> {
    if reference.starts_with('-') {
        bail!("--changed-since: `{reference}` is not a git reference (it would be read as an option)");
    }
    if reference.trim().is_empty() {
        bail!("--changed-since is empty: name a git reference, such as origin/main or HEAD~1");
    }
    let base = git(root, &["merge-base", reference, "HEAD"]).with_context(|| {
        format!(
            "--changed-since {reference}: git cannot relate it to HEAD. Fetch it (in GitHub Actions, \
             check out with fetch-depth: 0), or name another reference"
        )
    })?;
    Ok(base.trim().to_string())
}

/// The text of `path` (relative to the root) at commit `revision`; None when it did not exist.
pub fn file_at(root: &Path, revision: &str, path: &Path) -> Option<String> {
    let spec = format!("{revision}:{}", path.to_string_lossy());
    git(root, &["show", &spec]).ok()
}

/// Files that differ between the commit `revision` and the working tree: committed since,
/// uncommitted and new files. Unlike `changed_since`, no merge base: a branch that was
/// published and then left counts as a change back. Files git ignores under `contexts` (build
/// contexts) count as changed too: git cannot say what they held at `revision`.
pub fn changed_from(root: &Path, revision: &str, contexts: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if revision.starts_with('-') || revision.is_empty() {
        bail!("`{revision}` is not a git revision");
    }
    let commit = format!("{revision}^{{commit}}");
    git(root, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|_| {
        anyhow::anyhow!(
            "revision {revision} is not in this clone (in GitHub Actions, check out with fetch-depth: 0)"
        )
    })?;
    let mut files = names(git(root, &["diff", "--name-only", "--no-renames", "-z", revision, "--"])?);
    files.extend(names(git(root, &["ls-files", "--others", "--exclude-standard", "-z"])?));
    if !contexts.is_empty() {
        let mut ignored = vec!["ls-files", "--others", "--ignored", "--exclude-standard", "-z", "--"];
        let paths: Vec<String> = contexts.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        ignored.extend(paths.iter().map(|p| if p.is_empty() { "." } else { p.as_str() }));
        files.extend(names(git(root, &ignored)?));
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// NUL-separated names, so that names git would quote (non-ASCII, spaces) come through as
/// they are.
fn names(out: String) -> Vec<PathBuf> {
    out.split('\0').filter(|n| !n.is_empty()).map(PathBuf::from).collect()
}

/// The merge base of `reference` and HEAD, and the files changed since it: committed,
/// uncommitted and new (untracked, not ignored) files, so that a laptop's work in progress
/// counts too.
pub fn changed_since(root: &Path, reference: &str) -> anyhow::Result<(String, Vec<PathBuf>)> {
    let base = merge_base(root, reference)?;
    let files = changed_from(root, &base, &[])?;
    Ok((base, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn run(dir: &Path, args: &[&str]) -> String {
        let mut full = vec!["-c", "user.name=t", "-c", "user.email=t@example.com"];
        full.extend(args);
        let out = std::process::Command::new("git").arg("-C").arg(dir).args(&full).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A published branch that was left again differs from the revision it was published from,
    /// although nothing changed since the merge base.
    #[test]
    fn changes_from_a_revision_count_a_branch_left_behind_and_the_working_tree() {
        let d = TestDir::new("git-from");
        d.write("Dockerfile", "FROM scratch\n");
        run(d.path(), &["init", "-q", "-b", "main"]);
        run(d.path(), &["add", "."]);
        run(d.path(), &["commit", "-q", "-m", "one"]);
        run(d.path(), &["checkout", "-q", "-b", "feature"]);
        d.write("Dockerfile", "FROM scratch\nLABEL feature=1\n");
        run(d.path(), &["commit", "-q", "-am", "feature"]);
        let feature = run(d.path(), &["rev-parse", "HEAD"]);
        run(d.path(), &["checkout", "-q", "main"]);
        assert_eq!(changed_from(d.path(), &feature, &[]).unwrap(), [PathBuf::from("Dockerfile")]);
        assert!(changed_since(d.path(), &feature).unwrap().1.is_empty(), "the merge base sees nothing");
        let head = run(d.path(), &["rev-parse", "HEAD"]);
        assert!(changed_from(d.path(), &head, &[]).unwrap().is_empty());
        d.write("new.txt", "x");
        assert_eq!(changed_from(d.path(), &head, &[]).unwrap(), [PathBuf::from("new.txt")]);
        // A file git ignores in a build context: git cannot tell what it held.
        d.write(".gitignore", "app.conf\n");
        run(d.path(), &["add", ".gitignore", "new.txt"]);
        run(d.path(), &["commit", "-q", "-m", "ignore"]);
        d.write("app.conf", "secret=1\n");
        let head = run(d.path(), &["rev-parse", "HEAD"]);
        assert!(changed_from(d.path(), &head, &[]).unwrap().is_empty());
        assert_eq!(changed_from(d.path(), &head, &[PathBuf::new()]).unwrap(), [PathBuf::from("app.conf")]);
        let error =
            changed_from(d.path(), "0123456789abcdef0123456789abcdef01234567", &[]).unwrap_err().to_string();
        assert!(error.contains("is not in this clone") && error.contains("fetch-depth: 0"), "{error}");
    }
}
