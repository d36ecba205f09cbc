//! images.toml -> a validated `Inventory`. Every rule of the inventory lives here.
//!
//! Paths are relative to the inventory's folder, so an inventory anywhere on disk works. Every
//! problem names the file, the key and the line: TOML's own errors carry a position, and the
//! line of a key our rules reject is found in the text (see `locate`), which spares wrapping
//! every field in `toml::Spanned` and the compile time that costs.

use crate::model::sources::Sources;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Deserialize;

use crate::model::hardening;
use crate::model::oci;
use crate::model::support::SupportEnds;

#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file as the user named it, for messages.
    pub path: PathBuf,
    /// The registry this run publishes to: images.toml's, or --registry.
    pub registry: String,
    /// The registry images.toml names, which Dockerfiles may use in FROM lines.
    pub declared_registry: String,
    pub test_package: Option<TestPackage>,
    pub images: BTreeMap<String, Image>,
    /// What its files say, read once by the loader (sys/inputs.rs); empty until then.
    pub sources: Sources,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub name: String,
    pub version: semver::Version,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub push: bool,
    pub depends_on: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    /// The hardening rules a build must pass before it may be pushed; `None` when neither
    /// `[verify]` nor `[images.NAME.verify]` is present.
    pub verify: Option<hardening::Spec>,
    /// When support for the upstream base it builds on ends.
    pub base_support_ends: Option<SupportEnds>,
}

#[cfg(test)]
impl Image {
    /// An image as tests need one: `Dockerfile-<name>` in the current folder, pushed, no parents.
    pub fn for_test(name: &str, version: &str) -> Image {
        Image {
            name: name.to_string(),
            version: semver::Version::parse(version).unwrap(),
            dockerfile: PathBuf::from(format!("Dockerfile-{name}")),
            context: PathBuf::from("."),
            push: true,
            depends_on: Vec::new(),
            build_args: BTreeMap::new(),
            platforms: Vec::new(),
            verify: None,
            base_support_ends: None,
        }
    }
}

