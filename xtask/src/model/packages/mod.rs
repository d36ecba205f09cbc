//! The packages an image holds, read from its exported files without running it: Alpine's apk
//! database, Python distributions, npm packages and (through an rpm program, see sys/rpm.rs)
//! the RPM database. Pure: the files come from sys/export.rs.

use crate::model::text;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

pub mod apk;
pub mod npm;
pub mod python;
pub mod rpm;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Apk,
    Python,
    Npm,
    Rpm,
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ecosystem::Apk => "apk",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
            Ecosystem::Rpm => "rpm",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// As the package declares it (an SPDX expression or free text); None when it says nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// apk's origin (the source package), rpm's source rpm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The file it was read from.
    pub source: String,
}

impl Package {
    /// A package of a language ecosystem (no architecture, no origin), read from `source`.
    pub fn language(
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
        license: Option<String>,
        source: &str,
    ) -> Package {
        Package {
            ecosystem,
            name: name.to_string(),
            version: version.to_string(),
            license,
            origin: None,
            arch: None,
            source: source.to_string(),
        }
    }

    /// Its package URL (github.com/package-url/purl-spec); `distro` names the apk and rpm
    /// namespace (os-release's ID: alpine, rhel).
    pub fn purl(&self, distro: &str) -> String {
        let mut qualifiers = Vec::new();
        if let Some(arch) = &self.arch {
            qualifiers.push(format!("arch={}", encode(arch)));
        }
        // Without an os-release, the distribution each package manager belongs to.
        let vendor = |fallback: &str| encode(if distro.is_empty() { fallback } else { distro });
        let base = match self.ecosystem {
            Ecosystem::Apk => {
                format!("pkg:apk/{}/{}@{}", vendor("alpine"), encode(&self.name), encode(&self.version))
            }
            // The purl spec puts an rpm's epoch in a qualifier, not in the version.
            Ecosystem::Rpm => {
                let (epoch, version) = match self.version.split_once(':') {
                    Some((epoch, version)) if epoch.bytes().all(|b| b.is_ascii_digit()) => {
                        (Some(epoch), version)
                    }
                    _ => (None, self.version.as_str()),
                };
                qualifiers.extend(epoch.map(|e| format!("epoch={e}")));
                format!("pkg:rpm/{}/{}@{}", vendor("redhat"), encode(&self.name), encode(version))
            }
            Ecosystem::Python => {
                format!("pkg:pypi/{}@{}", encode(&python::normalise(&self.name)), encode(&self.version))
            }
            Ecosystem::Npm => {
                let name = match self.name.split_once('/') {
                    Some((scope, name)) => format!("{}/{}", encode(scope), encode(name)),
                    None => encode(&self.name),
                };
                format!("pkg:npm/{name}@{}", encode(&self.version))
            }
        };
        match qualifiers.is_empty() {
            true => base,
            false => format!("{base}?{}", qualifiers.join("&")),
        }
    }
}

/// A damaged line as an error quotes it: at most 60 characters, so that junk in a database
/// never floods a log or an annotation.
fn excerpt(line: &str) -> String {
    let mut short: String = line.chars().take(60).collect();
    if short.len() < line.len() {
        short.push_str("...");
    }
    format!("{short:?}")
}

/// Percent-encoding of a purl segment: everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where the RPM database lives: the Berkeley DB of RHEL 8 and earlier, the SQLite one after.
pub const RPM_DATABASES: [&str; 3] =
    ["/var/lib/rpm/Packages", "/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite"];

/// Whether the exported file at `path` is one the package readers need.
pub fn wanted(path: &str) -> bool {
    // Under any folder: a merged /usr stores /lib/apk/db/installed as /usr/lib/apk/db/installed,
    // and the reader finds it through the link (sys/export.rs, `add_linked_names`).
    path.ends_with(apk::DATABASE)
        || path == "/etc/os-release"
        || path == "/usr/lib/os-release"
        || RPM_DATABASES.contains(&path)
        || python::is_metadata(path)
        || npm::is_manifest(path)
}

