//! End to end: images published for linux/amd64 and linux/arm64 as one index, with real arm64
//! builds whose RUN steps run under QEMU (bash .ci/run registers the emulator and fetches an
//! arm64 busybox from Debian's archive). What was pushed is read back with skopeo, docker and
//! podman, never with the tool.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{docker_cli, require_engine, require_program, run, xtask, Registry, TempDir};

/// Debian's arm64 busybox that .ci/run fetches; in CI a missing one fails the test.
fn arm64_busybox() -> Option<PathBuf> {
    let path = std::env::var("XTASK_TEST_ARM64_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/local/libexec/xtask/busybox-arm64"));
    if path.is_file() && Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists() {
        return Some(path);
    }
    if std::env::var("CI").is_err() && std::env::var("XTASK_SKIP_E2E").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: no arm64 busybox or no QEMU emulator for arm64, and XTASK_SKIP_E2E=1 is set");
        return None;
    }
    panic!("the platform tests need an arm64 busybox at {} and QEMU's arm64 emulator registered: bash .ci/run sets both up", path.display());
}

fn docker(args: &[&str]) -> String {
    let out = Command::new(docker_cli()).args(args).output().unwrap();
    assert!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An upstream base for `platform` made from a static `busybox` (the legacy builder writes the
/// platform into its configuration), pushed as `reference`.
fn platform_base(busybox: &Path, platform: &str, reference: &str) {
    let dir = TempDir::new("platform-base");
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for applet in ["sh", "uname", "cat", "echo", "test", "[", "true", "false"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    dir.write("Dockerfile", "FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\"]\n");
    let out = Command::new(docker_cli())
        .args(["build", "-q", "--platform", platform, "-t", reference])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "building {reference}: {}", String::from_utf8_lossy(&out.stderr));
    docker(&["push", reference]);
}

/// `upstream/base:1` in `registry`: an index of an amd64 and an arm64 busybox.
fn two_platform_base(registry: &Registry, busybox_arm64: &Path) -> String {
    let host = registry.ns();
    let busybox_amd64 =
        ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).unwrap();
    platform_base(Path::new(busybox_amd64), "linux/amd64", &format!("{host}/upstream/base:amd64"));
    platform_base(busybox_arm64, "linux/arm64", &format!("{host}/upstream/base:arm64"));
    let repository = registry.repo("upstream/base");
    registry.put_index(&repository, "1", &[("linux/amd64", "amd64"), ("linux/arm64", "arm64")]);
    format!("{host}/upstream/base:1")
}

/// A parent built on `base` and a child built on the parent, both for both platforms. The RUN
/// steps write what machine they ran on, and (the child) what its parent's build saw.
fn inventory(dir: &TempDir, registry: &Registry, base: &str, platforms: &str, parent_run: &str) -> PathBuf {
    dir.write(
        "Dockerfile-parent",
        // The base through an ARG, as the repository's Dockerfiles name theirs.
        &format!(
            "ARG BASE_IMAGE={base}\nFROM ${{BASE_IMAGE}}\nARG TARGETARCH\nRUN uname -m > /parent-arch && echo \"$TARGETARCH\" > /target-arch\n{parent_run}"
        ),
    );
    dir.write(
        "Dockerfile-child",
        &format!("FROM {}/parent:v1.0.0\nRUN cat /parent-arch > /seen && uname -m >> /seen\n", registry.ns()),
    );
    let toml = format!(
        "registry = \"{}\"\nplatforms = [{platforms}]\n\n[images.parent]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-parent\"\n\n\
         [images.child]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-child\"\ndepends_on = [\"parent\"]\n",
        registry.ns()
    );
    dir.write("images.toml", &toml)
}

fn publish(dir: &TempDir, inventory: &Path, build_id: &str) -> support::Run {
    run(xtask()
        .args(["publish", "--build-id", build_id, "--sbom-dir"])
        .arg(dir.path().join("sbom"))
        .arg("--inventory")
        .arg(inventory)
        .env("DOCKER_BUILDKIT", "0"))
}

/// The index under `reference`, as skopeo reads it from the registry: (its digest, each
/// platform with its manifest digest).
fn skopeo_index(reference: &str) -> (String, Vec<(String, String)>) {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let members = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let platform = format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            );
            (platform, m["digest"].as_str().unwrap().to_string())
        })
        .collect();
    let digest = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&out.stdout).unwrap();
            c.wait_with_output().unwrap()
        })
        .unwrap();
    let hex = String::from_utf8_lossy(&digest.stdout).split_whitespace().next().unwrap().to_string();
    (format!("sha256:{hex}"), members)
}

