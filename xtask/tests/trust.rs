//! Publishing against the real engine and Debian's docker-registry in the situations where it
//! once broke its promises: a registry reached by a host name, a child whose FROM names its
//! parent, a build id holding a status code, two publishes on one engine, and podman.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{
    add_buildx, busybox_base, docker_cli, fixture_inventory, has_buildx, loopback_name, podman_busybox_base,
    require_engine, require_program, run, xtask, Registry, Run, TempDir,
};

/// base, child (built on base) and quiet (push = false) under `namespace`, each prefixed.
fn fixture(dir: &TempDir, namespace: &str, prefix: &str, base: &str) -> PathBuf {
    let names = [format!("{prefix}-base"), format!("{prefix}-child"), format!("{prefix}-quiet")];
    let parent = [names[0].as_str()];
    fixture_inventory(
        dir,
        namespace,
        base,
        &[(&names[0], &[], true), (&names[1], &parent, true), (&names[2], &[], false)],
    )
}

fn append(path: &Path, text: &str) {
    let before = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, before + text).unwrap();
}

fn publish(inventory: &Path, build_id: &str, extra: &[&str]) -> Command {
    let mut cmd = xtask();
    cmd.args(["publish", "--build-id", build_id]).args(extra).arg("--inventory").arg(inventory);
    cmd
}

