//! images.toml -> a validated `Inventory`. Every rule of the inventory lives here.
//!
//! Paths are relative to the inventory's folder, so an inventory anywhere on disk works. Every
//! problem names the file, the key and the line: TOML's own errors carry a position, and the
//! line of a key our rules reject is found in the text (see `locate`), which spares wrapping
//! every field in `toml::Spanned` and the compile time that costs.

use crate::model::sources::Sources;
mod validate;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use validate::{line_of_offset, Validator};
pub use validate::{Exists, PathKind};

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
    /// The platforms it is built and published for, as one index (its own `platforms`, else
    /// the inventory's); empty means the engine's own platform and a single manifest.
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
    /// The platforms every image is built for, unless it names its own.
    platforms: Option<Vec<String>>,
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
    platforms: Option<Vec<String>>,
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

#[cfg(test)]
mod tests {
    use super::validate::{dotted, locate};
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
