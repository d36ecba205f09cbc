//! End to end: the real Docker engine and a real registry started by the test itself.
//! These tests fail (never skip) when no engine answers; see support::require_engine.

mod support;

use support::{busybox_base, docker_cli, fixture_inventory, require_engine, run, xtask, Registry, TempDir};

/// Images unique to one test, so tests sharing the engine never see each other's tags.
fn fixture(dir: &TempDir, registry: &Registry, prefix: &str) -> std::path::PathBuf {
    let names = [format!("{prefix}-base"), format!("{prefix}-child"), format!("{prefix}-quiet")];
    let child_parent = [names[0].as_str()];
    fixture_inventory(
        dir,
        &registry.ns(),
        busybox_base(),
        &[(&names[0], &[], true), (&names[1], &child_parent, true), (&names[2], &[], false)],
    )
}

#[test]
fn publish_leaves_exactly_three_tags_with_one_digest_per_pushed_image() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("e2e");
    let inv = fixture(&dir, &registry, "pub");
    let out = run(xtask()
        .args(["publish", "--build-id", "7", "--registry", &registry.ns(), "--inventory"])
        .arg(&inv)
        .env("GITHUB_SHA", "0123abc"))
    .ok();

    for name in ["pub-base", "pub-child"] {
        let repo = registry.repo(name);
        assert_eq!(registry.tags(&repo), ["latest", "v1.0.0", "v1.0.0_7"], "{name}");
        let digests: Vec<String> =
            ["v1.0.0_7", "v1.0.0", "latest"].iter().map(|t| registry.digest(&repo, t)).collect();
        assert!(digests.iter().all(|d| d == &digests[0]), "{name}: {digests:?}");
        assert!(out.stdout.contains(&digests[0]), "the report shows the pushed digest:\n{}", out.stdout);
        let config = registry.config(&repo, "v1.0.0_7");
        let labels = &config["config"]["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], "1.0.0");
        assert_eq!(labels["org.opencontainers.image.title"], name);
        assert_eq!(labels["org.opencontainers.image.revision"], "0123abc");
    }
    assert!(registry.tags(&registry.repo("pub-quiet")).is_empty(), "push = false images are never pushed");
    assert!(registry.tags(&registry.repo("test")).is_empty(), "publish does not push the test package");
    assert!(out.stdout.contains("pub-quiet: built and tagged, not pushed (push = false)"), "{}", out.stdout);

    // The child was built FROM the parent built in this run.
    let child = format!("{}/pub-child:v1.0.0_7", registry.ns());
    let cat = std::process::Command::new(docker_cli())
        .args(["run", "--rm", &child, "cat", "/pub-base.txt"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout).trim(),
        "pub-base",
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
}

#[test]
fn build_makes_local_images_and_pushes_nothing() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("e2e");
    let inv = fixture(&dir, &registry, "loc");
    run(xtask().args(["build", "loc-child", "--inventory"]).arg(&inv)).ok();
    let reference = format!("{}/loc-child:local-v1.0.0", registry.ns());
    let inspect =
        std::process::Command::new(docker_cli()).args(["image", "inspect", &reference]).output().unwrap();
    assert!(inspect.status.success(), "{reference} was not built");
    assert!(
        registry.tags(&registry.repo("loc-base")).is_empty()
            && registry.tags(&registry.repo("loc-child")).is_empty()
    );
}

#[test]
fn login_then_publish_to_a_registry_with_auth() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start_with_auth("robot", "pa55-word");
    let dir = TempDir::new("e2e");
    let inv = fixture(&dir, &registry, "auth");
    // Credentials go to a config folder of this test's own, not the machine's.
    let config = TempDir::new("docker-config");
    let with_config = |cmd: &mut std::process::Command| {
        cmd.env("DOCKER_CONFIG", config.path());
    };

    // Not logged in: one clear error before anything builds.
    let mut publish = xtask();
    publish.args(["publish", "auth-base", "--build-id", "1", "--inventory"]).arg(&inv);
    with_config(&mut publish);
    let out = run(&mut publish).fails();
    assert!(out.stderr.contains("cargo xtask login"), "{}", out.stderr);
    assert!(!out.stdout.contains("==> build"), "nothing may build before access is known:\n{}", out.stdout);

    // A wrong token is refused and not echoed.
    let mut login = xtask();
    login.args(["login", "--username", "robot", "--inventory"]).arg(&inv).env("CR_PAT", "wrong-token");
    with_config(&mut login);
    let out = run(&mut login).fails();
    assert!(out.stderr.contains("docker login as robot (registry 127.0.0.1:"), "{}", out.stderr);
    // A 401 is not worth retrying.
    assert!(!out.all().contains("retry"), "{}", out.all());
    assert!(!out.all().contains("wrong-token"));

    let mut login = xtask();
    login.args(["login", "--username", "robot", "--inventory"]).arg(&inv).env("CR_PAT", "pa55-word");
    with_config(&mut login);
    let out = run(&mut login).ok();
    assert!(!out.all().contains("pa55-word"));

    let mut publish = xtask();
    publish.args(["publish", "auth-base", "--build-id", "1", "--inventory"]).arg(&inv);
    with_config(&mut publish);
    run(&mut publish).ok();
    assert_eq!(registry.tags(&registry.repo("auth-base")), ["latest", "v1.0.0", "v1.0.0_1"]);
}

