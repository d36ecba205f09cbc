//! What an image is, for the question "did this rebuild change it?": every file (path, type,
//! mode, owner, size, content digest, link target, extended attributes such as capabilities) and the configuration a container starts
//! with. Two images are the same when both agree, leaving out what differs on every build by
//! nature: modification times (never recorded here), the build-time labels, and the few fields
//! `normalised` blanks. Pure: the run reads the images (run/inspect.rs) and hands the facts in.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::rebuild::{BASE_DIGEST, REF_NAME, REVISION, SOURCES};

/// One entry of an image's file system, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `f` file (a hard link counts as the file it links to), `d` folder, `l` symbolic link,
    /// `o` anything else (devices, fifos).
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// The SHA-256 of a file's content (after `normalised`), hex; empty for the rest.
    pub digest: String,
    /// A symbolic link's target.
    pub link: String,
    /// Its extended attributes: file capabilities (`security.capability`) grant privileges as a
    /// setuid bit does.
    pub xattrs: String,
}

/// Every entry of an image's file system, by absolute path.
pub type Tree = BTreeMap<String, Node>;

/// What an image holds and starts with: what two images are compared on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    pub files: Tree,
    pub config: Config,
}

impl Content {
    /// What differs from `before`, one line per kind (`content: /a, /b (+3 more)`,
    /// `config: user, env`); empty when the two are the same image.
    pub fn differences(&self, before: &Content) -> Vec<String> {
        let mut lines = Vec::new();
        let files = differences(&before.files, &self.files);
        if !files.is_empty() {
            lines.push(format!("content: {}", first_few(&files, 5)));
        }
        let config = self.config.differences(&before.config);
        if !config.is_empty() {
            lines.push(format!("config: {}", config.join(", ")));
        }
        lines
    }
}

/// Whether `path`'s content holds a field that differs on every build, so that it must be read
/// whole and passed through `normalised` before its digest is taken.
pub fn volatile(path: &str) -> bool {
    SHADOW.contains(&path) || path.ends_with(".pyc")
}

const SHADOW: [&str; 2] = ["/etc/shadow", "/etc/shadow-"];

/// `content` of `path` with the fields that differ on every build by nature blanked:
/// - /etc/shadow (and its backup): each account's day of last password change (the third
///   field), which `adduser` sets to the day of the build, so a weekly rebuild that adds a user
///   would otherwise always differ;
/// - a `.pyc` file checked by its source's timestamp (flags 0): the source's modification time
///   it records (bytes 8 to 11), which an install sets to the moment of the build.
pub fn normalised(path: &str, content: &[u8]) -> Vec<u8> {
    if SHADOW.contains(&path) {
        let text = String::from_utf8_lossy(content);
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let mut fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 2 {
                fields[2] = "";
            }
            out.push_str(&fields.join(":"));
        }
        return out.into_bytes();
    }
    let mut content = content.to_vec();
    if path.ends_with(".pyc") && content.len() >= 16 && content[4..8] == [0, 0, 0, 0] {
        content[8..12].fill(0);
    }
    content
}

/// The paths whose entries differ between `before` and `now`: added, removed or changed, in
/// path order.
pub fn differences(before: &Tree, now: &Tree) -> Vec<String> {
    let mut paths: Vec<String> = now
        .iter()
        .filter(|(path, node)| before.get(*path) != Some(*node))
        .map(|(path, _)| path.clone())
        .chain(before.keys().filter(|path| !now.contains_key(*path)).cloned())
        .collect();
    paths.sort();
    paths
}

/// The configuration a container of the image starts with, as `docker image inspect` gives it
/// under `.Config`. Fields that say how the image was made (Image, Hostname, ...) are not read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub shell: Option<Vec<String>>,
}

/// Labels every build sets anew: when it ran, from which commit, as which unique tag, on which
/// digest of its base and build images. What they describe is compared through the files.
const BUILD_TIME_LABELS: [&str; 5] =
    ["org.opencontainers.image.created", REVISION, REF_NAME, BASE_DIGEST, SOURCES];

impl Config {
    /// Reads `docker image inspect --format '{{json .Config}}'`.
    pub fn parse(json: &str) -> anyhow::Result<Config> {
        // `null` for an image without any configuration.
        let value: Option<Config> = serde_json::from_str(json.trim())
            .map_err(|e| anyhow::anyhow!("cannot read an image's configuration: {e}"))?;
        Ok(value.unwrap_or_default())
    }

    /// The names of the settings that differ between `before` and `self`: `user`, `env`,
    /// `label org.opencontainers.image.version`, ...
    pub fn differences(&self, before: &Config) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, differs: bool| {
            if differs {
                out.push(name.to_string());
            }
        };
        // An empty list and none start a container alike.
        let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        let map = |v: &Option<BTreeMap<String, serde_json::Value>>| v.clone().unwrap_or_default();
        field("user", self.user != before.user);
        field("env", list(&self.env) != list(&before.env));
        field("entrypoint", list(&self.entrypoint) != list(&before.entrypoint));
        field("cmd", list(&self.cmd) != list(&before.cmd));
        field("workdir", self.working_dir != before.working_dir);
        field("ports", map(&self.exposed_ports) != map(&before.exposed_ports));
        field("volumes", map(&self.volumes) != map(&before.volumes));
        field("stop signal", self.stop_signal != before.stop_signal);
        field("healthcheck", self.healthcheck != before.healthcheck);
        field("onbuild", list(&self.on_build) != list(&before.on_build));
        field("shell", list(&self.shell) != list(&before.shell));
        let labels = |c: &Config| -> BTreeMap<String, String> {
            let mut labels = c.labels.clone().unwrap_or_default();
            labels.retain(|k, _| !BUILD_TIME_LABELS.contains(&k.as_str()));
            labels
        };
        let (now, then) = (labels(self), labels(before));
        for key in now.keys().chain(then.keys().filter(|k| !now.contains_key(*k))) {
            if now.get(key) != then.get(key) {
                out.push(format!("label {key}"));
            }
        }
        out
    }
}