/// What `cat /marker` prints in `reference`, pulled from the registry first so the engine's
/// copy is the registry's.
fn marker(client: &str, reference: &str) -> String {
    let pull = Command::new(client).args(["pull", "--quiet", reference]).output().unwrap();
    assert!(pull.status.success(), "pull {reference}: {}", String::from_utf8_lossy(&pull.stderr));
    let out = Command::new(client).args(["run", "--rm", reference, "cat", "/marker"]).output().unwrap();
    assert!(out.status.success(), "run {reference}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The digest publish reported for `reference` (`  <reference>  <digest>` lines).
fn reported(out: &Run, reference: &str) -> Option<String> {
    out.stdout.lines().find_map(|l| l.trim().strip_prefix(&format!("{reference}  ")).map(str::to_string))
}

/// Case 1: rerunning a build id is refused and changes nothing, also when the engine reaches
/// the registry by a name other than a loopback literal (a name that resolves into its insecure
/// CIDRs, as a corporate plain-HTTP registry's does): the existence check must reach it the
/// same way as the engine, or it reads "absent" and the unique tag is overwritten.
#[test]
fn republishing_a_build_id_is_refused_and_changes_nothing_whatever_the_registry_is_called() {
    if !require_engine() {
        return;
    }
    for name in ["127.0.0.1".to_string(), loopback_name()] {
        let registry = Registry::start();
        let host = registry.ns_named(&name);
        let dir = TempDir::new("trust");
        let inv = fixture(&dir, &host, "named", busybox_base());
        run(&mut publish(&inv, "5", &["named-base"])).ok();
        let before = registry.digest(&registry.repo("named-base"), "v1.0.0_5");
        // Change the image so a rebuild would make a new digest.
        append(&dir.path().join("Dockerfile-named-base"), "RUN echo changed > /changed\n");
        let out = run(&mut publish(&inv, "5", &["named-base"])).fails();
        assert!(out.stderr.contains(&format!("{host}/named-base:v1.0.0_5 already exists")), "{}", out.stderr);
        for tag in ["v1.0.0_5", "v1.0.0", "latest"] {
            assert_eq!(
                registry.digest(&registry.repo("named-base"), tag),
                before,
                "{tag} moved (registry called {name})"
            );
        }
    }
}

/// Case 3: a child whose Dockerfile says `FROM <registry>/<parent>:latest` (or `:v<version>`)
/// is built on the parent built in the same run, with the legacy builder and with BuildKit,
/// also when an older parent is in the engine's store and the registry.
#[test]
fn a_child_whose_from_names_its_parent_builds_on_this_runs_parent() {
    if !require_engine() {
        return;
    }
    // Every way the tool builds: the legacy builder (DOCKER_BUILDKIT=0, as a user whose client
    // has buildx asks for it; a client without buildx gets it anyway), BuildKit through buildx
    // (the plugin in a DOCKER_CONFIG of its own, where the client lacks it), and the built-in
    // BuildKit of Debian's docker.io client (DOCKER_BUILDKIT=1).
    let buildx = TempDir::new("buildx-config");
    let mut ways: Vec<(String, Option<&Path>, &str)> = vec![(docker_cli(), None, "legacy builder")];
    if add_buildx(buildx.path()) {
        ways.push((docker_cli(), Some(buildx.path()), "BuildKit (docker buildx)"));
    }
    // A client from before docker 23 without buildx (Debian 12's docker.io) has BuildKit built in.
    let old_client = "/usr/bin/docker";
    if Path::new(old_client).exists() && !has_buildx(old_client, None) {
        ways.push((old_client.to_string(), None, "BuildKit (DOCKER_BUILDKIT=1)"));
    }
    if std::env::var("CI").is_ok() {
        assert!(ways.len() >= 2, "CI must try the legacy builder and buildx; it has {ways:?}");
    }
    for (n, (client, config, builder)) in ways.into_iter().enumerate() {
        let registry = Registry::start();
        let dir = TempDir::new("trust");
        let prefix = format!("from{n}");
        let inv = fixture(&dir, &registry.ns(), &prefix, busybox_base());
        for (tag, round) in [("latest", "one"), ("v1.0.0", "two")] {
            std::fs::write(
                dir.path().join(format!("Dockerfile-{prefix}-base")),
                format!("FROM {}\nRUN echo {round} > /marker\n", busybox_base()),
            )
            .unwrap();
            // FROM and COPY --from both name the parent; the child's own .dockerignore keeps
            // secret.txt out of its context.
            std::fs::write(
                dir.path().join(format!("Dockerfile-{prefix}-child")),
                format!(
                    "FROM {r}/{prefix}-base:{tag}\nCOPY --from={r}/{prefix}-base:{tag} /marker /copied\n\
                     COPY . /context/\nRUN echo child >> /marker\n",
                    r = registry.ns()
                ),
            )
            .unwrap();
            dir.write(&format!("Dockerfile-{prefix}-child.dockerignore"), "secret.txt\n");
            dir.write("secret.txt", "not for the image\n");
            let mut cmd = publish(&inv, round, &[&format!("{prefix}-child"), "--jobs", "1"]);
            cmd.env("DOCKER", &client);
            if builder == "legacy builder" {
                cmd.env("DOCKER_BUILDKIT", "0");
            }
            if let Some(config) = config {
                cmd.env("DOCKER_CONFIG", config);
            }
            let out = run(&mut cmd).ok();
            assert_eq!(
                builder == "legacy builder",
                out.stderr.contains("legacy builder"),
                "{builder}: {}",
                out.stderr
            );
            assert_eq!(
                builder == "BuildKit (docker buildx)",
                out.stdout.contains(" buildx build --load "),
                "{}",
                out.stdout
            );
            let child = format!("{}/{prefix}-child:v1.0.0_{round}", registry.ns());
            // Built on the base of this run, not on last round's in the store and the registry.
            assert_eq!(marker(&client, &child), format!("{round}\nchild"), "{builder}, FROM ...:{tag}");
            let cat = |path: &str| {
                let out = Command::new(&client).args(["run", "--rm", &child, "cat", path]).output().unwrap();
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            };
            assert_eq!(cat("/copied"), round, "{builder}: COPY --from took another base");
            if builder.starts_with("BuildKit") {
                assert_eq!(
                    cat("/context/secret.txt"),
                    "",
                    "BuildKit lost the Dockerfile's own .dockerignore"
                );
            }
            assert!(!out.all().contains("were not consumed"), "{}", out.all());
        }
    }
}

/// Case 3: a FROM naming a tag of the parent that the run does not produce, or a parent ARG
/// that no FROM uses, is refused before anything builds, by every building command.
#[test]
fn a_parent_the_run_cannot_build_on_is_refused_before_any_build() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("trust");
    let inv = fixture(&dir, &registry.ns(), "refuse", busybox_base());
    let child = dir.path().join("Dockerfile-refuse-child");
    for (dockerfile, expected) in [
        (format!("FROM {}/refuse-base:v0.9.0\n", registry.ns()), "which this run does not produce"),
        (
            format!("ARG REFUSE_BASE_IMAGE\nFROM {}\n", busybox_base()),
            "declares ARG REFUSE_BASE_IMAGE but no FROM builds on it",
        ),
    ] {
        std::fs::write(&child, dockerfile).unwrap();
        for args in [vec!["build"], vec!["publish", "--build-id", "1"], vec!["check"]] {
            let out = run(xtask().args(&args).arg("--inventory").arg(&inv)).fails();
            assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
            assert!(!out.stdout.contains("==> build"), "{args:?} built something:\n{}", out.stdout);
        }
    }
    assert!(registry.tags(&registry.repo("refuse-base")).is_empty());
}

/// Case 4: a build id such as a GitHub run number 1429 holds "429"; it must not read as a rate
/// limit (every question once retried with backoff, a warning each).
#[test]
fn a_build_id_holding_429_publishes_without_a_retry() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("trust");
    let inv = fixture(&dir, &registry.ns(), "rate", busybox_base());
    let start = std::time::Instant::now();
    let out = run(&mut publish(&inv, "1429.1", &[])).ok();
    assert!(!out.all().contains("retry"), "{}", out.all());
    eprintln!("publish with build id 1429.1: {:.1}s", start.elapsed().as_secs_f64());
    assert_eq!(registry.tags(&registry.repo("rate-base")), ["latest", "v1.0.0", "v1.0.0_1429.1"]);
}

