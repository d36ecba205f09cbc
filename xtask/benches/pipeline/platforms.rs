//! Two images (a parent and a child built on it) for linux/amd64 and linux/arm64, the arm64
//! builds under QEMU, published as indexes: `cargo xtask publish` against what a user would
//! write by hand with the same builder (the legacy one): per image, a build and a push per
//! platform, then `docker manifest create` and `push` of the index. Both in one run, each with
//! content of its own.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use xshell::{cmd, Shell};

const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

fn suffix(platform: &str) -> String {
    platform.replace('/', "-")
}

/// A base for both platforms, from each platform's static busybox, pushed as an index.
fn base(
    sh: &Shell,
    docker: &str,
    dir: &Path,
    registry: &str,
    busyboxes: [&Path; 2],
) -> anyhow::Result<String> {
    let repo = format!("{registry}/bench-base");
    for (platform, busybox) in PLATFORMS.iter().zip(busyboxes) {
        let root = dir.join(format!("base-{}", suffix(platform)));
        std::fs::create_dir_all(root.join("rootfs/bin"))?;
        std::fs::copy(busybox, root.join("rootfs/bin/busybox"))?;
        for applet in ["sh", "echo", "uname", "cat"] {
            std::os::unix::fs::symlink("busybox", root.join("rootfs/bin").join(applet))?;
        }
        std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n")?;
        let tag = format!("{repo}:{}", suffix(platform));
        cmd!(sh, "{docker} build -q --platform {platform} -t {tag} {root}")
            .env("DOCKER_BUILDKIT", "0")
            .quiet()
            .ignore_stdout()
            .run()?;
        cmd!(sh, "{docker} push {tag}").quiet().ignore_stdout().run()?;
    }
    index(sh, docker, &format!("{repo}:1"), &repo, "")?;
    Ok(format!("{repo}:1"))
}

/// `docker manifest create` and `push` of the index of `repo:<prefix><platform>` as `name`.
fn index(sh: &Shell, docker: &str, name: &str, repo: &str, prefix: &str) -> anyhow::Result<()> {
    let members: Vec<String> = PLATFORMS.iter().map(|p| format!("{repo}:{prefix}{}", suffix(p))).collect();
    cmd!(sh, "{docker} manifest create --insecure {name} {members...}").quiet().ignore_stdout().run()?;
    cmd!(sh, "{docker} manifest push --insecure --purge {name}").quiet().ignore_stdout().run()?;
    Ok(())
}

/// The parent and child, ten RUN steps each, whose content is new for `nonce`.
fn fixture(dir: &Path, registry: &str, base: &str, nonce: &str) -> anyhow::Result<std::path::PathBuf> {
    let steps = |name: &str| {
        (0..10).map(|i| format!("RUN echo {nonce}-{name}-{i} > /step-{i}\n")).collect::<String>()
    };
    std::fs::write(dir.join("Dockerfile-parent"), format!("FROM {base}\n{}", steps("parent")))?;
    std::fs::write(
        dir.join("Dockerfile-child"),
        format!("FROM {registry}/parent:v1.0.0\n{}", steps("child")),
    )?;
    let toml = format!(
        "registry = \"{registry}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.parent]\nversion = \"1.0.0\"\n\
         dockerfile = \"Dockerfile-parent\"\n\n[images.child]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-child\"\n\
         depends_on = [\"parent\"]\n"
    );
    std::fs::write(dir.join("images.toml"), toml)?;
    Ok(dir.join("images.toml"))
}

/// By hand: per image, per platform a build (pulling the platform's base) and a push, then the
/// index under the version tag.
fn by_hand(sh: &Shell, docker: &str, dir: &Path, registry: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for image in ["parent", "child"] {
        let repo = format!("{registry}/{image}");
        let dockerfile = dir.join(format!("Dockerfile-{image}"));
        for platform in PLATFORMS {
            let tag = format!("{repo}:v1.0.0_1-{}", suffix(platform));
            cmd!(sh, "{docker} build -q --pull --platform {platform} -t {tag} -f {dockerfile} {dir}")
                .env("DOCKER_BUILDKIT", "0")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()?;
            cmd!(sh, "{docker} push {tag}").quiet().ignore_stdout().run()?;
        }
        index(sh, docker, &format!("{repo}:v1.0.0"), &repo, "v1.0.0_1-")?;
    }
    Ok(start.elapsed())
}

pub fn run(sh: &Shell, docker: &str, xtask: &str, scratch: &Path, registry: &str) -> anyhow::Result<()> {
    println!("== platforms: a parent and a child for linux/amd64 and linux/arm64 (QEMU), as indexes");
    let arm64 = std::env::var("XTASK_TEST_ARM64_BUSYBOX")
        .unwrap_or_else(|_| "/usr/local/libexec/xtask/busybox-arm64".into());
    let amd64 = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists());
    let (Some(amd64), true) =
        (amd64, Path::new(&arm64).is_file() && Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists())
    else {
        println!("skipped: needs an arm64 busybox and QEMU's arm64 emulator (bash .ci/run sets both up)");
        return Ok(());
    };
    let base = base(sh, docker, scratch, registry, [Path::new(amd64), Path::new(&arm64)])?;
    let nonce = format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos());
    let way = |name: &str| -> anyhow::Result<(std::path::PathBuf, String)> {
        let dir = scratch.join(name);
        std::fs::create_dir_all(&dir)?;
        let namespace = format!("{registry}/{name}");
        fixture(&dir, &namespace, &base, &format!("{name}{nonce}"))?;
        Ok((dir, namespace))
    };
    let (dir, ns) = way("by-hand")?;
    let hand = by_hand(sh, docker, &dir, &ns)?;
    let (dir, _) = way("xtask")?;
    let start = Instant::now();
    let out = Command::new(xtask)
        .args(["publish", "--build-id", "1", "--inventory"])
        .arg(dir.join("images.toml"))
        .env("DOCKER", docker)
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .context("running cargo xtask publish")?;
    let tool = start.elapsed();
    ensure!(
        out.status.success(),
        "cargo xtask publish failed in the bench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "  {:<60} {:>6.1}s",
        "by hand: build + push per platform, docker manifest per image",
        hand.as_secs_f64()
    );
    println!("  {:<60} {:>6.1}s", "cargo xtask publish (legacy builder)", tool.as_secs_f64());
    println!("cargo xtask publish / by hand: {:.2} (target <= 0.6)", tool.as_secs_f64() / hand.as_secs_f64());
    Ok(())
}