/// `a, b, c (+N more)`: the first few of `items`, and how many are left out.
pub fn first_few(items: &[String], few: usize) -> String {
    let shown = items.iter().take(few).cloned().collect::<Vec<_>>().join(", ");
    match items.len().saturating_sub(few) {
        0 => shown,
        more => format!("{shown} (+{more} more)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(digest: &str) -> Node {
        Node {
            kind: 'f',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 3,
            digest: digest.into(),
            link: String::new(),
            xattrs: String::new(),
        }
    }

    #[test]
    fn every_attribute_of_an_entry_counts_and_added_and_removed_paths_too() {
        let before: Tree = [("/a", file("1")), ("/b", file("2")), ("/gone", file("3"))]
            .into_iter()
            .map(|(p, n)| (p.to_string(), n))
            .collect();
        let mut now = before.clone();
        assert!(differences(&before, &now).is_empty());
        now.remove("/gone");
        now.insert("/new".into(), file("4"));
        now.get_mut("/a").unwrap().digest = "9".into();
        assert_eq!(differences(&before, &now), ["/a", "/gone", "/new"]);
        for change in [
            |n: &mut Node| n.mode = 0o4755,
            |n: &mut Node| n.uid = 1000,
            |n: &mut Node| n.gid = 1000,
            |n: &mut Node| n.size = 4,
            |n: &mut Node| n.kind = 'l',
            |n: &mut Node| n.link = "elsewhere".into(),
            |n: &mut Node| n.xattrs = "security.capability=0100000200200000".into(),
        ] {
            let mut now = before.clone();
            change(now.get_mut("/b").unwrap());
            assert_eq!(differences(&before, &now), ["/b"]);
        }
    }

    #[test]
    fn the_day_of_a_password_change_and_a_pyc_source_time_are_left_out() {
        let monday = b"root:!:20400:0:99999:7:::\nsbl:!:20400:0:99999:7:::\n";
        let sunday = b"root:!:20406:0:99999:7:::\nsbl:!:20406:0:99999:7:::\n";
        assert!(volatile("/etc/shadow") && volatile("/usr/lib/python3.12/x.cpython-312.pyc"));
        assert!(!volatile("/etc/passwd"));
        assert_eq!(normalised("/etc/shadow", monday), normalised("/etc/shadow", sunday));
        // Anything else in the file still counts: a password, an account.
        let locked_differently = b"root:*:20406:0:99999:7:::\nsbl:!:20406:0:99999:7:::\n";
        assert_ne!(normalised("/etc/shadow", monday), normalised("/etc/shadow", locked_differently));
        let pyc = |time: u8, body: u8| {
            [&[0x33, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, time, 1, 2, 3, 9, 0, 0, 0][..], &[body]].concat()
        };
        assert_eq!(normalised("/x.pyc", &pyc(1, 7)), normalised("/x.pyc", &pyc(2, 7)));
        assert_ne!(normalised("/x.pyc", &pyc(1, 7)), normalised("/x.pyc", &pyc(1, 8)));
        // A hash-checked .pyc (flags 1) records no time: nothing is blanked.
        let mut checked = pyc(1, 7);
        checked[4] = 1;
        assert_eq!(normalised("/x.pyc", &checked), checked);
        assert_eq!(normalised("/etc/passwd", b"x"), b"x");
    }

    #[test]
    fn configurations_differ_by_what_a_container_starts_with_not_by_build_time_labels() {
        let json = r#"{"User":"sbl","Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/","Image":"sha256:parent",
            "Labels":{"org.opencontainers.image.created":"2026-12-01T05:00:00Z","org.opencontainers.image.version":"1.0.0",
            "org.opencontainers.image.revision":"abc","org.opencontainers.image.ref.name":"v1.0.0_7",
            "org.opencontainers.image.base.digest":"sha256:aaa","gov.cfpb.images.build-sources":"x@sha256:1"}}"#;
        let before = Config::parse(json).unwrap();
        let rebuilt = Config::parse(
            &json
                .replace("2026-12-01T05:00:00Z", "2026-12-08T05:00:00Z")
                .replace("abc", "def")
                .replace("v1.0.0_7", "v1.0.0_8")
                .replace("sha256:aaa", "sha256:bbb")
                .replace("sha256:parent", "sha256:other")
                .replace("x@sha256:1", "x@sha256:2"),
        )
        .unwrap();
        assert!(rebuilt.differences(&before).is_empty(), "{:?}", rebuilt.differences(&before));
        let changed = Config::parse(
            &json
                .replace("\"sbl\"", "\"root\"")
                .replace("PATH=/bin", "PATH=/usr/bin")
                .replace("1.0.0\"", "1.0.1\""),
        )
        .unwrap();
        assert_eq!(changed.differences(&before), ["user", "env", "label org.opencontainers.image.version"]);
        assert_eq!(Config::parse("null").unwrap(), Config::default());
        assert!(Config::parse("{").is_err());
    }

    #[test]
    fn a_few_and_how_many_more() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        assert_eq!(first_few(&items, 2), "a, b (+3 more)");
        assert_eq!(first_few(&items, 5), "a, b, c, d, e");
        assert_eq!(first_few(&[], 3), "");
    }
}