/// What ci-pr pushes to prove the workflow may write packages.
#[derive(Debug, Clone, PartialEq)]
pub struct TestPackage {
    pub name: String,
    pub tag: String,
    /// The inventory image whose Dockerfile and context it is built from.
    pub image: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    registry: String,
    test_package: Option<RawTestPackage>,
    #[serde(default)]
    images: BTreeMap<String, RawImage>,
    /// Rules every image is verified against; an image's own `verify` table overrides them.
    verify: Option<RawVerify>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestPackage {
    name: String,
    tag: String,
    image: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    version: String,
    dockerfile: String,
    context: Option<String>,
    push: Option<bool>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    #[serde(default)]
    platforms: Vec<String>,
    verify: Option<RawVerify>,
    /// Any TOML value, so that a quoted date gets this key's own error rather than serde's.
    base_support_ends: Option<toml::Value>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    user: Option<String>,
    no_setuid: Option<bool>,
    no_world_writable: Option<bool>,
    sticky_tmp: Option<bool>,
    banner: Option<RawBanner>,
    absent: Option<Vec<String>>,
    accounts: Option<Vec<String>>,
    accounts_locked: Option<bool>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawBanner {
    file: String,
    contains: String,
}

/// One thing wrong with an inventory: where, which key, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

/// All problems found in one inventory file.
#[derive(Debug)]
pub struct InvalidInventory {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for InvalidInventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.path.display();
        if self.problems.len() > 1 {
            writeln!(f, "{file} has {} problems:", self.problems.len())?;
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some(line) => write!(f, "{file}:{line}: {}: {}", p.key, p.message)?,
                None => write!(f, "{file}: {}: {}", p.key, p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for InvalidInventory {}

impl Inventory {
    /// Validates inventory `text` as if read from `path`, checking the files it names (relative
    /// to `path`'s folder) on this machine's disk. For tests; the tool loads it in sys/inputs.rs.
    #[cfg(test)]
    pub fn parse(path: &Path, text: &str) -> Result<Inventory, InvalidInventory> {
        Inventory::parse_with(path, text, &|p, kind| match kind {
            PathKind::File => p.is_file(),
            PathKind::Dir => p.is_dir(),
        })
    }

    /// Validates inventory `text` as if read from `path`; `exists` says whether a file or
    /// folder it names (relative to `path`'s folder) is there.
    pub fn parse_with(path: &Path, text: &str, exists: &Exists) -> Result<Inventory, InvalidInventory> {
        let invalid = |problems| InvalidInventory { path: path.to_path_buf(), problems };
        let raw: RawInventory = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(text, s.start));
            invalid(vec![Problem { line, key: "TOML".into(), message: e.message().trim_end().to_string() }])
        })?;
        // A bare file name (`--inventory images.toml`) lives in the current folder.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Docker's arguments are built as UTF-8 text; a path that is not would reach docker mangled.
        if dir.to_str().is_none() {
            return Err(invalid(vec![Problem {
                line: None,
                key: "inventory path".into(),
                message: format!(
                    "the folder {} is not valid UTF-8: move the inventory to a folder with a UTF-8 name",
                    dir.display()
                ),
            }]));
        }
        let mut v = Validator { text, dir: &dir, exists, problems: Vec::new() };
        let inventory = v.inventory(path, raw);
        if v.problems.is_empty() {
            Ok(inventory)
        } else {
            Err(invalid(v.problems))
        }
    }

    /// The same inventory published under another registry (from `--registry`).
    pub fn with_registry(mut self, registry: Option<&str>) -> anyhow::Result<Inventory> {
        if let Some(registry) = registry {
            let registry = registry.trim_end_matches('/');
            if let Some(problem) = oci::registry_problem(registry) {
                bail!("--registry: {problem}");
            }
            self.registry = registry.to_string();
        }
        Ok(self)
    }

    /// The folder holding the inventory, which its paths are relative to.
    pub fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// Looks up an image named on the command line; the error lists the known ones.
    pub fn image(&self, name: &str) -> anyhow::Result<&Image> {
        match self.images.get(name) {
            Some(image) => Ok(image),
            None => bail!("unknown image `{name}`: {} defines {}", self.path.display(), self.known_names()),
        }
    }

    fn known_names(&self) -> String {
        let names: Vec<&str> = self.images.keys().map(String::as_str).collect();
        if names.is_empty() {
            "no images".to_string()
        } else {
            names.join(", ")
        }
    }
}

/// 1-based line of a byte offset.
fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// A table name or key as written in TOML, unquoted: `"a b"` -> `a b`.
fn unquote(s: &str) -> &str {
    s.trim().trim_matches(|c| c == '"' || c == '\'')
}

/// 1-based line where the key at `path` is set: the `key =` line inside the table that holds
/// it (`[images.alpine]` for `images.alpine.version`), else that table's header, else the
/// closest enclosing table's. `None` when nothing of it is written out.
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let header = |table: &[&str]| -> Option<usize> {
        lines.iter().position(|line| {
            let l = line.trim();
            let Some(inner) = l.strip_prefix('[').and_then(|l| l.split(']').next()) else { return false };
            dotted(inner.trim_start_matches('[')) == table
        })
    };
    for split in (0..=path.len()).rev() {
        let (table, rest) = path.split_at(split);
        let start = if table.is_empty() { Some(0) } else { header(table).map(|h| h + 1) };
        let Some(start) = start else { continue };
        let Some(key) = rest.first() else { return Some(start) };
        let found = lines[start..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with('['))
            .position(|l| l.split_once('=').is_some_and(|(k, _)| unquote(k) == *key));
        return match (found, table.is_empty()) {
            (Some(i), _) => Some(start + i + 1),
            // The table's header is the nearest line; a key written nowhere has none.
            (None, false) => Some(start),
            (None, true) => None,
        };
    }
    None
}

/// The parts of a dotted TOML key, unquoted: `images."a.b".verify` -> images, a.b, verify.
fn dotted(key: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None);
    for (i, c) in key.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('.', None) => {
                parts.push(unquote(&key[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(unquote(&key[start..]));
    parts
}

struct Validator<'a> {
    text: &'a str,
    dir: &'a Path,
    exists: &'a Exists,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn report(&mut self, path: &[&str], message: impl Into<String>) {
        let line = locate(self.text, path);
        self.problems.push(Problem { line, key: path.join("."), message: message.into() });
    }

    fn inventory(&mut self, path: &Path, raw: RawInventory) -> Inventory {
        let registry = raw.registry.trim_end_matches('/').to_string();
        if let Some(problem) = oci::registry_problem(&registry) {
            self.report(&["registry"], problem);
        }
        if let Some(baseline) = &raw.verify {
            self.verify_paths(baseline, &["verify"]);
        }
        let mut images = BTreeMap::new();
        for (name, image) in &raw.images {
            if let Some(image) = self.image(name, image, raw.verify.as_ref()) {
                images.insert(name.clone(), image);
            }
        }
        for (name, image) in &raw.images {
            for parent in &image.depends_on {
                let key = ["images", name.as_str(), "depends_on"];
                if parent == name {
                    self.report(&key, format!("`{name}` cannot depend on itself"));
                } else if !raw.images.contains_key(parent) {
                    self.report(&key, format!("`{parent}` is not an image in this inventory"));
                }
            }
        }
        if let Some(cycle) = find_cycle(&raw.images) {
            self.report(
                &["images", &cycle[0], "depends_on"],
                format!("dependency cycle: {}", cycle.join(" -> ")),
            );
        }
        let test_package = raw.test_package.as_ref().map(|tp| self.test_package(tp, &raw.images));
        Inventory {
            path: path.to_path_buf(),
            declared_registry: registry.clone(),
            registry,
            test_package,
            images,
            sources: Sources::default(),
        }
    }

    fn image(&mut self, name: &str, r: &RawImage, baseline: Option<&RawVerify>) -> Option<Image> {
        let key = |field: &'static str| ["images", name, field];
        let before = self.problems.len();
        if let Some(problem) = oci::name_problem(name) {
            self.report(&["images", name], problem);
        }
        let version = match semver::Version::parse(&r.version) {
            Ok(v) if !v.build.is_empty() => {
                self.report(
                    &key("version"),
                    format!(
                        "`{v}` has build metadata (`+{}`), which cannot be part of a tag: drop it",
                        v.build
                    ),
                );
                None
            }
            Ok(v) => {
                if let Some(problem) = oci::tag_problem(&format!("v{v}")) {
                    self.report(&key("version"), problem);
                }
                Some(v)
            }
            Err(e) => {
                self.report(
                    &key("version"),
                    format!(
                        "`{}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. 3.18.0): {e}",
                        r.version
                    ),
                );
                None
            }
        };
        let dockerfile = self.existing_path(&r.dockerfile, &key("dockerfile"), PathKind::File);
        let context = match &r.context {
            Some(context) => self.existing_path(context, &key("context"), PathKind::Dir),
            None => Some(self.dir.to_path_buf()),
        };
        for arg in r.build_args.keys() {
            let valid = arg.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.report(
                    &key("build_args"),
                    format!("`{arg}` is not a build argument name (letters, digits and `_`)"),
                );
            }
        }
        for platform in &r.platforms {
            let parts: Vec<&str> = platform.split('/').collect();
            let valid = (2..=3).contains(&parts.len())
                && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric()));
            if !valid {
                self.report(
                    &key("platforms"),
                    format!("`{platform}` is not a platform: write OS/ARCH[/VARIANT], e.g. linux/amd64"),
                );
            }
        }
        if let Some(own) = &r.verify {
            self.verify_paths(own, &key("verify"));
        }
        let base_support_ends = r.base_support_ends.as_ref().and_then(|written| {
            let date = match written {
                toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
                    SupportEnds::parse(&d.to_string())
                }
                _ => None,
            };
            if date.is_none() {
                self.report(
                    &key("base_support_ends"),
                    format!(
                        "{} is not a date: write the day support ends, unquoted, e.g. 2027-11-01",
                        match written {
                            toml::Value::String(text) => format!("\"{text}\" (a string)"),
                            toml::Value::Datetime(d) => format!("`{d}`"),
                            toml::Value::Integer(_) => "an integer".to_string(),
                            toml::Value::Array(_) => "an array".to_string(),
                            other => format!("a {}", other.type_str()),
                        }
                    ),
                );
            }
            date
        });
        if self.problems.len() > before {
            return None;
        }
        Some(Image {
            name: name.to_string(),
            version: version?,
            dockerfile: dockerfile?,
            context: context?,
            push: r.push.unwrap_or(true),
            depends_on: r.depends_on.clone(),
            build_args: r.build_args.clone(),
            platforms: r.platforms.clone(),
            verify: merge_verify(baseline, r.verify.as_ref()),
            base_support_ends,
        })
    }

    /// Paths in verify rules are paths inside the image: absolute.
    fn verify_paths(&mut self, r: &RawVerify, table: &[&str]) {
        if matches!(r.user.as_deref(), Some("root" | "0")) {
            let mut key = table.to_vec();
            key.push("user");
            self.report(
                &key,
                "the rule is that an image runs as a user other than root: name that user (e.g. \"sbl\"), or leave \
                 `user` out",
            );
        }
        let banner = r.banner.iter().map(|b| ("banner", &b.file));
        let absent = r.absent.iter().flatten().map(|p| ("absent", p));
        let relative: Vec<(&str, &String)> =
            banner.chain(absent).filter(|(_, p)| !p.starts_with('/')).collect();
        for (field, path) in relative {
            let mut key = table.to_vec();
            key.push(field);
            self.report(&key, format!("`{path}` must be an absolute path inside the image, e.g. /bin/su"));
        }
    }

    fn existing_path(&mut self, value: &str, key: &[&str], kind: PathKind) -> Option<PathBuf> {
        let path = self.dir.join(value);
        if (self.exists)(&path, kind) {
            return Some(path);
        }
        let what = match kind {
            PathKind::File => "file",
            PathKind::Dir => "folder",
        };
        self.report(
            key,
            format!("no {what} at {} (paths are relative to the inventory's folder)", path.display()),
        );
        None
    }

    fn test_package(&mut self, r: &RawTestPackage, images: &BTreeMap<String, RawImage>) -> TestPackage {
        if let Some(problem) = oci::name_problem(&r.name) {
            self.report(&["test_package", "name"], problem);
        }
        if let Some(problem) = oci::tag_problem(&r.tag) {
            self.report(&["test_package", "tag"], problem);
        }
        if images.contains_key(&r.name) {
            self.report(
                &["test_package", "name"],
                format!(
                    "`{}` is also an image of the inventory: the test package must not overwrite it",
                    r.name
                ),
            );
        }
        if !images.contains_key(&r.image) {
            self.report(
                &["test_package", "image"],
                format!("`{}` is not an image in this inventory", r.image),
            );
        }
        TestPackage { name: r.name.clone(), tag: r.tag.clone(), image: r.image.clone() }
    }
}

