//! The pipeline benchmark: figures, not pass/fail. Run it with
//! `cargo bench -p xtask --bench pipeline [-- --sizes 5,20,100 --sleep-ms 60 --cold-runs 1
//! --no-fake --no-engine --no-cold]`.
//! Three parts:
//! 1. orchestration: publish of generated inventories (5, 20, 100 images) against a fake docker
//!    whose build and push only sleep, with --jobs 1 and 4;
//! 2. the real engine: five 25-step images published to a local registry the old workflow's way
//!    (serial build / tag / tag / push --all-tags, legacy and BuildKit), by `docker buildx bake
//!    --push`, and by `cargo xtask publish` (a client with buildx and one without);
//! 3. cold start: `cargo build -p xtask` from an empty target folder against a scratch crate
//!    that uses only the six named crates.

#[path = "pipeline/platforms.rs"]
mod platforms;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

// The fake docker and fake registry of the integration tests: the orchestration part runs
// publish against them.
#[path = "../tests/support/mod.rs"]
mod support;

/// The options, from the command line (cargo adds `--bench`, which is ignored).
struct Options {
    sizes: Option<String>,
    sleep_ms: Option<u64>,
    cold_runs: usize,
    no_fake: bool,
    no_engine: bool,
    no_cold: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        sizes: None,
        sleep_ms: None,
        cold_runs: 1,
        no_fake: false,
        no_engine: false,
        no_cold: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => options.sizes = args.next(),
            "--sleep-ms" => {
                options.sleep_ms = Some(args.next().context("--sleep-ms needs a number")?.parse()?)
            }
            "--cold-runs" => {
                options.cold_runs = args.next().context("--cold-runs needs a number")?.parse()?;
            }
            "--no-fake" => options.no_fake = true,
            "--no-engine" => options.no_engine = true,
            "--no-cold" => options.no_cold = true,
            "--bench" => {}
            other => bail!(
                "unknown option `{other}`: the bench takes --sizes N,N --sleep-ms MS --cold-runs N --no-fake \
                 --no-engine --no-cold"
            ),
        }
    }
    Ok(options)
}

/// The tool under test: the binary cargo built for this bench.
fn xtask() -> &'static str {
    env!("CARGO_BIN_EXE_xtask")
}

/// `$DOCKER` or `docker`, as the tool itself picks it.
fn docker() -> String {
    std::env::var("DOCKER").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| "docker".to_string())
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let sh = Shell::new()?;
    if options.no_fake {
        println!("== orchestration: skipped (--no-fake)");
    } else {
        let sizes: Vec<usize> = match &options.sizes {
            Some(list) => list
                .split(',')
                .map(|n| {
                    n.trim().parse().context("--sizes: a comma-separated list of image counts, e.g. 5,20,100")
                })
                .collect::<anyhow::Result<_>>()?,
            None => vec![5, 20, 100],
        };
        let build = Duration::from_millis(options.sleep_ms.unwrap_or(60));
        let push = build / 3;
        println!("== orchestration: publish against a fake docker (build {build:?}, push {push:?} per push)");
        for n in sizes {
            orchestration(&sh, n, build, push)?;
        }
    }
    if options.no_engine {
        println!("== real engine: skipped (--no-engine)");
    } else {
        real_engine(&sh)?;
        platforms_bench(&sh)?;
    }
    if options.no_cold {
        println!("== cold build: skipped (--no-cold)");
    } else {
        cold_build(&sh, options.cold_runs.max(1))?;
    }
    Ok(())
}

/// A scratch folder for one part of the bench, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> anyhow::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("xtask-bench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parents of image `i` in the generated inventories: a forest of shallow trees (every fourth
/// image is a new root), like base images with a few families of children.
fn parent(i: usize) -> Option<usize> {
    (!i.is_multiple_of(4)).then(|| (i - 1) / 3)
}