#[test]
fn two_platforms_are_published_as_one_index_that_docker_podman_and_skopeo_read() {
    let Some(busybox) = arm64_busybox() else { return };
    if !require_engine()
        || !require_program("skopeo", "reading the indexes back")
        || !require_program("podman", "pulling an arm64 image")
    {
        return;
    }
    let registry = Registry::start();
    let base = two_platform_base(&registry, &busybox);
    let dir = TempDir::new("platforms");
    let inv = inventory(&dir, &registry, &base, "\"linux/amd64\", \"linux/arm64\"", "");
    let first = publish(&dir, &inv, "1").ok();
    let ns = registry.ns();

    // One index under each of the three tags, the same digest, listing both platforms.
    let (digest, members) = skopeo_index(&format!("{ns}/child:v1.0.0_1"));
    let platforms: Vec<&str> = members.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    for tag in ["v1.0.0", "latest"] {
        assert_eq!(registry.digest(&registry.repo("child"), tag), digest, "{tag}");
    }
    assert!(first.stdout.contains(&digest), "the run names the index digest users pin:\n{}", first.stdout);
    // Each platform's manifest is the one pushed under the unique tag and the platform.
    assert_eq!(members[1].1, registry.digest(&registry.repo("child"), "v1.0.0_1-linux-arm64"));

    // The arm64 child ran its RUN steps on arm64, on the arm64 parent.
    let child = format!("{ns}/child:v1.0.0");
    docker(&["pull", "--platform", "linux/arm64", &child]);
    let seen = docker(&["run", "--rm", "--platform", "linux/arm64", &child, "cat", "/seen"]);
    assert_eq!(seen, "aarch64\naarch64\n");
    let target = docker(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        &format!("{ns}/parent:v1.0.0"),
        "cat",
        "/target-arch",
    ]);
    assert_eq!(target, "arm64\n", "the legacy builder gets TARGETARCH too");
    docker(&["pull", "--platform", "linux/amd64", &child]);
    assert_eq!(
        docker(&["run", "--rm", "--platform", "linux/amd64", &child, "cat", "/seen"]),
        "x86_64\nx86_64\n"
    );
    let podman = Command::new("podman")
        .args(["pull", "-q", "--tls-verify=false", "--arch", "arm64", &child])
        .output()
        .unwrap();
    assert!(podman.status.success(), "podman pull: {}", String::from_utf8_lossy(&podman.stderr));
    let arch = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Architecture}}", &child])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), "arm64");
    let _ = Command::new("podman").args(["rmi", "-f", &child]).output();
    // One SBOM per platform, each naming the manifest it describes.
    let sbom: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("sbom/child.linux-arm64.spdx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        sbom["packages"][0]["checksums"][0]["checksumValue"],
        members[1].1.trim_start_matches("sha256:")
    );

    // 2. Only the arm64 content changes: both indexes are published again, each amd64 manifest
    //    the same as before, each arm64 manifest new.
    let arm_only = "RUN if [ \"$(uname -m)\" = aarch64 ]; then echo changed > /arm-only; fi\n";
    inventory(&dir, &registry, &base, "\"linux/amd64\", \"linux/arm64\"", arm_only);
    let second = publish(&dir, &inv, "2").ok();
    for image in ["parent", "child"] {
        let (_, before) = skopeo_index(&format!("{ns}/{image}:v1.0.0_1"));
        let (now_digest, now) = skopeo_index(&format!("{ns}/{image}:v1.0.0_2"));
        assert_eq!(registry.digest(&registry.repo(image), "latest"), now_digest, "{image}");
        assert_eq!(now[0].1, before[0].1, "{image}: its amd64 manifest did not change\n{}", second.stdout);
        assert_ne!(now[1].1, before[1].1, "{image}: its arm64 manifest changed");
    }
    assert!(second.stdout.contains("linux/amd64: unchanged since"), "{}", second.stdout);
    // The arm64 child says it was built on the arm64 parent of this run.
    let labels = docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", &child]);
    assert!(
        labels.contains(&format!("\"org.opencontainers.image.base.name\":\"{ns}/parent:v1.0.0\"")),
        "{labels}"
    );

    // 3. arm64 is dropped: the indexes are published again with amd64 alone, its manifest kept.
    inventory(&dir, &registry, &base, "\"linux/amd64\"", arm_only);
    publish(&dir, &inv, "3").ok();
    for image in ["parent", "child"] {
        let (_, before) = skopeo_index(&format!("{ns}/{image}:v1.0.0_2"));
        let (_, now) = skopeo_index(&format!("{ns}/{image}:v1.0.0_3"));
        assert_eq!(now.len(), 1, "{image}: {now:?}");
        assert_eq!(now[0], before[0], "{image}: its amd64 manifest did not change");
    }
}