/// ci-main and ci-pr as GitHub Actions runs them, against a registry that wants a login.
#[test]
fn ci_main_and_ci_pr_in_actions_agree_with_the_registry() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start_with_auth("octo", "workflow-token");
    let dir = TempDir::new("e2e");
    let inv = fixture(&dir, &registry, "ci");
    let config = TempDir::new("docker-config");
    let actions = |args: &[&str], event: &str| {
        let mut cmd = xtask();
        cmd.args(args)
            .arg("--inventory")
            .arg(&inv)
            .env("DOCKER_CONFIG", config.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", event)
            .env("GITHUB_RUN_NUMBER", "31")
            .env("GITHUB_RUN_ATTEMPT", "1")
            .env("GITHUB_ACTOR", "octo")
            .env("GITHUB_TOKEN", "workflow-token")
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_REPOSITORY", "team/base-images")
            .env("GITHUB_SHA", "c0ffee")
            .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"))
            .env("GITHUB_OUTPUT", dir.path().join("output.txt"));
        run(&mut cmd)
    };

    // A pull request pushes the test package only.
    let out = actions(&["ci-pr"], "pull_request").ok();
    assert!(!out.all().contains("workflow-token"));
    assert_eq!(registry.tags(&registry.repo("test")), ["do_not_use"]);
    for name in ["ci-base", "ci-child", "ci-quiet"] {
        assert!(registry.tags(&registry.repo(name)).is_empty(), "ci-pr pushed {name}");
    }

    // Main publishes; summary, outputs and registry name the same digests.
    let out = actions(&["ci-main"], "push").ok();
    assert!(!out.all().contains("workflow-token"));
    let output = std::fs::read_to_string(dir.path().join("output.txt")).unwrap();
    let published: serde_json::Value =
        serde_json::from_str(output.lines().find_map(|l| l.strip_prefix("published=")).unwrap()).unwrap();
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_eq!(published.as_array().unwrap().len(), 2, "{published}");
    for entry in published.as_array().unwrap() {
        let name = entry["image"].as_str().unwrap();
        let repo = registry.repo(name);
        assert_eq!(registry.tags(&repo), ["latest", "v1.0.0", "v1.0.0_31.1"]);
        let digest = registry.digest(&repo, "v1.0.0_31.1");
        assert_eq!(entry["digest"], digest.as_str());
        assert_eq!(registry.digest(&repo, "latest"), digest);
        assert!(summary.contains(&format!("`{digest}` | pushed |")), "{summary}");
        let labels = &registry.config(&repo, "latest")["config"]["Labels"];
        assert_eq!(labels["org.opencontainers.image.source"], "https://github.example/team/base-images");
        assert_eq!(labels["org.opencontainers.image.revision"], "c0ffee");
    }
    assert!(registry.tags(&registry.repo("ci-quiet")).is_empty());
    // Logged out at the end: the job's credentials are gone from the config.
    let stored = std::fs::read_to_string(config.path().join("config.json")).unwrap_or_default();
    assert!(stored.contains("auths") && !stored.contains(&registry.host()), "{stored}");
}