/// `n` generated images under `<registry>/<namespace>`: each timed run gets a namespace of its
/// own, so that every run is a first publish (nothing published to compare with), as the first.
fn generated_inventory(dir: &Path, registry: &str, namespace: &str, n: usize) -> anyhow::Result<PathBuf> {
    let mut toml = format!("registry = \"{registry}/{namespace}\"\n");
    for i in 0..n {
        let dockerfile = match parent(i) {
            Some(p) => format!("ARG I{p}_IMAGE\nFROM ${{I{p}_IMAGE}}\n"),
            None => "FROM scratch\n".to_string(),
        };
        std::fs::write(dir.join(format!("Dockerfile-i{i}")), dockerfile)?;
        let deps = parent(i).map_or(String::new(), |p| format!("\"i{p}\""));
        writeln!(
            toml,
            "[images.i{i}]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-i{i}\"\ndepends_on = [{deps}]"
        )?;
    }
    let path = dir.join(format!("images-{namespace}.toml"));
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// Longest chain of the generated graph, in images.
fn chain(n: usize) -> usize {
    (0..n)
        .map(|mut i| {
            let mut length = 1;
            while let Some(p) = parent(i) {
                length += 1;
                i = p;
            }
            length
        })
        .max()
        .unwrap_or(0)
}

/// Wall time of this binary publishing `inventory` with the fake docker, its steps lasting
/// `build` and `push`.
fn timed_publish(
    inventory: &Path,
    docker: &support::FakeDocker,
    jobs: usize,
    build: Duration,
    push: Duration,
) -> anyhow::Result<Duration> {
    // A build id of its own for each run: unique tags are never pushed twice.
    let build_id = format!("{jobs}.{}", build.as_millis());
    let seconds = |d: Duration| if d.is_zero() { String::new() } else { d.as_secs_f64().to_string() };
    let start = Instant::now();
    let out = Command::new(xtask())
        .args(["publish", "--build-id", &build_id, "--jobs", &jobs.to_string(), "--inventory"])
        .arg(inventory)
        .env("DOCKER", docker.program())
        .env("FAKE_BUILD_SLEEP", seconds(build))
        .env("FAKE_PUSH_SLEEP", seconds(push))
        .env_remove("GITHUB_ACTIONS")
        .output()?;
    if !out.status.success() {
        bail!("the benchmark publish failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(start.elapsed())
}

/// The wall time of one `program args`, averaged over `times`: for the fake docker its sleep
/// plus the start-up of its shell, which the tool cannot avoid.
fn step_time(
    sh: &Shell,
    program: &str,
    args: &[&str],
    sleep: (&str, Duration),
    times: u32,
) -> anyhow::Result<Duration> {
    let seconds = if sleep.1.is_zero() { String::new() } else { sleep.1.as_secs_f64().to_string() };
    let start = Instant::now();
    for _ in 0..times {
        cmd!(sh, "{program} {args...}")
            .env(sleep.0, &seconds)
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .ignore_status()
            .run()?;
    }
    Ok(start.elapsed() / times)
}

fn orchestration(sh: &Shell, n: usize, build: Duration, push: Duration) -> anyhow::Result<()> {
    let scratch = Scratch::new(&format!("fake-{n}"))?;
    let docker = support::FakeDocker::new();
    let registry = support::FakeRegistry::start(docker.registry_file());
    let inventory = |namespace: &str| generated_inventory(&scratch.0, &registry.host(), namespace, n);
    let serial = timed_publish(&inventory("serial")?, &docker, 1, build, push)?;
    let parallel = timed_publish(&inventory("parallel")?, &docker, 4, build, push)?;
    // One push per image: its version tag and latest are given the unique tag's manifest by
    // the registry.
    let sleeps = build * n as u32 + push * n as u32;

    // What four workers cannot beat, phase by phase as publish runs them: the registry asked
    // about each unique tag (the first alone); the builds, each followed by its check (the
    // image's user asked, a container created, exported and removed) and its comparison with
    // the published image (one registry question), along the longest chain or the work shared
    // out; then per image, four at a time: the unique tag asked about again, three tags, one
    // push, two manifest PUTs and three read-backs; last the run-private names removed one by
    // one. Each step lasts what one invocation was measured to take, its sleep plus its own
    // start-up.
    let program = docker.program().display().to_string();
    let url = format!("http://{}/v2/x/i0/manifests/nothing", registry.host());
    let no_sleep = ("FAKE_BUILD_SLEEP", Duration::ZERO);
    let t_query = step_time(sh, "curl", &["--silent", &url], no_sleep, 20)?;
    let t_build = step_time(sh, &program, &["build", "--tag", "x", "."], ("FAKE_BUILD_SLEEP", build), 5)?;
    let t_tag = step_time(sh, &program, &["tag", "none", "x"], no_sleep, 20)?;
    let t_push = step_time(sh, &program, &["push", "none"], ("FAKE_PUSH_SLEEP", push), 10)?;
    let t_rm = step_time(sh, &program, &["image", "rm", "x"], no_sleep, 20)?;
    let t_read =
        step_time(sh, &program, &["image", "inspect", "--format", "{{.Config.User}}", "x"], no_sleep, 10)?
            + step_time(sh, &program, &["create", "x"], no_sleep, 10)?
            + step_time(sh, &program, &["export", "c"], no_sleep, 10)?
            + step_time(sh, &program, &["rm", "--force", "c"], no_sleep, 10)?;
    let rounds = n.div_ceil(4) as u32;
    let bound_of =
        |query: Duration, build: Duration, read: Duration, tag: Duration, push: Duration, rm: Duration| {
            let built = build + read + query;
            query * (1 + (n as u32 - 1).div_ceil(4))
                + (built * chain(n) as u32).max(built * rounds)
                + (query * 6 + tag * 3 + push) * rounds
                + rm * n as u32
        };
    let zero = Duration::ZERO;
    let nominal = bound_of(zero, build, zero, zero, push, zero);
    let bound = bound_of(t_query, t_build, t_read, t_tag, t_push, t_rm);
    let critical_path = build * chain(n) as u32 + push;

    // The tool's own cost: the same run with steps that take no time, less what starting the
    // fake docker and curl costs by itself (per image: a build, the check's four commands, 3
    // tags, a push, an image rm and 8 registry requests; per run: the questions about the
    // client and the engine).
    let bare = timed_publish(&inventory("bare")?, &docker, 1, Duration::ZERO, Duration::ZERO)?;
    let per_run = |d: Duration| d * n as u32;
    let spawns = per_run(step_time(sh, &program, &["build", "--tag", "x", "."], no_sleep, 10)?)
        + per_run(t_read)
        + per_run(t_tag) * 3
        + per_run(step_time(sh, &program, &["push", "none"], no_sleep, 10)?)
        + per_run(t_rm)
        + per_run(t_query) * 8
        + step_time(sh, &program, &["version"], no_sleep, 10)? * 5;
    let per_image = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "N={n:>3}: --jobs 1 {:>6.2}s  --jobs 4 {:>6.2}s  ratio {:.2} (target <= 0.4) | critical path {:.2}s; 4-worker bound {:.2}s by the \
         sleeps, {:.2}s by the measured steps; --jobs 4 / bound {:.2} (target <= 1.2) | overhead per image {:.1} ms \
         (wall - sleeps), {:.2} ms net of the fake docker's and curl's start-up (target < 5)",
        serial.as_secs_f64(),
        parallel.as_secs_f64(),
        parallel.as_secs_f64() / serial.as_secs_f64(),
        critical_path.as_secs_f64(),
        nominal.as_secs_f64(),
        bound.as_secs_f64(),
        parallel.as_secs_f64() / bound.as_secs_f64(),
        per_image(serial.saturating_sub(sleeps)),
        per_image(bare.saturating_sub(spawns)),
    );
    Ok(())
}

/// A registry binary serving on a free loopback port for the bench, stopped when dropped.
struct BenchRegistry {
    child: Child,
    host: String,
    _scratch: Scratch,
}

impl BenchRegistry {
    fn start() -> anyhow::Result<BenchRegistry> {
        let scratch = Scratch::new("registry")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = scratch.0.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: 127.0.0.1:{port} }}\n",
                scratch.0.join("data").display()
            ),
        )?;
        let program = ["docker-registry", "registry"]
            .into_iter()
            .find(|p| Command::new(p).arg("--version").output().is_ok())
            .context("no registry binary (docker-registry or registry) on PATH")?;
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            if Instant::now() > deadline {
                bail!("the bench registry did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(BenchRegistry { child, host, _scratch: scratch })
    }
}

