//! Checking an inventory as parsed: every problem found, each with its key and line, before
//! any image is built; the files it names are looked up through `Exists` (the disk, at the
//! edge).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Image, Inventory, Problem, RawImage, RawInventory, RawTestPackage, RawVerify, TestPackage};
use crate::model::hardening;
use crate::model::oci;
use crate::model::platform::Platform;
use crate::model::sources::Sources;
use crate::model::support::SupportEnds;

/// 1-based line of a byte offset.
pub(super) fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// A table name or key as written in TOML, unquoted: `"a b"` -> `a b`.
fn unquote(s: &str) -> &str {
    s.trim().trim_matches(|c| c == '"' || c == '\'')
}

/// 1-based line where the key at `path` is set: the `key =` line inside the table that holds
/// it (`[images.alpine]` for `images.alpine.version`), else that table's header, else the
/// closest enclosing table's. `None` when nothing of it is written out.
pub(super) fn locate(text: &str, path: &[&str]) -> Option<usize> {
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
pub(super) fn dotted(key: &str) -> Vec<&str> {
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

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) dir: &'a Path,
    pub(super) exists: &'a Exists,
    pub(super) problems: Vec<Problem>,
}

impl Validator<'_> {
    fn report(&mut self, path: &[&str], message: impl Into<String>) {
        let line = locate(self.text, path);
        self.problems.push(Problem { line, key: path.join("."), message: message.into() });
    }

    pub(super) fn inventory(&mut self, path: &Path, raw: RawInventory) -> Inventory {
        let registry = raw.registry.trim_end_matches('/').to_string();
        if let Some(problem) = oci::registry_problem(&registry) {
            self.report(&["registry"], problem);
        }
        if let Some(baseline) = &raw.verify {
            self.verify_paths(baseline, &["verify"]);
        }
        if let Some(platforms) = &raw.platforms {
            self.platforms(&["platforms"], platforms);
        }
        let mut images = BTreeMap::new();
        for (name, image) in &raw.images {
            if let Some(image) = self.image(name, image, raw.verify.as_ref(), raw.platforms.as_deref()) {
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

    fn image(
        &mut self,
        name: &str,
        r: &RawImage,
        baseline: Option<&RawVerify>,
        default_platforms: Option<&[String]>,
    ) -> Option<Image> {
        let key = |field: &'static str| ["images", name, field];
        let before = self.problems.len();
        if let Some(problem) = oci::name_problem(name) {
            self.report(&["images", name], problem);
        }
        let version = self.version(name, &r.version);
        let dockerfile = self.existing_path(&r.dockerfile, &key("dockerfile"), PathKind::File);
        let context = match &r.context {
            Some(context) => self.existing_path(context, &key("context"), PathKind::Dir),
            None => Some(self.dir.to_path_buf()),
        };
        self.build_args_and_platforms(name, r);
        if let Some(own) = &r.verify {
            self.verify_paths(own, &key("verify"));
        }
        let base_support_ends = r.base_support_ends.as_ref().and_then(|w| self.support_ends(name, w));
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
            platforms: r.platforms.as_deref().or(default_platforms).unwrap_or_default().to_vec(),
            verify: merge_verify(baseline, r.verify.as_ref()),
            base_support_ends,
        })
    }

    fn version(&mut self, name: &str, written: &str) -> Option<semver::Version> {
        let key = ["images", name, "version"];
        match semver::Version::parse(written) {
            Ok(v) if !v.build.is_empty() => {
                let message = format!(
                    "`{v}` has build metadata (`+{}`), which cannot be part of a tag: drop it",
                    v.build
                );
                self.report(&key, message);
                None
            }
            Ok(v) => {
                if let Some(problem) = oci::tag_problem(&format!("v{v}")) {
                    self.report(&key, problem);
                }
                Some(v)
            }
            Err(e) => {
                let message =
                    format!("`{written}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. 3.18.0): {e}");
                self.report(&key, message);
                None
            }
        }
    }

    fn build_args_and_platforms(&mut self, name: &str, r: &RawImage) {
        for arg in r.build_args.keys() {
            let valid = arg.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.report(
                    &["images", name, "build_args"],
                    format!("`{arg}` is not a build argument name (letters, digits and `_`)"),
                );
            }
        }
        if let Some(platforms) = &r.platforms {
            self.platforms(&["images", name, "platforms"], platforms);
        }
    }

    /// A list of `os/arch[/variant]`, each once.
    fn platforms(&mut self, key: &[&str], platforms: &[String]) {
        let mut seen: Vec<Platform> = Vec::new();
        for written in platforms {
            match Platform::parse(written) {
                None => self.report(
                    key,
                    format!("`{written}` is not a platform: write OS/ARCH[/VARIANT], e.g. linux/amd64"),
                ),
                Some(p) if seen.contains(&p) => self.report(key, format!("`{written}` is listed twice")),
                Some(p) if p.os != "linux" => self
                    .report(key, format!("`{written}`: only linux images are built here (linux/{})", p.arch)),
                Some(p) if p.machine().is_none() => {
                    let hint = match p.arch.as_str() {
                        "aarch64" => "linux/arm64".to_string(),
                        "x86_64" | "x86-64" => "linux/amd64".to_string(),
                        "armhf" | "armv7" => "linux/arm/v7".to_string(),
                        _ => "one of amd64, arm64, arm, 386, ppc64le, s390x, riscv64".to_string(),
                    };
                    self.report(key, format!("`{written}` is not an architecture OCI names: write {hint}"))
                }
                Some(p) => seen.push(p),
            }
        }
    }

    /// `base_support_ends`: a TOML date, unquoted.
    fn support_ends(&mut self, name: &str, written: &toml::Value) -> Option<SupportEnds> {
        let date = match written {
            toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
                SupportEnds::parse(&d.to_string())
            }
            _ => None,
        };
        if date.is_none() {
            let what = match written {
                toml::Value::String(text) => format!("\"{text}\" (a string)"),
                toml::Value::Datetime(d) => format!("`{d}`"),
                toml::Value::Integer(_) => "an integer".to_string(),
                toml::Value::Array(_) => "an array".to_string(),
                other => format!("a {}", other.type_str()),
            };
            self.report(
                &["images", name, "base_support_ends"],
                format!("{what} is not a date: write the day support ends, unquoted, e.g. 2027-11-01"),
            );
        }
        date
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