/// Starts `publish` with a base image whose build takes a few seconds, and stops the registry
/// once the build has started (after the preflight asked the registry). Returns the running
/// publish; the caller waits for it.
fn publish_with_outage(
    registry: &mut Registry,
    dir: &TempDir,
    prefix: &str,
    retries: &str,
) -> std::process::Child {
    let inv = fixture(dir, registry, prefix);
    let dockerfile = dir.path().join(format!("Dockerfile-{prefix}-base"));
    let text = std::fs::read_to_string(&dockerfile).unwrap() + "RUN sleep 4\n";
    std::fs::write(&dockerfile, text).unwrap();
    // --force: the comparison with the published image (which the outage also fails) only
    // informs then, so the outage reaches the pushes.
    let mut child = xtask()
        .args(["publish", &format!("{prefix}-base"), "--build-id", "9", "--force", "--inventory"])
        .arg(inv)
        .env("XTASK_RETRIES", retries)
        .env("XTASK_RETRY_BASE_MS", "1000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The build group opens after the preflight; wait for it, then take the registry away.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("==> build") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(60)).expect("publish never started building");
    registry.stop();
    child
}

#[test]
fn a_registry_back_within_the_retry_window_gets_everything() {
    if !require_engine() {
        return;
    }
    let mut registry = Registry::start();
    let dir = TempDir::new("e2e");
    let child = publish_with_outage(&mut registry, &dir, "flaky", "6");
    // Down while the build runs and the first pushes fail; back well inside the ~30 s window.
    std::thread::sleep(std::time::Duration::from_secs(8));
    registry.restart();
    let out = support::Run::of(child.wait_with_output().unwrap()).ok();
    assert!(out.stderr.contains("retry 1 of 6"), "no retry was logged:\n{}", out.stderr);
    eprintln!(
        "outage: {} retries logged before the registry came back",
        out.stderr.matches("; retry ").count()
    );
    assert_eq!(registry.tags(&registry.repo("flaky-base")), ["latest", "v1.0.0", "v1.0.0_9"]);
    let digest = registry.digest(&registry.repo("flaky-base"), "v1.0.0_9");
    assert_eq!(registry.digest(&registry.repo("flaky-base"), "latest"), digest);
}

#[test]
fn a_registry_that_stays_down_fails_with_the_retry_count_and_no_stray_latest() {
    if !require_engine() {
        return;
    }
    let mut registry = Registry::start();
    let dir = TempDir::new("e2e");
    let child = publish_with_outage(&mut registry, &dir, "down", "2");
    let out = support::Run::of(child.wait_with_output().unwrap()).fails();
    assert!(out.stderr.contains("after 2 retries"), "{}", out.stderr);
    assert!(out.stderr.contains("not fully pushed: down-base"), "{}", out.stderr);
    registry.restart();
    let tags = registry.tags(&registry.repo("down-base"));
    assert!(
        !tags.contains(&"latest".to_string()) || tags.len() == 3,
        "latest without its pinned tags: {tags:?}"
    );
}

/// With a client that has BuildKit (Debian's docker.io client, or any client with buildx), the
/// real engine builds with it, including FROM a base that exists only locally.
#[test]
fn buildkit_builds_on_the_real_engine() {
    if !require_engine() {
        return;
    }
    let client = ["/usr/bin/docker"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map_or(docker_cli(), String::from);
    let registry = Registry::start();
    let dir = TempDir::new("e2e");
    let inv = fixture(&dir, &registry, "bk");
    let out = run(xtask().args(["build", "bk-child", "--inventory"]).arg(&inv).env("DOCKER", &client)).ok();
    assert!(!out.stderr.contains("legacy builder"), "{client} offers no BuildKit:\n{}", out.stderr);
    assert!(out.stdout.contains("--progress=plain"), "{}", out.stdout);
    let child = format!("{}/bk-child:local-v1.0.0", registry.ns());
    let cat = std::process::Command::new(&client)
        .args(["run", "--rm", &child, "cat", "/bk-base.txt"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout).trim(), "bk-base");
}

/// One of three images fails to build on the real engine: publish fails, names it, and the
/// registry holds no tag of any of them, not even of the two that built.
#[test]
fn one_failed_build_of_three_leaves_the_registry_untouched() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("e2e");
    let inv = fixture(&dir, &registry, "fail");
    let dockerfile = dir.path().join("Dockerfile-fail-quiet");
    let text = std::fs::read_to_string(&dockerfile).unwrap() + "RUN echo failing on purpose && false\n";
    std::fs::write(&dockerfile, text).unwrap();
    // quiet is pushed too in this test, so that every image would have reached the registry.
    let toml = std::fs::read_to_string(&inv).unwrap().replace("push = false", "push = true");
    std::fs::write(&inv, toml).unwrap();
    let out =
        run(xtask().args(["publish", "--build-id", "3", "--keep-going", "--inventory"]).arg(&inv)).fails();
    assert!(out.stderr.contains("build of fail-quiet"), "{}", out.stderr);
    assert!(out.stderr.contains("Nothing was pushed. Built: fail-base, fail-child"), "{}", out.stderr);
    for name in ["fail-base", "fail-child", "fail-quiet"] {
        assert!(registry.tags(&registry.repo(name)).is_empty(), "{name} reached the registry");
    }
}

/// An image name with a `/` (a valid OCI path) works end to end: built, checked, pushed under
/// that path, and its SBOM written (in a folder of that name) naming the digest the registry
/// holds.
#[test]
fn an_image_name_with_a_slash_publishes_and_gets_its_sbom() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("e2e");
    dir.write("Dockerfile-team", &format!("FROM {}\nRUN echo team > /team.txt\n", busybox_base()));
    let inv = dir.write(
        "images.toml",
        &format!("registry = \"{}\"\n[images.\"team/base\"]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-team\"\n", registry.ns()),
    );
    let sboms = dir.path().join("sbom");
    run(xtask().args(["publish", "--build-id", "4", "--sbom-dir"]).arg(&sboms).arg("--inventory").arg(&inv))
        .ok();
    let repo = registry.repo("team/base");
    assert_eq!(registry.tags(&repo), ["latest", "v1.0.0", "v1.0.0_4"]);
    let digest = registry.digest(&repo, "v1.0.0_4");
    let sbom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sboms.join("team/base.spdx.json")).unwrap()).unwrap();
    assert_eq!(sbom["name"], format!("{}/team/base@{digest}", registry.ns()).as_str());
    support::validate_sboms(&sboms);
}