/// An image's rules: its own values where it sets them, else the baseline's; `absent` lists add up.
fn merge_verify(baseline: Option<&RawVerify>, own: Option<&RawVerify>) -> Option<hardening::Spec> {
    if baseline.is_none() && own.is_none() {
        return None;
    }
    let empty = RawVerify::default();
    let (base, own) = (baseline.unwrap_or(&empty), own.unwrap_or(&empty));
    let mut absent: Vec<String> = base.absent.iter().chain(&own.absent).flatten().cloned().collect();
    absent.dedup();
    let flag = |own: Option<bool>, base: Option<bool>| own.or(base).unwrap_or(false);
    Some(hardening::Spec {
        user: own.user.clone().or_else(|| base.user.clone()),
        no_setuid: flag(own.no_setuid, base.no_setuid),
        no_world_writable: flag(own.no_world_writable, base.no_world_writable),
        sticky_tmp: flag(own.sticky_tmp, base.sticky_tmp),
        banner: own
            .banner
            .clone()
            .or_else(|| base.banner.clone())
            .map(|b| hardening::Banner { file: b.file, contains: b.contains }),
        absent,
        accounts: own.accounts.clone().or_else(|| base.accounts.clone()),
        accounts_locked: flag(own.accounts_locked, base.accounts_locked),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    File,
    Dir,
}

/// Whether a file or folder is there: asked of the disk at the edge (sys/inputs.rs).
pub type Exists = dyn Fn(&Path, PathKind) -> bool;

/// The first dependency cycle, as the names along it with the first repeated at the end.
fn find_cycle(images: &BTreeMap<String, RawImage>) -> Option<Vec<String>> {
    fn visit(
        name: &str,
        images: &BTreeMap<String, RawImage>,
        done: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == name) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if done.iter().any(|n| n == name) {
            return None;
        }
        stack.push(name.to_string());
        for parent in images.get(name).map(|i| i.depends_on.as_slice()).unwrap_or_default() {
            if parent != name {
                if let Some(cycle) = visit(parent, images, done, stack) {
                    return Some(cycle);
                }
            }
        }
        stack.pop();
        done.push(name.to_string());
        None
    }
    let mut done = Vec::new();
    images.keys().find_map(|name| visit(name, images, &mut done, &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    const GOOD: &str = r#"
registry = "ghcr.io/cfpb/regtech/sbl"

[test_package]
name = "test"
tag = "do_not_use"
image = "alpine"

[images.alpine]
version = "3.18.0"
dockerfile = "Dockerfile-alpine"

[images.python-alpine]
version = "3.12.0-rc.1"
dockerfile = "Dockerfile-python-alpine"
context = "ctx"
push = false
depends_on = ["alpine"]
build_args = { PY = "3.12" }
platforms = ["linux/amd64", "linux/arm64/v8"]
"#;

    fn dir() -> TestDir {
        let dir = TestDir::new("inventory");
        dir.write("Dockerfile-alpine", "FROM scratch\n");
        dir.write("Dockerfile-python-alpine", "FROM scratch\n");
        dir.write("ctx/.keep", "");
        dir
    }

    fn parse(dir: &TestDir, text: &str) -> Result<Inventory, InvalidInventory> {
        Inventory::parse(&dir.path().join("images.toml"), text)
    }

    /// The single problem reported for `text` (the good inventory with one edit).
    fn problem(text: &str) -> Problem {
        let d = dir();
        let err = parse(&d, text).expect_err("inventory should be rejected");
        assert_eq!(err.problems.len(), 1, "{err}");
        err.problems[0].clone()
    }

    #[test]
    fn good_inventory_loads_with_defaults() {
        let d = dir();
        let inv = parse(&d, GOOD).unwrap();
        assert_eq!(inv.registry, "ghcr.io/cfpb/regtech/sbl");
        let alpine = &inv.images["alpine"];
        assert_eq!(alpine.version, semver::Version::new(3, 18, 0));
        assert!(alpine.push);
        assert_eq!(alpine.context, d.path());
        assert_eq!(alpine.dockerfile, d.path().join("Dockerfile-alpine"));
        let py = &inv.images["python-alpine"];
        assert!(!py.push);
        assert_eq!(py.context, d.path().join("ctx"));
        assert_eq!(py.depends_on, ["alpine"]);
        assert_eq!(py.build_args["PY"], "3.12");
        assert_eq!(py.platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(
            inv.test_package,
            Some(TestPackage { name: "test".into(), tag: "do_not_use".into(), image: "alpine".into() })
        );
    }

    #[test]
    fn problems_name_the_real_line_never_line_zero() {
        assert_eq!(dotted(r#"images."a.b".verify"#), ["images", "a.b", "verify"]);
        let text = "registry = \"r.io/x\"\n\n[images.\"a.b\"]\nversion = \"1\"\n";
        assert_eq!(locate(text, &["images", "a.b", "version"]), Some(4));
        assert_eq!(locate(text, &["images", "a.b", "dockerfile"]), Some(3));
        assert_eq!(locate(text, &["test_package"]), None);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let p = problem(&GOOD.replace("push = false", "push = false\npsuh = true"));
        assert_eq!(p.line, Some(18));
        assert!(p.message.contains("unknown field `psuh`"), "{}", p.message);
    }

    #[test]
    fn unknown_top_level_key() {
        let p = problem(&format!("regsitry = \"x\"\n{GOOD}"));
        assert!(p.message.contains("unknown field `regsitry`"), "{}", p.message);
        assert_eq!(p.line, Some(1));
    }

    #[test]
    fn malformed_toml_and_wrong_types() {
        let p = problem(&GOOD.replace("push = false", "push = \"no\""));
        assert_eq!(p.key, "TOML");
        assert_eq!(p.line, Some(17));
        assert!(p.message.contains("bool"), "{}", p.message);
        let p = problem("registry = [");
        assert_eq!(p.line, Some(1));
        let p = problem(&GOOD.replace("[images.alpine]\n", "[images.alpine\n"));
        assert_eq!(p.line, Some(9));
    }

    #[test]
    fn missing_required_key() {
        let p = problem(&GOOD.replace("dockerfile = \"Dockerfile-alpine\"\n", ""));
        assert!(p.message.contains("missing field `dockerfile`"), "{}", p.message);
    }

    #[test]
    fn bad_versions() {
        let p = problem(&GOOD.replace("\"3.18.0\"", "\"3.18\""));
        assert_eq!((p.key.as_str(), p.line), ("images.alpine.version", Some(10)));
        assert!(p.message.contains("not a semantic version"), "{}", p.message);
        let p = problem(&GOOD.replace("\"3.18.0\"", "\"1.2.3+x\""));
        assert!(p.message.contains("build metadata"), "{}", p.message);
        let p = problem(&GOOD.replace("\"3.18.0\"", &format!("\"1.2.3-{}\"", "a".repeat(130))));
        assert!(p.message.contains("at most 128"), "{}", p.message);
    }

    #[test]
    fn bad_names() {
        let p = problem(
            &GOOD
                .replace("[images.alpine]", "[images.Alpine]")
                .replace("image = \"alpine\"", "image = \"Alpine\"")
                .replace("depends_on = [\"alpine\"]", "depends_on = [\"Alpine\"]"),
        );
        assert_eq!(p.key, "images.Alpine");
        assert!(p.message.contains("lowercase"), "{}", p.message);
        let p = problem(
            &GOOD
                .replace("[images.alpine]", "[images.\"a b\"]")
                .replace("image = \"alpine\"", "image = \"a b\"")
                .replace("depends_on = [\"alpine\"]", "depends_on = []"),
        );
        assert_eq!(p.key, "images.a b");
    }

    #[test]
    fn missing_files() {
        let p = problem(&GOOD.replace("\"Dockerfile-alpine\"", "\"Dockerfile-nope\""));
        assert_eq!((p.key.as_str(), p.line), ("images.alpine.dockerfile", Some(11)));
        assert!(p.message.contains("Dockerfile-nope"), "{}", p.message);
        let p = problem(&GOOD.replace("context = \"ctx\"", "context = \"nowhere\""));
        assert_eq!(p.key, "images.python-alpine.context");
        assert!(p.message.contains("no folder"), "{}", p.message);
    }

    #[test]
    fn unknown_dependency_self_dependency_and_cycle() {
        let p = problem(&GOOD.replace("depends_on = [\"alpine\"]", "depends_on = [\"ghost\"]"));
        assert_eq!((p.key.as_str(), p.line), ("images.python-alpine.depends_on", Some(18)));
        assert!(p.message.contains("`ghost` is not an image"), "{}", p.message);

        let d = dir();
        let cyclic = GOOD.replace(
            "dockerfile = \"Dockerfile-alpine\"",
            "dockerfile = \"Dockerfile-alpine\"\ndepends_on = [\"python-alpine\"]",
        );
        let err = parse(&d, &cyclic).unwrap_err();
        assert!(err.to_string().contains("dependency cycle: alpine -> python-alpine -> alpine"), "{err}");

        let selfish = GOOD.replace("depends_on = [\"alpine\"]", "depends_on = [\"python-alpine\"]");
        let err = parse(&d, &selfish).unwrap_err();
        assert!(err.to_string().contains("cannot depend on itself"), "{err}");
    }

    #[test]
    fn test_package_rules() {
        let p = problem(&GOOD.replace("image = \"alpine\"", "image = \"ghost\""));
        assert_eq!((p.key.as_str(), p.line), ("test_package.image", Some(7)));
        let p = problem(&GOOD.replace("tag = \"do_not_use\"", "tag = \"no way\""));
        assert_eq!(p.key, "test_package.tag");
        let p = problem(&GOOD.replace("name = \"test\"", "name = \"alpine\""));
        assert!(p.message.contains("must not overwrite"), "{}", p.message);
    }

    #[test]
    fn bad_registry_build_args_and_platforms() {
        let p = problem(&GOOD.replace("ghcr.io/cfpb/regtech/sbl", "cfpb/sbl"));
        assert_eq!((p.key.as_str(), p.line), ("registry", Some(2)));
        let p = problem(&GOOD.replace("PY = ", "\"P-Y\" = "));
        assert_eq!(p.key, "images.python-alpine.build_args");
        let p = problem(&GOOD.replace("\"linux/amd64\"", "\"amd64\""));
        assert_eq!(p.key, "images.python-alpine.platforms");
    }

    #[test]
    fn several_problems_are_all_reported_with_the_file_name() {
        let d = dir();
        let text = GOOD.replace("\"3.18.0\"", "\"x\"").replace("\"Dockerfile-python-alpine\"", "\"nope\"");
        let err = parse(&d, &text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("{} has 2 problems:", d.path().join("images.toml").display())));
        assert!(shown.contains("images.toml:10: images.alpine.version"), "{shown}");
        assert!(shown.contains("images.toml:15: images.python-alpine.dockerfile"), "{shown}");
    }

    #[test]
    fn verify_rules_merge_the_baseline_with_each_image() {
        let d = dir();
        let text = format!(
            "{GOOD}\n[verify]\nno_setuid = true\nuser = \"sbl\"\nabsent = [\"/bin/su\"]\n\
             [images.alpine.verify]\nuser = \"app\"\nabsent = [\"/usr/bin/od\"]\nno_setuid = false\n"
        );
        let inv = parse(&d, &text).unwrap();
        let alpine = inv.images["alpine"].verify.clone().unwrap();
        assert_eq!(alpine.user.as_deref(), Some("app"));
        assert!(!alpine.no_setuid);
        assert_eq!(alpine.absent, ["/bin/su", "/usr/bin/od"]);
        let py = inv.images["python-alpine"].verify.clone().unwrap();
        assert_eq!((py.user.as_deref(), py.no_setuid), (Some("sbl"), true));
        assert_eq!(parse(&d, GOOD).unwrap().images["alpine"].verify, None);

        let bad = format!("{GOOD}\n[verify]\nabsent = [\"bin/su\"]\n");
        let p = parse(&d, &bad).unwrap_err().problems;
        assert_eq!((p[0].key.as_str(), p[0].line), ("verify.absent", Some(23)));
        let bad = format!("{GOOD}\n[verify]\nuser = \"root\"\n");
        let p = parse(&d, &bad).unwrap_err().problems;
        assert_eq!((p[0].key.as_str(), p[0].line), ("verify.user", Some(23)));
        let bad = format!("{GOOD}\n[verify]\nno_suid = true\n");
        assert!(parse(&d, &bad).unwrap_err().to_string().contains("unknown field `no_suid`"));
    }

    #[test]
    fn registry_override_is_validated() {
        let d = dir();
        let inv = parse(&d, GOOD).unwrap();
        let inv = inv.with_registry(Some("127.0.0.1:5000/x/")).unwrap();
        assert_eq!(inv.registry, "127.0.0.1:5000/x");
        let err = inv.with_registry(Some("Nope")).unwrap_err().to_string();
        assert!(err.starts_with("--registry: "), "{err}");
    }

    #[test]
    fn unknown_image_lists_known_ones() {
        let d = dir();
        let inv = parse(&d, GOOD).unwrap();
        let err = inv.image("alpin").unwrap_err().to_string();
        assert!(err.contains("unknown image `alpin`"), "{err}");
        assert!(err.ends_with("defines alpine, python-alpine"), "{err}");
    }
}