#[test]
fn a_base_published_for_one_platform_fails_before_any_build() {
    let Some(_) = arm64_busybox() else { return };
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).unwrap();
    let base = format!("{}/upstream/amd64-only:1", registry.ns());
    platform_base(Path::new(busybox), "linux/amd64", &base);
    let dir = TempDir::new("platforms");
    let inv = inventory(&dir, &registry, &base, "\"linux/amd64\", \"linux/arm64\"", "");
    let out = publish(&dir, &inv, "1").fails();
    assert!(
        out.stderr.contains(&format!("{base} is an image for linux/amd64 only, not for linux/arm64")),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("==> build"), "nothing was built:\n{}", out.stdout);
    assert!(registry.tags(&registry.repo("parent")).is_empty());
}

#[test]
fn a_platform_this_machine_cannot_run_is_refused_before_anything_runs() {
    if !require_engine() {
        return;
    }
    // An architecture whose emulator is not registered here (.ci/run registers arm64 only).
    let foreign = ["s390x", "ppc64le", "riscv64"]
        .into_iter()
        .find(|arch| !Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{arch}")).exists())
        .expect("every emulator the test could use is registered; unregister one (e.g. qemu-s390x)");
    let registry = Registry::start();
    let dir = TempDir::new("platforms");
    let inv = inventory(&dir, &registry, "scratch", &format!("\"linux/amd64\", \"linux/{foreign}\""), "");
    let out = publish(&dir, &inv, "1").fails();
    assert!(
        out.stderr.contains(&format!("asks for linux/{foreign}, which this machine cannot build")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("qemu-user-static") && out.stderr.contains("docker/setup-qemu-action"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("==> build"), "{}", out.stdout);
}

#[test]
fn a_failure_on_one_platform_pushes_nothing_for_any() {
    let Some(busybox) = arm64_busybox() else { return };
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let base = two_platform_base(&registry, &busybox);
    let dir = TempDir::new("platforms");
    let fails_on_arm = "RUN [ \"$(uname -m)\" != aarch64 ]\n";
    let inv = inventory(&dir, &registry, &base, "\"linux/amd64\", \"linux/arm64\"", fails_on_arm);
    let out = publish(&dir, &inv, "1").fails();
    assert!(out.stderr.contains("build of parent@linux/arm64 failed"), "{}", out.stderr);
    assert!(out.stderr.contains("Nothing was pushed"), "{}", out.stderr);
    for image in ["parent", "child"] {
        assert!(registry.tags(&registry.repo(image)).is_empty(), "{image} has tags");
    }
}

/// BuildKit (buildx, its docker driver) builds both platforms too, each on its platform's
/// pinned base, setting TARGETARCH itself; `build` tags each platform locally.
#[test]
fn buildx_builds_each_platform_on_its_pinned_base() {
    let Some(busybox) = arm64_busybox() else { return };
    if !require_engine() {
        return;
    }
    let dir = TempDir::new("platforms-buildx");
    let config = dir.path().join("docker-config");
    if !support::add_buildx(&config) {
        return;
    }
    let registry = Registry::start();
    let base = two_platform_base(&registry, &busybox);
    let inv = inventory(&dir, &registry, &base, "\"linux/amd64\", \"linux/arm64\"", "");
    let out =
        run(xtask().args(["build", "parent", "--inventory"]).arg(&inv).env("DOCKER_CONFIG", &config)).ok();
    assert!(
        out.stdout.contains("docker buildx build --load --progress=plain --platform linux/arm64"),
        "{}",
        out.stdout
    );
    let local = format!("{}/parent:local-v1.0.0-linux-arm64", registry.ns());
    assert_eq!(
        docker(&["run", "--rm", "--platform", "linux/arm64", &local, "cat", "/parent-arch", "/target-arch"]),
        "aarch64\narm64\n"
    );
    let amd = format!("{}/parent:local-v1.0.0-linux-amd64", registry.ns());
    assert_eq!(
        docker(&["run", "--rm", "--platform", "linux/amd64", &amd, "cat", "/parent-arch"]),
        "x86_64\n"
    );
}

/// A base this engine holds and no registry does cannot be pinned per platform: one clear
/// error, at once, before any build.
#[test]
fn a_base_only_this_engine_holds_is_refused_at_once() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("platforms");
    let inv = inventory(&dir, &registry, support::busybox_base(), "\"linux/amd64\", \"linux/arm64\"", "");
    let started = std::time::Instant::now();
    let out = publish(&dir, &inv, "1").fails();
    assert!(out.stderr.contains("exists only on this engine"), "{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "no registry was waited on");
    assert!(!out.stdout.contains("==> build"), "{}", out.stdout);
}