/// Case 5: two publishes of the same images with different content, started together on one
/// engine. Each unique tag holds its own run's image, each run reports what the registry
/// holds, and the version tag and `latest` hold one run's image whole.
#[test]
fn two_publishes_on_one_engine_push_their_own_images() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let runs: Vec<(TempDir, PathBuf, &str)> = ["1", "2"]
        .into_iter()
        .map(|id| {
            let dir = TempDir::new("trust-twin");
            let inv = fixture(&dir, &registry.ns(), "twin", busybox_base());
            // Without the push = false image: the two runs would take its local tags from each
            // other, and the engine would keep the image left without one.
            let text = std::fs::read_to_string(&inv).unwrap();
            std::fs::write(&inv, text.split("\n[images.twin-quiet]").next().unwrap()).unwrap();
            append(&dir.path().join("Dockerfile-twin-base"), &format!("RUN echo run{id} > /marker\n"));
            append(&dir.path().join("Dockerfile-twin-child"), &format!("RUN echo child{id} >> /marker\n"));
            (dir, inv, id)
        })
        .collect();
    let started: Vec<_> = runs
        .iter()
        .map(|(_, inv, id)| {
            publish(inv, id, &["--jobs", "2"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Run> = started.into_iter().map(|c| Run::of(c.wait_with_output().unwrap()).ok()).collect();
    let host = registry.ns();
    for ((_, _, id), out) in runs.iter().zip(&outs) {
        let base = format!("{host}/twin-base:v1.0.0_{id}");
        let child = format!("{host}/twin-child:v1.0.0_{id}");
        assert_eq!(marker(&docker_cli(), &base), format!("run{id}"));
        assert_eq!(marker(&docker_cli(), &child), format!("run{id}\nchild{id}"));
        assert_eq!(
            reported(out, &base),
            Some(registry.digest(&registry.repo("twin-base"), &format!("v1.0.0_{id}"))),
            "{}",
            out.stdout
        );
    }
    // The moving tags hold one run's image: the same digest as that run's unique tag.
    for image in ["twin-base", "twin-child"] {
        for tag in ["v1.0.0", "latest"] {
            let held = registry.digest(&registry.repo(image), tag);
            let owner = ["1", "2"]
                .iter()
                .find(|id| registry.digest(&registry.repo(image), &format!("v1.0.0_{id}")) == held);
            assert!(owner.is_some(), "{image}:{tag} holds {held}, which no run pushed as its unique tag");
        }
    }

    // The same build id from two checkouts: one publishes, the other is refused, and the unique
    // tag holds the image of the one that published. Forced: one checkout's images equal what
    // the moving tags hold, and would otherwise not be pushed at all.
    let started: Vec<_> = runs
        .iter()
        .map(|(_, inv, _)| {
            publish(inv, "7", &["--force"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Run> = started.into_iter().map(|c| Run::of(c.wait_with_output().unwrap())).collect();
    let winners: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one run may publish build id 7:\n{}\n{}",
        outs[0].all(),
        outs[1].all()
    );
    let loser = &outs[1 - winners[0]];
    assert!(
        loser.stderr.contains("twin-base:v1.0.0_7 already exists")
            || loser.stderr.contains("twin-child:v1.0.0_7 already exists"),
        "{}",
        loser.stderr
    );
    // What the losing run pushed of that image is what it says: none of its tags (or nothing at
    // all, if the winner was out before the loser asked).
    assert!(
        loser.stderr.contains("None of the tags of twin-")
            || loser.stderr.contains("Nothing was built or pushed"),
        "{}",
        loser.stderr
    );
    let id = runs[winners[0]].2;
    assert_eq!(marker(&docker_cli(), &format!("{host}/twin-base:v1.0.0_7")), format!("run{id}"));
}

/// Case 7: podman as $DOCKER: login, publish with digests read back, verify, and a rerun of a
/// build id refused as existing. Podman reaches a plain-HTTP registry where registries.conf
/// says so, and so does the tool.
#[test]
fn podman_publishes_reads_back_and_refuses_a_rerun() {
    if !require_program("podman", "the podman end-to-end test") {
        return;
    }
    let mut registry = Registry::start_with_auth("pod", "pod-pa55");
    registry.names.also_podman();
    let dir = TempDir::new("trust-podman");
    let inv = fixture(&dir, &registry.ns(), "pod", podman_busybox_base());
    append(&inv, "\n[verify]\nabsent = [\"/bin/su\"]\n");
    let conf = dir.write(
        "registries.conf",
        &format!("[[registry]]\nlocation = \"{}\"\ninsecure = true\n", registry.host()),
    );
    let auth = dir.path().join("auth.json");
    let podman = |args: &[&str]| {
        let mut cmd = xtask();
        cmd.args(args)
            .arg("--inventory")
            .arg(&inv)
            .env("DOCKER", "podman")
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .env("REGISTRY_AUTH_FILE", &auth);
        cmd
    };
    let out = run(&mut podman(&["publish", "--build-id", "1", "--dry-run"])).ok();
    assert!(out.stdout.lines().any(|l| l.starts_with("podman build --file ")), "{}", out.stdout);
    assert!(!out.stdout.contains("DOCKER_BUILDKIT") && !out.stdout.contains("--no-prune"), "{}", out.stdout);

    // Without registries.conf's word that the registry is plain HTTP, podman would push over
    // TLS, and so the tool asks over TLS: it says what to do, without retrying for nothing.
    let none = dir.write("none.conf", "# no registries\n");
    let mut without_conf = podman(&["publish", "--build-id", "1"]);
    without_conf.env("CONTAINERS_REGISTRIES_CONF", &none);
    let out = run(&mut without_conf).fails();
    assert!(
        out.stderr.contains("answers in plain HTTP") && out.stderr.contains("insecure = true"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("retry"), "{}", out.stderr);
    let out = run(&mut podman(&["publish", "--build-id", "1"])).fails();
    assert!(out.stderr.contains("cargo xtask login"), "{}", out.stderr);
    run(podman(&["login", "--username", "pod"]).env("CR_PAT", "pod-pa55")).ok();
    let out = run(&mut podman(&["publish", "--build-id", "1"])).ok();
    assert!(out.stdout.contains("meets its hardening rules"), "{}", out.stdout);
    for image in ["pod-base", "pod-child"] {
        let repo = registry.repo(image);
        assert_eq!(registry.tags(&repo), ["latest", "v1.0.0", "v1.0.0_1"]);
        let digest = registry.digest(&repo, "v1.0.0_1");
        for tag in ["v1.0.0_1", "v1.0.0", "latest"] {
            let reference = format!("{}/{repo}:{tag}", registry.host());
            assert_eq!(reported(&out, &reference), Some(digest.clone()), "{reference}:\n{}", out.stdout);
        }
    }
    append(&dir.path().join("Dockerfile-pod-base"), "RUN echo changed > /changed\n");
    let out = run(&mut podman(&["publish", "--build-id", "1"])).fails();
    // Both unique tags exist, and both are named.
    assert!(out.stderr.contains("2 unique tags already exist: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("pod-base:v1.0.0_1 (sha256:")
            && out.stderr.contains("pod-child:v1.0.0_1 (sha256:"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cannot reach"), "{}", out.stderr);
}

/// A failed build with the legacy builder leaves no stopped container behind.
#[test]
fn a_failed_legacy_build_leaves_no_container() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("trust");
    let inv = fixture(&dir, &registry.ns(), "leftover", busybox_base());
    let marker = format!("xtask-leftover-{}", std::process::id());
    append(&dir.path().join("Dockerfile-leftover-base"), &format!("RUN echo {marker} && false\n"));
    let out =
        run(xtask().args(["build", "leftover-base", "--inventory"]).arg(&inv).env("DOCKER_BUILDKIT", "0"))
            .fails();
    assert!(out.stderr.contains("returned a non-zero code: 1"), "{}", out.stderr);
    let ps = Command::new(docker_cli())
        .args(["ps", "--all", "--no-trunc", "--format", "{{.Command}}"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains(&marker), "a container of the failed step is left");
}

/// BuildKit through buildx on a builder named with --builder (`default`, the engine's own: no
/// other kind of builder can start on a machine without internet), and one clear error, before
/// anything builds, for platforms that builder cannot make.
#[test]
fn buildx_builds_on_a_named_builder_and_refuses_platforms_it_cannot_make() {
    if !require_engine() {
        return;
    }
    let config = TempDir::new("buildx-config");
    if !add_buildx(config.path()) {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("trust");
    let inv = fixture(&dir, &registry.ns(), "bx", busybox_base());
    let build = |extra: &[&str]| {
        let mut cmd = xtask();
        cmd.args(["build", "bx-child", "--inventory"])
            .arg(&inv)
            .args(extra)
            .env("DOCKER_CONFIG", config.path());
        run(&mut cmd)
    };
    let out = build(&["--builder", "default"]).ok();
    assert!(out.stdout.contains(" buildx build --builder default --load "), "{}", out.stdout);
    let child = format!("{}/bx-child:local-v1.0.0", registry.ns());
    let cat =
        Command::new(docker_cli()).args(["run", "--rm", &child, "cat", "/bx-base.txt"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout).trim(), "bx-base");

    let text = std::fs::read_to_string(&inv).unwrap().replacen(
        "push = true\n",
        "push = true\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
        1,
    );
    std::fs::write(&inv, text).unwrap();
    // A child cannot be built for another platform than its parent.
    let out = build(&[]).fails();
    assert!(
        out.stderr.contains(
            "bx-child is built for the engine's own platform, which its parent bx-base is not built for"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("==> build"), "something was built:\n{}", out.stdout);
    // A platform this machine cannot run is refused before anything runs, with how to enable it.
    let text = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("platforms = [\"linux/amd64\", \"linux/arm64\"]\n", "")
        .replace("[images.bx-child]\n", "[images.bx-child]\nplatforms = [\"linux/s390x\"]\n")
        .replacen("push = true\n", "push = true\nplatforms = [\"linux/s390x\"]\n", 1);
    std::fs::write(&inv, text).unwrap();
    let out = build(&[]).fails();
    assert!(out.stderr.contains("asks for linux/s390x, which this machine cannot build"), "{}", out.stderr);
    assert!(!out.stdout.contains("==> build"), "something was built:\n{}", out.stdout);
}
