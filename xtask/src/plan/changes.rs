//! Which images a change touches. Pure: given the files changed (relative to the repository
//! root) it says which images to build and why.
//!
//! An image's inputs are its Dockerfile, the context files its COPY/ADD instructions can reach
//! (after .dockerignore) and its parents in the inventory. A change to the inventory file or
//! to the tool itself rebuilds everything, since either can change every image's build.

use std::path::{Path, PathBuf};

use crate::model::inventory::Inventory;

/// Why an image is selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Every image: the inventory or the tool changed (the file is named).
    Everything(String),
    /// The image's own Dockerfile or a context file it copies changed.
    Input(String),
    /// An image it is built on is selected.
    Parent(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Everything(file) => write!(f, "{file} changed, so every image is rebuilt"),
            Reason::Input(file) => write!(f, "{file} changed"),
            Reason::Parent(parent) => write!(f, "built on {parent}, which is rebuilt"),
        }
    }
}

/// Where things are, relative to the repository root.
pub struct Layout {
    pub inventory: PathBuf,
    /// Paths whose change means the tool changed (the xtask crate, the workspace manifests).
    pub tool: Vec<PathBuf>,
    pub images: Vec<ImageInputs>,
}

/// What one image is built from.
pub struct ImageInputs {
    pub name: String,
    /// Files whose change always counts: the Dockerfile and the .dockerignore files that
    /// decide its context.
    pub files: Vec<PathBuf>,
    pub context: PathBuf,
    /// The context paths its Dockerfile reads (COPY/ADD sources, RUN bind mounts).
    pub sources: Vec<String>,
    /// The context's .dockerignore patterns, and the Dockerfile's own (`<Dockerfile>.dockerignore`,
    /// which BuildKit and podman read instead) when there is one.
    pub context_ignore: Vec<String>,
    pub dockerfile_ignore: Option<Vec<String>>,
}

impl ImageInputs {
    /// Whether `path` (in the context) stays out of the build whichever builder runs it: the
    /// legacy builder reads the context's .dockerignore, BuildKit and podman the Dockerfile's.
    fn ignores(&self, path: &str) -> bool {
        dockerignored(&self.context_ignore, path)
            && self.dockerfile_ignore.as_ref().is_none_or(|own| dockerignored(own, path))
    }
}

