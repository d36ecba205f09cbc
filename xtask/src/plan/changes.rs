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
    /// Every image: the tool, or what the inventory says of every image, changed (the file is
    /// named).
    Everything(String),
    /// The image's own entry in the inventory changed (the file is named).
    Entry(String),
    /// The image's own Dockerfile or context files it copies changed (every one, in order).
    Input(Vec<String>),
    /// An image it is built on is selected.
    Parent(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Everything(file) => write!(f, "{file} changed, so every image is rebuilt"),
            Reason::Entry(file) => write!(f, "its entry in {file} changed"),
            Reason::Input(files) => write!(f, "{} changed", crate::model::filesystem::first_few(files, 3)),
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

/// What changed in the inventory file: nothing, some images' entries, or what every image
/// depends on (the registry, the test package, the hardening baseline; or it cannot be told).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryChange {
    None,
    Entries(Vec<String>),
    Everything,
}

/// Keys of an image's entry that say nothing about how it is built.
const NOT_BUILD_INPUTS: [&str; 1] = ["base_support_ends"];

/// How the inventory text `before` (None: the file did not exist) differs from `now`, read as
/// TOML, so that comments and layout count for nothing.
pub fn inventory_change(before: Option<&str>, now: &str) -> InventoryChange {
    let parse = |text: &str| toml::from_str::<toml::Table>(text).ok();
    let (Some(mut before), Some(mut now)) = (before.and_then(parse), parse(now)) else {
        return InventoryChange::Everything;
    };
    let images = |table: &mut toml::Table| match table.remove("images") {
        Some(toml::Value::Table(images)) => images,
        _ => toml::Table::new(),
    };
    let (old, new) = (images(&mut before), images(&mut now));
    // The baseline's empty lists and tables are its defaults written out (`absent = []`).
    for table in [&mut before, &mut now] {
        if let Some(toml::Value::Table(verify)) = table.get_mut("verify") {
            verify.retain(|_, v| !matches!(v, toml::Value::Array(a) if a.is_empty()));
        }
    }
    if before != now {
        return InventoryChange::Everything;
    }
    let entry = |images: &toml::Table, name: &str| {
        images.get(name).and_then(|v| v.as_table()).map(|t| {
            let mut t = t.clone();
            NOT_BUILD_INPUTS.iter().for_each(|k| {
                t.remove(*k);
            });
            // A default written out builds the same image as the default left out.
            t.retain(|key, value| !is_default(key, value));
            t
        })
    };
    let changed: Vec<String> =
        new.keys().filter(|name| entry(&old, name) != entry(&new, name)).cloned().collect();
    match changed.is_empty() {
        true => InventoryChange::None,
        false => InventoryChange::Entries(changed),
    }
}

/// Whether `value` is what the inventory assumes for `key` when an entry leaves it out.
fn is_default(key: &str, value: &toml::Value) -> bool {
    match (key, value) {
        ("push", toml::Value::Boolean(push)) => *push,
        ("context", toml::Value::String(context)) => matches!(context.as_str(), "." | "./"),
        ("depends_on" | "platforms", toml::Value::Array(items)) => items.is_empty(),
        ("build_args" | "verify", toml::Value::Table(table)) => table.is_empty(),
        _ => false,
    }
}