impl Drop for BenchRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Five images of 25 RUN steps on a local busybox base; `nonce` keeps two ways from sharing
/// any cached layer. The inventory checks one hardening rule, so publish's verify is counted.
fn real_fixture(dir: &Path, registry: &str, nonce: &str) -> anyhow::Result<PathBuf> {
    let mut toml = format!("registry = \"{registry}\"\n\n[verify]\nabsent = [\"/bin/su\"]\n");
    for i in 0..5 {
        let mut dockerfile = String::from("FROM xtask-bench/busybox:base\n");
        for step in 0..25 {
            writeln!(dockerfile, "RUN echo {nonce}-{i}-{step} > /step-{step}")?;
        }
        std::fs::write(dir.join(format!("Dockerfile-r{i}")), dockerfile)?;
        writeln!(toml, "[images.r{i}]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-r{i}\"")?;
    }
    let path = dir.join("images.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// The buildx plugin .ci/run installs (or `$XTASK_TEST_BUILDX`), in a DOCKER_CONFIG folder of
/// the bench's own, so that one client can run with and without it.
fn buildx_config(scratch: &Path) -> anyhow::Result<Option<PathBuf>> {
    let plugin = std::env::var("XTASK_TEST_BUILDX")
        .unwrap_or_else(|_| "/usr/local/libexec/xtask/docker-buildx".into());
    if !Path::new(&plugin).is_file() {
        return Ok(None);
    }
    let config = scratch.join("buildx-config");
    std::fs::create_dir_all(config.join("cli-plugins"))?;
    std::os::unix::fs::symlink(&plugin, config.join("cli-plugins/docker-buildx"))?;
    Ok(Some(config))
}

/// The old workflow: one image after another, build, two tags, `push --all-tags`.
fn old_workflow(
    sh: &Shell,
    docker: &str,
    config: Option<&Path>,
    dir: &Path,
    registry: &str,
) -> anyhow::Result<Duration> {
    let empty = dir.join("no-plugins");
    std::fs::create_dir_all(&empty)?;
    let config = config.unwrap_or(&empty);
    let start = Instant::now();
    for i in 0..5 {
        let repo = format!("{registry}/r{i}");
        let dockerfile = dir.join(format!("Dockerfile-r{i}"));
        cmd!(sh, "{docker} build -q -t {repo}:v1.0.0 -f {dockerfile} {dir}")
            .env("DOCKER_CONFIG", config)
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()?;
        cmd!(sh, "{docker} tag {repo}:v1.0.0 {repo}:v1.0.0_1").quiet().run()?;
        cmd!(sh, "{docker} tag {repo}:v1.0.0 {repo}:latest").quiet().run()?;
        cmd!(sh, "{docker} push --all-tags {repo}").quiet().ignore_stdout().run()?;
    }
    Ok(start.elapsed())
}

/// `docker buildx bake --push` of the five targets, each with its three tags.
fn bake(sh: &Shell, docker: &str, config: &Path, dir: &Path, registry: &str) -> anyhow::Result<Duration> {
    let path = bake_file(dir, registry)?;
    let start = Instant::now();
    cmd!(sh, "{docker} buildx bake --push --progress=quiet -f {path}")
        .env("DOCKER_CONFIG", config)
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()?;
    Ok(start.elapsed())
}

/// A bake file of the five targets, each with its three tags.
fn bake_file(dir: &Path, registry: &str) -> anyhow::Result<PathBuf> {
    let targets: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            let repo = format!("{registry}/r{i}");
            serde_json::json!({
                "context": dir,
                "dockerfile": format!("Dockerfile-r{i}"),
                "tags": [format!("{repo}:v1.0.0_1"), format!("{repo}:v1.0.0"), format!("{repo}:latest")],
            })
        })
        .collect();
    let names: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
    let file = serde_json::json!({
        "group": { "default": { "targets": names } },
        "target": names.iter().cloned().zip(targets).collect::<serde_json::Map<String, serde_json::Value>>(),
    });
    let path = dir.join("docker-bake.json");
    std::fs::write(&path, file.to_string())?;
    Ok(path)
}