/// The images to build for `changed`, each with its reason, in inventory (name) order.
pub fn select(inventory: &Inventory, layout: &Layout, changed: &[PathBuf]) -> Vec<(String, Reason)> {
    let everything =
        changed.iter().find(|f| **f == layout.inventory || layout.tool.iter().any(|t| f.starts_with(t)));
    if let Some(file) = everything {
        let reason = Reason::Everything(printable(file));
        return inventory.images.keys().map(|name| (name.clone(), reason.clone())).collect();
    }
    let mut selected: Vec<(String, Reason)> = Vec::new();
    let is_selected = |selected: &[(String, Reason)], name: &str| selected.iter().any(|(n, _)| n == name);
    for image in &layout.images {
        let hit = changed.iter().find(|file| {
            if image.files.contains(file) {
                return true;
            }
            let Ok(inside) = file.strip_prefix(&image.context) else { return false };
            let inside = inside.to_string_lossy();
            !image.ignores(&inside) && image.sources.iter().any(|source| reaches(source, &inside))
        });
        if let Some(file) = hit {
            selected.push((image.name.clone(), Reason::Input(printable(file))));
        }
    }
    // Everything built on a selected image is selected too, transitively.
    loop {
        let mut added = false;
        for (name, image) in &inventory.images {
            if is_selected(&selected, name) {
                continue;
            }
            if let Some(parent) = image.depends_on.iter().find(|p| is_selected(&selected, p)) {
                selected.push((name.clone(), Reason::Parent(parent.clone())));
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    selected.sort_by(|a, b| a.0.cmp(&b.0));
    selected
}

/// A path as it can be shown anywhere: control characters (a newline that would start a
/// workflow command, say) spelled out.
fn printable(path: &Path) -> String {
    path.display()
        .to_string()
        .chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

/// Whether a COPY source reaches `file` (both relative to the context): the file itself, a
/// folder holding it, or a wildcard pattern matching it.
fn reaches(source: &str, file: &str) -> bool {
    let source = source.trim_start_matches("./").trim_end_matches('/');
    if source.is_empty() || source == "." {
        return true;
    }
    file == source || file.starts_with(&format!("{source}/")) || glob(source, file) || {
        // A pattern for a folder reaches what is inside it.
        let mut prefix = String::new();
        file.split('/').any(|part| {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            glob(source, &prefix)
        })
    }
}

/// Whether `path` (relative to a context) is excluded by .dockerignore `patterns`: the last
/// matching pattern decides, `!` re-includes, a pattern for a folder covers what is inside.
pub fn dockerignored(patterns: &[String], path: &str) -> bool {
    let mut ignored = false;
    for pattern in patterns {
        let (negate, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
        if pattern.is_empty() {
            continue;
        }
        let matches = glob(pattern, path) || path.match_indices('/').any(|(i, _)| glob(pattern, &path[..i]));
        if matches {
            ignored = !negate;
        }
    }
    ignored
}

/// The .dockerignore patterns of a context folder's file text.
pub fn dockerignore_patterns(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

/// Glob matching with `*` (within one path segment), `?`, and `**` (any number of segments).
fn glob(pattern: &str, path: &str) -> bool {
    fn segments(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|i| segments(rest, &s[i..])),
            Some((first, rest)) => {
                !s.is_empty() && chars(first.as_bytes(), s[0].as_bytes()) && segments(rest, &s[1..])
            }
        }
    }
    fn chars(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| chars(rest, &s[i..])),
            Some((b'?', rest)) => !s.is_empty() && chars(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && chars(rest, &s[1..]),
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segments(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    #[test]
    fn what_a_source_reaches() {
        assert!(reaches("harden.sh", "harden.sh"));
        assert!(!reaches("harden.sh", "harden.sh.bak"));
        assert!(reaches("conf", "conf/a.yml"));
        assert!(reaches("./conf/", "conf/sub/a.yml"));
        assert!(reaches(".", "anything/at/all"));
        assert!(reaches("conf/*.yml", "conf/a.yml"));
        assert!(!reaches("conf/*.yml", "conf/a.json"));
        assert!(reaches("c?nf", "conf/x"));
        assert!(!reaches("conf", "confx/a"));
    }

    #[test]
    fn dockerignore_rules() {
        let patterns = dockerignore_patterns("# comment\n*.md\nsecrets/\n!README.md\n**/*.tmp\n");
        assert!(dockerignored(&patterns, "notes.md"));
        assert!(!dockerignored(&patterns, "README.md"));
        assert!(dockerignored(&patterns, "secrets/key"));
        assert!(dockerignored(&patterns, "a/b/c.tmp"));
        assert!(!dockerignored(&patterns, "harden.sh"));
    }

    fn inventory(dir: &TestDir) -> Inventory {
        for f in ["Dockerfile-base", "Dockerfile-mid", "Dockerfile-other"] {
            dir.write(f, "FROM scratch\n");
        }
        let text = "registry = \"r.io/x\"\n[images.base]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-base\"\n\
                    [images.mid]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-mid\"\ndepends_on = [\"base\"]\n\
                    [images.other]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-other\"\n";
        Inventory::parse(&dir.path().join("images.toml"), text).unwrap()
    }

    fn layout() -> Layout {
        let image = |name: &str, sources: &[&str]| ImageInputs {
            name: name.to_string(),
            files: vec![
                PathBuf::from(format!("images/Dockerfile-{name}")),
                PathBuf::from("images/.dockerignore"),
            ],
            context: PathBuf::from("images"),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            context_ignore: dockerignore_patterns("conf/*.md\n"),
            dockerfile_ignore: None,
        };
        Layout {
            inventory: PathBuf::from("images/images.toml"),
            tool: vec![PathBuf::from("xtask"), PathBuf::from("Cargo.lock")],
            images: vec![image("base", &["harden.sh"]), image("mid", &[]), image("other", &["conf"])],
        }
    }

    fn names(selection: &[(String, Reason)]) -> Vec<&str> {
        selection.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn selection_by_change() {
        let d = TestDir::new("changes");
        let inv = inventory(&d);
        let pick = |files: &[&str]| {
            let changed: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
            select(&inv, &layout(), &changed)
        };
        // A leaf's Dockerfile: that image alone.
        let s = pick(&["images/Dockerfile-other"]);
        assert_eq!(s, [("other".to_string(), Reason::Input("images/Dockerfile-other".into()))]);
        // A file the base copies: the base and what is built on it.
        let s = pick(&["images/harden.sh"]);
        assert_eq!(names(&s), ["base", "mid"]);
        assert_eq!(s[1].1.to_string(), "built on base, which is rebuilt");
        // Context files no image copies, or that .dockerignore excludes, rebuild nothing.
        assert!(pick(&["images/README.md", "images/conf/notes.md", "docs/x"]).is_empty());
        assert_eq!(names(&pick(&["images/conf/nginx.conf"])), ["other"]);
        // The inventory or the tool: everything.
        let s = pick(&["images/images.toml"]);
        assert_eq!(names(&s), ["base", "mid", "other"]);
        assert_eq!(s[0].1.to_string(), "images/images.toml changed, so every image is rebuilt");
        assert_eq!(names(&pick(&["xtask/src/plan.rs"])), ["base", "mid", "other"]);
        // The context's .dockerignore decides what every build sees.
        assert_eq!(names(&pick(&["images/.dockerignore"])), ["base", "mid", "other"]);
        // A file name that would start a workflow command is shown spelled out.
        let s = pick(&["images/conf/evil\n::error::x"]);
        assert_eq!(s[0].1.to_string(), "images/conf/evil\\n::error::x changed");
    }

    /// BuildKit and podman read the Dockerfile's own .dockerignore, the legacy builder the
    /// context's: a file stays out only when both keep it out.
    #[test]
    fn a_file_counts_unless_every_builder_ignores_it() {
        let mut image = layout().images.remove(2);
        image.context_ignore = dockerignore_patterns("x.txt\nsecret\n");
        image.dockerfile_ignore = Some(dockerignore_patterns("secret\n"));
        assert!(!image.ignores("x.txt"), "BuildKit sends x.txt: a change to it counts");
        assert!(image.ignores("secret"));
        image.dockerfile_ignore = None;
        assert!(image.ignores("x.txt"));
    }
}