/// Whether a file elsewhere may hold a package database's data under a hard link (uv, for
/// one, links installed files from its cache): docker export stores such data once, under
/// whichever name comes first, so files of these names are kept wherever they are.
pub fn may_be_linked_to(path: &str) -> bool {
    matches!(path.rsplit('/').next(), Some("METADATA" | "PKG-INFO" | "package.json"))
}

/// What `read` found: the packages, and the distribution's ID (for package URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    pub distro: String,
    pub packages: Vec<Package>,
}

/// The packages in `files` (path, contents), sorted; an RPM database is left to the caller.
/// A damaged file is an error that names it.
pub fn read(files: &[(String, Vec<u8>)]) -> anyhow::Result<Found> {
    let mut packages = Vec::new();
    let mut distro = String::new();
    for (path, bytes) in files {
        let text = || String::from_utf8_lossy(bytes);
        if path == apk::DATABASE {
            packages.extend(apk::parse(path, &text())?);
        } else if python::is_metadata(path) {
            packages.extend(python::parse(path, &text())?);
        } else if npm::is_manifest(path) {
            packages.extend(npm::parse(path, bytes)?);
        } else if path.ends_with("os-release") && distro.is_empty() {
            distro = os_release_id(&text());
        }
    }
    packages.sort();
    packages.dedup();
    Ok(Found { distro, packages })
}

/// What to say of an image of a distribution this tool knows whose package database is not in
/// `files`: listing no package for it would be silently wrong.
pub fn missing_database(distro: &str, files: &[(String, Vec<u8>)]) -> Option<String> {
    let has = |paths: &[&str]| files.iter().any(|(p, _)| paths.contains(&p.as_str()));
    let (manager, databases): (&str, &[&str]) = match distro {
        "alpine" => ("apk", &[apk::DATABASE]),
        "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" => ("rpm", &RPM_DATABASES),
        _ => return None,
    };
    (!has(databases)).then(|| {
        format!(
            "its os-release says {distro}, but it holds no {manager} database ({}): its {manager} packages are not listed",
            databases.join(", ")
        )
    })
}

/// os-release's ID (`alpine`, `rhel`), unquoted.
fn os_release_id(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .unwrap_or_default()
}

/// The key a package is compared by between two images: its ecosystem and name.
type Key = (Ecosystem, String);

/// How two package sets differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `name old -> new` (versions joined by `,` where one name is installed more than once).
    pub upgraded: Vec<String>,
}

impl Diff {
    pub fn between(old: &[Package], new: &[Package]) -> Diff {
        let index = |packages: &[Package]| {
            let mut map: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
            for p in packages {
                map.entry((p.ecosystem, p.name.clone())).or_default().insert(p.version.clone());
            }
            map
        };
        let (old, new) = (index(old), index(new));
        // Names and versions are the image's text: one line each, whatever they hold.
        let label = |(eco, name): &Key| match eco {
            Ecosystem::Apk | Ecosystem::Rpm => text::one_line(name),
            _ => format!("{} ({eco})", text::one_line(name)),
        };
        let versions =
            |v: &BTreeSet<String>| v.iter().map(|v| text::one_line(v)).collect::<Vec<_>>().join(",");
        let mut diff = Diff::default();
        for (key, versions_now) in &new {
            match old.get(key) {
                None => diff.added.push(format!("{} {}", label(key), versions(versions_now))),
                Some(before) if before != versions_now => diff.upgraded.push(format!(
                    "{} {} -> {}",
                    label(key),
                    versions(before),
                    versions(versions_now)
                )),
                Some(_) => {}
            }
        }
        for (key, before) in &old {
            if !new.contains_key(key) {
                diff.removed.push(format!("{} {}", label(key), versions(before)));
            }
        }
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.upgraded.is_empty()
    }