/// One timed step of the tool's run (sys/timing.rs), in milliseconds from its start.
#[derive(Debug, serde::Deserialize)]
struct Span {
    what: String,
    from_ms: f64,
    to_ms: f64,
}

fn read_spans(path: &Path) -> anyhow::Result<Vec<Span>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("no timings in {}", path.display()))?;
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// The tool's own time on the critical path: before the first build starts and after the
/// last build ends, each split by what the tool was doing (overlapping steps of one kind
/// counted once; time in no step is the process itself: start, planning, git, the exit).
fn critical_path(spans: &[Span]) {
    let builds: Vec<&Span> = spans.iter().filter(|s| s.what == "build").collect();
    let (Some(first), Some(last), Some(exit)) = (
        builds.iter().map(|s| s.from_ms).reduce(f64::min),
        builds.iter().map(|s| s.to_ms).reduce(f64::max),
        spans.iter().find(|s| s.what == "exit").map(|s| s.to_ms),
    ) else {
        println!("  (no build in the timings)");
        return;
    };
    for (label, from, to) in
        [("start to the first build", 0.0, first), ("last build's end to exit", last, exit)]
    {
        let mut kinds: Vec<&str> = spans.iter().map(|s| s.what.as_str()).filter(|w| *w != "exit").collect();
        kinds.sort();
        kinds.dedup();
        let mut parts = Vec::new();
        let mut covered = Vec::new();
        for kind in kinds {
            let within: Vec<(f64, f64)> = spans
                .iter()
                .filter(|s| s.what == kind)
                .map(|s| (s.from_ms.max(from), s.to_ms.min(to)))
                .filter(|(a, b)| b > a)
                .collect();
            let ms = union_ms(&within);
            if ms >= 1.0 {
                parts.push(format!("{kind} {ms:.0}"));
            }
            covered.extend(within);
        }
        let other = (to - from) - union_ms(&covered);
        println!("  {label}: {:.0} ms = {}, other {other:.0}", to - from, parts.join(", "));
    }
}

