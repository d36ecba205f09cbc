//! End to end: a publish ended by a signal in the middle of a push, on the real engine and a
//! registry of the test's own. Every signal that ends a run in ordinary life (a closed
//! terminal's SIGHUP among them) is handled like Ctrl-C; SIGKILL, which nothing can handle,
//! still leaves no push running on its own.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{busybox_base, docker_cli, require_engine, xtask, Registry, TempDir};

/// The command lines of the processes now running that contain `needle`.
fn running(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| support::alive(&e.file_name().to_string_lossy()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn exists(reference: &str) -> bool {
    Command::new(docker_cli())
        .args(["image", "inspect", reference])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts `publish` of one image whose layer is large enough (random bytes, which compress to
/// nothing less) that its push takes a few seconds, and returns once `docker push` runs.
fn publish_until_the_push(registry: &Registry, dir: &TempDir) -> (Child, String) {
    dir.write(
        "Dockerfile-big",
        &format!("FROM {}\nRUN busybox head -c 150000000 /dev/urandom > /big\n", busybox_base()),
    );
    let inv = dir.write(
        "images.toml",
        &format!(
            "registry = \"{}\"\n[images.big]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-big\"\n",
            registry.ns()
        ),
    );
    let unique = format!("{}/big:v1.0.0_1", registry.ns());
    let log = |name: &str| Stdio::from(std::fs::File::create(dir.path().join(name)).unwrap());
    let child = xtask()
        .args(["publish", "--build-id", "1", "--jobs", "1", "--inventory"])
        .arg(inv)
        .stdout(log("stdout"))
        .stderr(log("stderr"))
        .spawn()
        .unwrap();
    let push = format!("push {unique}");
    wait_until("docker push", Duration::from_secs(180), || !running(&push).is_empty());
    (child, unique)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn a_hang_up_mid_push_stops_it_says_so_and_leaves_no_tag_that_lies() {
    if !require_engine() {
        return;
    }
    for signal in ["HUP", "QUIT"] {
        let registry = Registry::start();
        let dir = TempDir::new("signals");
        let (mut child, unique) = publish_until_the_push(&registry, &dir);
        std::thread::sleep(Duration::from_millis(300));
        let kill =
            Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        let (stdout, stderr) = (read(dir.path(), "stdout"), read(dir.path(), "stderr"));
        assert!(!status.success(), "{signal}: {stdout}{stderr}");
        assert!(stderr.contains("interrupted by a signal"), "{signal}: {stderr}");
        // The push was printed as it started, before the signal.
        assert!(stdout.contains(&format!(" push {unique}")), "{signal}: {stdout}");
        assert!(running(&format!("push {unique}")).is_empty(), "{signal}: a push outlived the run");
        // The moving tags never moved; the unique one is in the registry only if whole, and in
        // the engine only if in the registry.
        let tags = registry.tags(&registry.repo("big"));
        assert!(!tags.iter().any(|t| t == "latest" || t == "v1.0.0"), "{signal}: {tags:?}");
        let pushed = tags.iter().any(|t| t == "v1.0.0_1");
        assert_eq!(
            exists(&unique),
            pushed,
            "{signal}: the local {unique} disagrees with the registry ({tags:?})"
        );
        assert!(!exists(&format!("{}/big:latest", registry.ns())), "{signal}");
        if !pushed {
            assert!(
                stderr.contains("shows up in the registry, it holds this run's image"),
                "{signal}: {stderr}"
            );
        }
    }
}

#[test]
fn a_publish_killed_mid_push_leaves_no_push_running() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("signals");
    let (mut child, unique) = publish_until_the_push(&registry, &dir);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel ends the push with the tool (its parent-death signal): at once, not when the
    // push would have finished.
    let push = format!("push {unique}");
    wait_until("the push's end", Duration::from_secs(1), || running(&push).is_empty());
    // Nothing goes on behind the dead run: the registry stays as it was a moment later.
    let tags = registry.tags(&registry.repo("big"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(registry.tags(&registry.repo("big")), tags);
    assert!(!tags.iter().any(|t| t == "latest" || t == "v1.0.0"), "{tags:?}");
}