    /// One line: the first change in full, then how many more (`openssl 3.1.4-r1 -> 3.1.4-r5 (+2 more)`).
    pub fn summary(&self) -> String {
        let all: Vec<String> = self
            .upgraded
            .iter()
            .cloned()
            .chain(self.added.iter().map(|a| format!("+{a}")))
            .chain(self.removed.iter().map(|r| format!("-{r}")))
            .collect();
        match all.as_slice() {
            [] => "no change".into(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(eco: Ecosystem, name: &str, version: &str) -> Package {
        Package {
            ecosystem: eco,
            name: name.into(),
            version: version.into(),
            license: None,
            origin: None,
            arch: None,
            source: "/x".into(),
        }
    }

    #[test]
    fn package_urls_follow_the_purl_spec() {
        let mut musl = package(Ecosystem::Apk, "musl", "1.2.5-r10");
        musl.arch = Some("x86_64".into());
        assert_eq!(musl.purl("alpine"), "pkg:apk/alpine/musl@1.2.5-r10?arch=x86_64");
        assert_eq!(musl.purl(""), "pkg:apk/alpine/musl@1.2.5-r10?arch=x86_64");
        assert_eq!(package(Ecosystem::Npm, "@babel/core", "7.24.0").purl(""), "pkg:npm/%40babel/core@7.24.0");
        assert_eq!(
            package(Ecosystem::Python, "Typing_Extensions", "4.9.0").purl(""),
            "pkg:pypi/typing-extensions@4.9.0"
        );
        assert_eq!(
            package(Ecosystem::Rpm, "openssl-libs", "1:1.1.1k-12.el8").purl("rhel"),
            "pkg:rpm/rhel/openssl-libs@1.1.1k-12.el8?epoch=1"
        );
    }

    #[test]
    fn diffs_say_what_was_added_removed_and_upgraded() {
        let old = [
            package(Ecosystem::Apk, "openssl", "3.1.4-r1"),
            package(Ecosystem::Apk, "zlib", "1.3-r0"),
            package(Ecosystem::Npm, "left-pad", "1.0.0"),
        ];
        let new = [
            package(Ecosystem::Apk, "openssl", "3.1.4-r5"),
            package(Ecosystem::Apk, "zlib", "1.3-r0"),
            package(Ecosystem::Python, "pip", "24.0"),
        ];
        let diff = Diff::between(&old, &new);
        assert_eq!(diff.upgraded, ["openssl 3.1.4-r1 -> 3.1.4-r5"]);
        assert_eq!(diff.added, ["pip (python) 24.0"]);
        assert_eq!(diff.removed, ["left-pad (npm) 1.0.0"]);
        assert_eq!(diff.summary(), "openssl 3.1.4-r1 -> 3.1.4-r5 (+2 more)");
        assert!(Diff::between(&new, &new).is_empty());
        assert_eq!(Diff::between(&new, &new).summary(), "no change");
    }

    #[test]
    fn reads_every_kind_of_database_from_the_exported_files() {
        let files = vec![
            ("/etc/os-release".to_string(), b"NAME=\"Alpine Linux\"\nID=alpine\n".to_vec()),
            (apk::DATABASE.to_string(), b"P:musl\nV:1.2.5-r10\nA:x86_64\nL:MIT\no:musl\n\n".to_vec()),
            (
                "/usr/lib/python3.12/site-packages/pip-24.0.dist-info/METADATA".to_string(),
                b"Metadata-Version: 2.1\nName: pip\nVersion: 24.0\nLicense: MIT\n".to_vec(),
            ),
            (
                "/app/node_modules/ms/package.json".to_string(),
                br#"{"name":"ms","version":"2.1.3","license":"MIT"}"#.to_vec(),
            ),
        ];
        let found = read(&files).unwrap();
        assert_eq!(found.distro, "alpine");
        let names: Vec<String> =
            found.packages.iter().map(|p| format!("{} {} {}", p.ecosystem, p.name, p.version)).collect();
        assert_eq!(names, ["apk musl 1.2.5-r10", "python pip 24.0", "npm ms 2.1.3"]);
        assert!(files.iter().all(|(p, _)| wanted(p)));
        assert!(!wanted("/etc/passwd"));
        assert_eq!(missing_database("alpine", &files), None);
        let without: Vec<(String, Vec<u8>)> =
            files.iter().filter(|(p, _)| p != apk::DATABASE).cloned().collect();
        assert_eq!(
            missing_database("alpine", &without).as_deref(),
            Some("its os-release says alpine, but it holds no apk database (/lib/apk/db/installed): its apk packages are not listed")
        );
        assert!(missing_database("rhel", &files).unwrap().contains("no rpm database"));
        assert_eq!(missing_database("debian", &files), None);
    }
}