/// The length of the union of intervals, in ms.
fn union_ms(intervals: &[(f64, f64)]) -> f64 {
    let mut sorted = intervals.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut total, mut end) = (0.0, f64::MIN);
    for (a, b) in sorted {
        if b <= end {
            continue;
        }
        total += b - a.max(end);
        end = b;
    }
    total
}

/// What a bake user writes for the tool's guarantee (nothing is pushed unless every image was
/// built and its files read): `docker buildx bake --load`, every image's files read (create,
/// export, rm; all five at once), then every image pushed with its three tags (all at once).
fn bake_with_verify(
    sh: &Shell,
    docker: &str,
    config: &Path,
    dir: &Path,
    registry: &str,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let path = bake_file(dir, registry)?;
    cmd!(sh, "{docker} buildx bake --load --progress=quiet -f {path}")
        .env("DOCKER_CONFIG", config)
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()?;
    let each = |work: &(dyn Fn(usize) -> anyhow::Result<()> + Sync)| -> anyhow::Result<()> {
        std::thread::scope(|scope| {
            let all: Vec<_> = (0..5).map(|i| scope.spawn(move || work(i))).collect();
            all.into_iter().try_for_each(|h| h.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?)
        })
    };
    each(&|i| {
        let sh = Shell::new()?;
        let image = format!("{registry}/r{i}:v1.0.0_1");
        let container = cmd!(sh, "{docker} create --entrypoint /x {image}").quiet().read()?;
        let files = cmd!(sh, "{docker} export {container}").quiet().output()?.stdout;
        let listed = cmd!(sh, "tar -t").quiet().stdin(files).read()?;
        anyhow::ensure!(listed.contains("step-24"), "the files of {image} were not read");
        cmd!(sh, "{docker} rm {container}").quiet().ignore_stdout().run()?;
        Ok(())
    })?;
    each(&|i| {
        let sh = Shell::new()?;
        let repo = format!("{registry}/r{i}");
        cmd!(sh, "{docker} push --all-tags {repo}").quiet().ignore_stdout().run()?;
        Ok(())
    })?;
    Ok(start.elapsed())
}

