//! Names of one test's own. Every image, tag and container an end-to-end test makes carries a
//! token that no other test or run shares, so no test can read what another (or an earlier run)
//! left behind; when the test ends, everything under the token leaves the engine again.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct OwnNames {
    token: String,
    /// The clients whose stores the test used: the docker engine, and podman's where it did.
    clients: Vec<String>,
}

impl OwnNames {
    pub fn new() -> OwnNames {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        OwnNames {
            token: format!("t{}x{n}x{nanos:x}", std::process::id()),
            clients: vec![super::docker_cli()],
        }
    }

    /// Lowercase letters and digits: a path component of any image name.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Also clears podman's own image store at the end.
    pub fn also_podman(&mut self) {
        self.clients.push("podman".into());
    }

    /// `xtask-test/<token>/<name>`: an image name of this test's own, outside any registry.
    pub fn image(&self, name: &str) -> String {
        format!("xtask-test/{}/{name}", self.token)
    }
}

impl Default for OwnNames {
    fn default() -> OwnNames {
        OwnNames::new()
    }
}

impl Drop for OwnNames {
    fn drop(&mut self) {
        for client in &self.clients {
            remove_everything_named(client, &self.token);
        }
    }
}

/// Removes the containers and images whose names hold `token`. Images go with their untagged
/// parents (no --no-prune), which are the layers their builds left.
fn remove_everything_named(client: &str, token: &str) {
    let lines = |args: &[&str]| -> Vec<String> {
        Command::new(client)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect())
            .unwrap_or_default()
    };
    let containers: Vec<String> = lines(&["ps", "-a", "--format", "{{.ID}} {{.Image}}"])
        .into_iter()
        .filter(|l| l.contains(token))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    if !containers.is_empty() {
        let _ = Command::new(client).args(["rm", "-f"]).args(&containers).output();
    }
    let mut references = Vec::new();
    for line in lines(&["images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"]) {
        let mut words = line.split_whitespace();
        let (Some(repository), Some(tag), Some(digest)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if !repository.contains(token) {
            continue;
        }
        // An image pulled by digest may have no tag, only its digest reference.
        if tag != "<none>" {
            references.push(format!("{repository}:{tag}"));
        }
        if digest != "<none>" {
            references.push(format!("{repository}@{digest}"));
        }
    }
    references.sort();
    references.dedup();
    if !references.is_empty() {
        let _ = Command::new(client).args(["image", "rm"]).args(&references).output();
    }
}