/// The images to build for `changed`, each with its reason, in inventory (name) order. When
/// the inventory file is among them, `inventory` says how it changed.
pub fn select(
    inventory: &Inventory,
    layout: &Layout,
    changed: &[PathBuf],
    inventory_changed: &InventoryChange,
) -> Vec<(String, Reason)> {
    let tool = changed.iter().find(|f| layout.tool.iter().any(|t| f.starts_with(t)));
    let listed = changed.iter().find(|f| **f == layout.inventory);
    let everything = tool.or(listed.filter(|_| *inventory_changed == InventoryChange::Everything));
    if let Some(file) = everything {
        let reason = Reason::Everything(printable(file));
        return inventory.images.keys().map(|name| (name.clone(), reason.clone())).collect();
    }
    let mut selected: Vec<(String, Reason)> = Vec::new();
    if let (Some(file), InventoryChange::Entries(names)) = (listed, inventory_changed) {
        for name in names.iter().filter(|n| inventory.images.contains_key(*n)) {
            selected.push((name.clone(), Reason::Entry(printable(file))));
        }
    }
    let is_selected = |selected: &[(String, Reason)], name: &str| selected.iter().any(|(n, _)| n == name);
    for image in &layout.images {
        let hits: Vec<String> = changed
            .iter()
            .filter(|file| {
                if image.files.contains(file) {
                    return true;
                }
                let Ok(inside) = file.strip_prefix(&image.context) else { return false };
                let inside = inside.to_string_lossy();
                !image.ignores(&inside) && image.sources.iter().any(|source| reaches(source, &inside))
            })
            .map(|file| printable(file))
            .collect();
        if !hits.is_empty() && !selected.iter().any(|(n, _)| *n == image.name) {
            selected.push((image.name.clone(), Reason::Input(hits)));
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

/// Glob matching as Docker's COPY and .dockerignore do it: `*` (within one path segment), `?`,
/// character classes (`[a-z]`, `[^0-9]`, with `\` escapes inside), `\` escaping the next
/// character, and `**` (any number of segments). A malformed class matches nothing, where
/// Docker refuses the pattern.
pub fn glob(pattern: &str, path: &str) -> bool {
    fn segments(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|i| segments(rest, &s[i..])),
            Some((first, rest)) => {
                let (p, c): (Vec<char>, Vec<char>) =
                    (first.chars().collect(), s.first().map_or(Vec::new(), |s| s.chars().collect()));
                !s.is_empty() && chars(&p, &c) && segments(rest, &s[1..])
            }
        }
    }
    fn chars(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| chars(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && chars(rest, &s[1..]),
            Some(('[', rest)) => match (class(rest), s.first()) {
                (Some((matches, after)), Some(c)) => matches(*c) && chars(after, &s[1..]),
                _ => false,
            },
            Some(('\\', [escaped, rest @ ..])) => s.first() == Some(escaped) && chars(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && chars(rest, &s[1..]),
        }
    }
    /// The class starting after `[`: whether a character is in it, and what follows its `]`.
    #[allow(clippy::type_complexity)]
    fn class(p: &[char]) -> Option<(Box<dyn Fn(char) -> bool + '_>, &[char])> {
        let (negated, mut rest) = match p.first() {
            Some('^') => (true, &p[1..]),
            _ => (false, p),
        };
        let mut ranges: Vec<(char, char)> = Vec::new();
        let mut first = true;
        loop {
            let (lo, after) = match rest {
                [']', after @ ..] if !first => {
                    let matches =
                        move |c: char| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != negated;
                    return Some((Box::new(matches), after));
                }
                ['\\', c, after @ ..] => (*c, after),
                [c, after @ ..] => (*c, after),
                [] => return None,
            };
            first = false;
            let (hi, after) = match after {
                ['-', '\\', c, after @ ..] => (*c, after),
                ['-', c, after @ ..] if *c != ']' => (*c, after),
                _ => (lo, after),
            };
            ranges.push((lo, hi));
            rest = after;
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segments(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_entries_are_compared_as_toml() {
        let before = "registry = \"r\"\n[images.a]\nversion = \"1.0.0\"\n[images.b]\nversion = \"1.0.0\"\n";
        let comment = format!("# notes\n{before}");
        assert_eq!(inventory_change(Some(before), &comment), InventoryChange::None);
        let support = before.replace("[images.b]\n", "[images.b]\nbase_support_ends = 2027-11-01\n");
        assert_eq!(inventory_change(Some(before), &support), InventoryChange::None);
        let bumped = before.replacen("version = \"1.0.0\"", "version = \"1.1.0\"", 1);
        assert_eq!(inventory_change(Some(before), &bumped), InventoryChange::Entries(vec!["a".into()]));
        let added = format!("{before}[images.c]\nversion = \"1.0.0\"\n");
        assert_eq!(inventory_change(Some(before), &added), InventoryChange::Entries(vec!["c".into()]));
        let registry = before.replace("\"r\"", "\"r2\"");
        assert_eq!(inventory_change(Some(before), &registry), InventoryChange::Everything);
        // Defaults written out build the same images.
        let spelled = before.replacen(
            "version = \"1.0.0\"\n",
            "version = \"1.0.0\"\npush = true\ncontext = \".\"\ndepends_on = []\nbuild_args = {}\nplatforms = []\n",
            1,
        );
        assert_eq!(inventory_change(Some(before), &spelled), InventoryChange::None);
        let quiet = before.replacen("version = \"1.0.0\"\n", "version = \"1.0.0\"\npush = false\n", 1);
        assert_eq!(inventory_change(Some(before), &quiet), InventoryChange::Entries(vec!["a".into()]));
        let baseline = format!("{before}[verify]\nuser = \"sbl\"\n");
        let spelled = baseline.replace("user = \"sbl\"\n", "user = \"sbl\"\nabsent = []\n");
        assert_eq!(inventory_change(Some(&baseline), &spelled), InventoryChange::None);
        let stricter = baseline.replace("user = \"sbl\"\n", "user = \"sbl\"\nabsent = [\"/bin/su\"]\n");
        assert_eq!(inventory_change(Some(&baseline), &stricter), InventoryChange::Everything);
        assert_eq!(inventory_change(None, before), InventoryChange::Everything);
        assert_eq!(inventory_change(Some("not = [toml"), before), InventoryChange::Everything);
    }
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

    /// Character classes and escapes as Docker's COPY and .dockerignore match them.
    #[test]
    fn classes_and_escapes() {
        assert!(glob("conf/app[0-9].conf", "conf/app7.conf"));
        assert!(!glob("conf/app[0-9].conf", "conf/appx.conf"));
        assert!(glob("conf/app[^0-9].conf", "conf/appx.conf"));
        assert!(!glob("conf/app[^0-9].conf", "conf/app7.conf"));
        assert!(
            glob("[a-cx]*.txt", "b-notes.txt")
                && glob("[a-cx]*.txt", "x.txt")
                && !glob("[a-cx]*.txt", "d.txt")
        );
        assert!(glob("weird\\*name", "weird*name") && !glob("weird\\*name", "weirdXname"));
        assert!(glob("q\\?", "q?") && !glob("q\\?", "qx"));
        assert!(glob("[\\]]x", "]x"));
        assert!(glob("données/[é]t[é]", "données/été"));
        assert!(!glob("conf/[unclosed", "conf/u"), "a malformed class matches nothing");
        assert!(dockerignored(&dockerignore_patterns("secret[0-9].key\n"), "secret1.key"));
        assert!(reaches("conf/app[0-9].conf", "conf/app1.conf"));
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
        crate::sys::inputs::parse_inventory(&dir.path().join("images.toml"), text).unwrap()
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
            select(&inv, &layout(), &changed, &InventoryChange::Everything)
        };
        // A leaf's Dockerfile: that image alone.
        let s = pick(&["images/Dockerfile-other"]);
        assert_eq!(s, [("other".to_string(), Reason::Input(vec!["images/Dockerfile-other".into()]))]);
        // A file the base copies: the base and what is built on it.
        let s = pick(&["images/harden.sh"]);
        assert_eq!(names(&s), ["base", "mid"]);
        assert_eq!(s[1].1.to_string(), "built on base, which is rebuilt");
        // Context files no image copies, or that .dockerignore excludes, rebuild nothing.
        assert!(pick(&["images/README.md", "images/conf/notes.md", "docs/x"]).is_empty());
        assert_eq!(names(&pick(&["images/conf/nginx.conf"])), ["other"]);
        // The inventory where it says what every image depends on, or the tool: everything.
        let s = pick(&["images/images.toml"]);
        assert_eq!(names(&s), ["base", "mid", "other"]);
        assert_eq!(s[0].1.to_string(), "images/images.toml changed, so every image is rebuilt");
        assert_eq!(names(&pick(&["xtask/src/plan.rs"])), ["base", "mid", "other"]);
        // The inventory where one image's entry changed: that image and what is built on it.
        let entries = InventoryChange::Entries(vec!["base".into()]);
        let s = select(&inv, &layout(), &[PathBuf::from("images/images.toml")], &entries);
        assert_eq!(names(&s), ["base", "mid"]);
        assert_eq!(s[0].1.to_string(), "its entry in images/images.toml changed");
        assert!(select(&inv, &layout(), &[PathBuf::from("images/images.toml")], &InventoryChange::None)
            .is_empty());
        // The context's .dockerignore decides what every build sees.
        assert_eq!(names(&pick(&["images/.dockerignore"])), ["base", "mid", "other"]);
        // A file name that would start a workflow command is shown spelled out.
        let s = pick(&["images/conf/evil\n::error::x"]);
        assert_eq!(s[0].1.to_string(), "images/conf/evil\\n::error::x changed");
        // Every changed input is listed, the first few by name.
        let s = pick(&["images/conf/a", "images/conf/b", "images/conf/c", "images/conf/d"]);
        assert_eq!(s[0].1.to_string(), "images/conf/a, images/conf/b, images/conf/c (+1 more) changed");
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