/// `cargo xtask publish` with default flags; where its own time went, from XTASK_TIMINGS.
fn xtask_publish(inventory: &Path, docker: &str, config: &Path) -> anyhow::Result<(Duration, Vec<Span>)> {
    let spans = inventory.with_extension("timings");
    let wall = xtask_run(&["publish", "--build-id", "1"], inventory, docker, config, Some(&spans))?;
    Ok((wall, read_spans(&spans)?))
}

/// `cargo xtask ARGS --inventory INVENTORY`, timed.
fn xtask_timed(args: &[&str], inventory: &Path, docker: &str, config: &Path) -> anyhow::Result<Duration> {
    xtask_run(args, inventory, docker, config, None)
}

fn xtask_run(
    args: &[&str],
    inventory: &Path,
    docker: &str,
    config: &Path,
    timings: Option<&Path>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut command = Command::new(xtask());
    command.args(args).arg("--inventory").arg(inventory);
    command.env("DOCKER", docker).env("DOCKER_CONFIG", config).env_remove("GITHUB_ACTIONS");
    if let Some(file) = timings {
        command.env("XTASK_TIMINGS", file);
    }
    let out = command.output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!("cargo xtask {} failed in the bench: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(elapsed)
}

const SERIAL_LEGACY: &str = "old workflow, serial, legacy builder";
const SERIAL_BUILDKIT: &str = "old workflow, serial, BuildKit (docker build with buildx)";
const BAKE: &str = "docker buildx bake --push";
const BAKE_VERIFY: &str = "bake --load, every image's files read, then the pushes";
const TOOL_LEGACY: &str = "cargo xtask publish, client without buildx (legacy)";
const TOOL_BUILDX: &str = "cargo xtask publish, client with buildx";

fn real_engine(sh: &Shell) -> anyhow::Result<()> {
    println!("== real engine: five 25-step images pushed with three tags each, every way with fresh content");
    let docker = docker();
    let format = "{{.Server.Version}}";
    if cmd!(sh, "{docker} version --format {format}").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        println!("skipped: no Docker engine answers `{docker} version`");
        return Ok(());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists());
    let Some(busybox) = busybox else {
        println!("skipped: no static busybox for the local base image (Debian: busybox-static)");
        return Ok(());
    };
    let registry = match BenchRegistry::start() {
        Ok(r) => r,
        Err(e) => {
            println!("skipped: {e:#}");
            return Ok(());
        }
    };
    let scratch = Scratch::new("real")?;
    let rootfs = scratch.0.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy(busybox, rootfs.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh"))?;
    let tar = cmd!(sh, "tar -C {rootfs} -c .").quiet().output()?.stdout;
    cmd!(sh, "{docker} import - xtask-bench/busybox:base").quiet().ignore_stdout().stdin(tar).run()?;
    let nonce = format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos());
    let buildx = buildx_config(&scratch.0)?;
    let no_plugins = scratch.0.join("no-plugins");
    std::fs::create_dir_all(&no_plugins)?;

    // Each way gets its own folder, namespace and content.
    let way = |name: &str| -> anyhow::Result<(PathBuf, PathBuf, String)> {
        let dir = scratch.0.join(name);
        std::fs::create_dir_all(&dir)?;
        let namespace = format!("{}/{name}", registry.host);
        let inventory = real_fixture(&dir, &namespace, &format!("{name}{nonce}"))?;
        Ok((dir, inventory, namespace))
    };
    let mut rows: Vec<(&str, Duration)> = Vec::new();
    let (dir, _, ns) = way("serial-legacy")?;
    rows.push((SERIAL_LEGACY, old_workflow(sh, &docker, None, &dir, &ns)?));
    let (_, inventory, _) = way("xtask-legacy")?;
    let (legacy, legacy_spans) = xtask_publish(&inventory, &docker, &no_plugins)?;
    rows.push((TOOL_LEGACY, legacy));
    let mut buildx_spans = Vec::new();
    // What comparing with the published image costs: the same images again, from the cache,
    // built and checked (`build`), then built, checked and compared file by file (a publish
    // that finds every image unchanged and pushes nothing).
    let checked = xtask_timed(&["build"], &inventory, &docker, &no_plugins)?;
    let compared = xtask_timed(&["publish", "--build-id", "2"], &inventory, &docker, &no_plugins)?;
    match &buildx {
        Some(config) => {
            let (dir, _, ns) = way("serial-buildkit")?;
            rows.push((SERIAL_BUILDKIT, old_workflow(sh, &docker, Some(config), &dir, &ns)?));
            let (dir, _, ns) = way("bake")?;
            rows.push((BAKE, bake(sh, &docker, config, &dir, &ns)?));
            let (dir, _, ns) = way("bake-verify")?;
            rows.push((BAKE_VERIFY, bake_with_verify(sh, &docker, config, &dir, &ns)?));
            let (_, inventory, _) = way("xtask-buildkit")?;
            let (tool, spans) = xtask_publish(&inventory, &docker, config)?;
            rows.push((TOOL_BUILDX, tool));
            buildx_spans = spans;
        }
        None => println!("(no buildx plugin: the BuildKit ways are skipped; bash .ci/run installs it)"),
    }
    for (name, time) in &rows {
        println!("  {:<60} {:>6.1}s", name, time.as_secs_f64());
    }
    let time = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, t)| t.as_secs_f64());
    if let (Some(tool), Some(bake), Some(serial)) = (time(TOOL_BUILDX), time(BAKE), time(SERIAL_BUILDKIT)) {
        println!(
            "cargo xtask publish with buildx / bake: {:.2} (target <= 1.0); / the serial BuildKit workflow: {:.2} (target <= 0.45)",
            tool / bake,
            tool / serial
        );
    }
    if let (Some(tool), Some(verify)) = (time(TOOL_BUILDX), time(BAKE_VERIFY)) {
        println!(
            "cargo xtask publish with buildx / bake with the same guarantee: {:.2} (target <= 0.95)",
            tool / verify
        );
    }
    if !buildx_spans.is_empty() {
        println!("the tool's own time on the critical path, with buildx (ms):");
        critical_path(&buildx_spans);
    }
    println!("the tool's own time on the critical path, legacy builder (ms):");
    critical_path(&legacy_spans);
    if let (Some(tool), Some(serial)) = (time(TOOL_LEGACY), time(SERIAL_LEGACY)) {
        println!("cargo xtask publish without buildx / the serial legacy workflow: {:.2}", tool / serial);
    }
    let per_image = (compared.as_secs_f64() - checked.as_secs_f64()) / 5.0;
    println!(
        "comparison with the published image: build of the cached images {:.1}s, publish finding all five \
         unchanged {:.1}s: {per_image:.2}s per image",
        checked.as_secs_f64(),
        compared.as_secs_f64()
    );
    Ok(())
}

/// The platforms part, on its own registry and scratch folder.
fn platforms_bench(sh: &Shell) -> anyhow::Result<()> {
    let registry = match BenchRegistry::start() {
        Ok(r) => r,
        Err(e) => {
            println!("== platforms: skipped: {e:#}");
            return Ok(());
        }
    };
    let scratch = Scratch::new("platforms")?;
    platforms::run(sh, &docker(), xtask(), &scratch.0, &registry.host)
}

/// The `[profile.dev]` table of the workspace manifest, as written.
fn dev_profile(workspace: &Path) -> anyhow::Result<String> {
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml"))?;
    let start = manifest.find("[profile.dev]").context("no [profile.dev] in the workspace Cargo.toml")?;
    let table = &manifest[start..];
    let end = table[1..].find("\n[").map_or(table.len(), |i| i + 2);
    Ok(table[..end].to_string())
}

fn cold_build(sh: &Shell, runs: usize) -> anyhow::Result<()> {
    println!("== cold build: cargo build from an empty target folder, {runs} run(s)");
    let workspace =
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("the workspace root")?.to_path_buf();
    let scratch = Scratch::new("cold")?;
    // The same six crates alone, resolved from our lock file, built with our dev profile (the
    // workspace's `[profile.dev]` table, copied as written).
    let crate_dir = scratch.0.join("six");
    std::fs::create_dir_all(crate_dir.join("src"))?;
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"six\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\nanyhow = \"1\"\n\
             duct = \"1\"\nsemver = \"1\"\nserde = {{ version = \"1\", features = [\"derive\"] }}\ntoml = \"1\"\n\
             xshell = \"0.2\"\n\n{}",
            dev_profile(&workspace)?
        ),
    )?;
    std::fs::write(
        crate_dir.join("src/main.rs"),
        "#[derive(serde::Deserialize)]\nstruct X {\n    _a: String,\n}\n\nfn main() {\n    let _: Result<X, _> = toml::from_str(\"\");\n    \
         let _ = semver::Version::parse(\"1.0.0\");\n    let _ = duct::cmd!(\"true\");\n    let _ = xshell::Shell::new();\n    \
         let _ = anyhow::anyhow!(\"x\");\n}\n",
    )?;
    std::fs::copy(workspace.join("Cargo.lock"), crate_dir.join("Cargo.lock"))?;

    let cold = |dir: &Path, package: &[&str], target: &str| -> anyhow::Result<Duration> {
        let target = scratch.0.join(target);
        let _ = std::fs::remove_dir_all(&target);
        let _dir = sh.push_dir(dir);
        let start = Instant::now();
        cmd!(sh, "cargo build --quiet --offline {package...} --target-dir {target}").run()?;
        Ok(start.elapsed())
    };
    let mut ratios = Vec::new();
    for run in 0..runs {
        // Alternate which goes first, so that neither always meets a colder page cache.
        let (ours, six) = if run % 2 == 0 {
            let ours = cold(&workspace, &["-p", "xtask"], "target-xtask")?;
            (ours, cold(&crate_dir, &[], "target-six")?)
        } else {
            let six = cold(&crate_dir, &[], "target-six")?;
            (cold(&workspace, &["-p", "xtask"], "target-xtask")?, six)
        };
        let ratio = ours.as_secs_f64() / six.as_secs_f64();
        ratios.push(ratio);
        println!(
            "cargo build -p xtask: {:.2}s  scratch crate with the six named crates: {:.2}s  ratio {ratio:.2} (budget <= 1.5)",
            ours.as_secs_f64(),
            six.as_secs_f64(),
        );
    }
    if runs > 1 {
        ratios.sort_by(f64::total_cmp);
        println!(
            "ratio over {runs} runs: median {:.2}, lowest {:.2}, highest {:.2}",
            ratios[runs / 2],
            ratios[0],
            ratios[runs - 1]
        );
    }
    Ok(())
}
