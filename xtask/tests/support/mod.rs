//! Shared pieces of the integration tests: running the built binary, a fake docker that records
//! what it was asked, and a real Docker engine and registry for the end-to-end tests.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod names;
mod testdir;
pub use names::OwnNames;
pub use testdir::TestDir as TempDir;

/// The built `xtask` binary with a clean environment: no GitHub Actions variables, no tokens,
/// unless a test sets them.
pub fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("GITHUB_") || ["CR_PAT", "DOCKER", "RUNNER_TEMP"].contains(&key.as_str()) {
            cmd.env_remove(&key);
        }
    }
    cmd.stdin(Stdio::null());
    // The SBOMs each run writes go to a folder of its own, and `run` validates every one.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cmd.env(
        "XTASK_SBOM_DIR",
        std::env::temp_dir().join(format!("xtask-test-sbom-{}-{n}", std::process::id())),
    );
    cmd
}

/// Validates every SBOM in `dir` with pyspdxtools (spdx-tools from PyPI), an SPDX reader
/// independent of the tool, then removes the folder. In CI a missing validator fails.
pub fn validate_sboms(dir: &Path) {
    // An image named `team/base` has its SBOM in a folder of its own: every level is read.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let available = Command::new("pyspdxtools").arg("--help").output().is_ok_and(|o| o.status.success());
    if !available && std::env::var("CI").is_ok() {
        panic!("CI must validate the SBOMs the tool writes, and pyspdxtools is missing (bash .ci/run installs it)");
    }
    for file in files.iter().filter(|f| available && f.to_string_lossy().ends_with(".spdx.json")) {
        let check = Command::new("pyspdxtools").arg("-i").arg(file).output().unwrap();
        assert!(
            check.status.success(),
            "{} is not valid SPDX 2.3: {}{}",
            file.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Run {
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn ok(self) -> Run {
        assert!(
            self.status.success(),
            "expected success:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn fails(self) -> Run {
        assert!(
            !self.status.success(),
            "expected failure:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let out = Run::of(cmd.output().expect("run xtask"));
    let sboms = cmd.get_envs().find(|(k, _)| *k == "XTASK_SBOM_DIR").and_then(|(_, v)| v.map(PathBuf::from));
    if let Some(dir) = sboms {
        validate_sboms(&dir);
    }
    out
}

/// A `docker` stand-in that appends each invocation's arguments (one per line, then a line
/// `--`) to `calls`, and what it read on stdin for `login` to `stdin`. It keeps a small image
/// store (`images`: reference and id per line) so that tag and push act on what was built, and
/// a push lands in `registry` (reference, image id, manifest digest), which `FakeRegistry`
/// serves. Its output copies what docker 28 against a 20.10 engine prints (see the real-engine
/// tests for the real thing).
///
/// It answers like a Docker 28 client without buildx (so the tool picks the legacy builder)
/// unless FAKE_CLIENT_VERSION (e.g. 20.10.24: built-in BuildKit), FAKE_BUILDX=1 or
/// FAKE_PODMAN=1 (podman 4.3) say otherwise.
///
/// Behaviour knobs (environment of the xtask process):
/// - FAKE_FAIL_BUILD=<substring>: a build whose arguments contain it fails;
/// - FAKE_BUILD_SLEEP=<seconds>: every build takes that long;
/// - FAKE_BUILD_OUTPUT=<text>: every build prints it (as a Dockerfile's RUN echo would);
/// - FAKE_BUILD_PARTIAL=<text>: every build starts by printing it with no end of line (a
///   progress bar);
/// - FAKE_TAG_SLEEP=<seconds>, FAKE_FAIL_TAG=<substring>: the same for `docker tag`;
/// - FAKE_PUSH_FAIL=<suffix>: a push of a reference ending in it fails with FAKE_PUSH_MESSAGE
///   (default: connection refused), for the first FAKE_PUSH_FAIL_TIMES attempts (default: all);
/// - FAKE_PUSH_SLEEP=<seconds>: every push takes that long;
/// - FAKE_APK_DATABASE, FAKE_RPMDB, FAKE_NPM_PACKAGE: what an exported image holds as its apk
///   database, its RPM database, or the package.json of an npm package.
pub struct FakeDocker {
    dir: TempDir,
}

impl FakeDocker {
    pub fn new() -> FakeDocker {
        let dir = TempDir::new("fake-docker");
        let script = r#"#!/bin/sh
here=$(dirname "$0")
# One append per invocation, so concurrent invocations never interleave their records.
record=$(printf '%s\n' "$@"; echo --)
printf '%s\n' "$record" >> "$here/calls"
# Secrets reach docker on stdin only, never through its environment.
for secret in CR_PAT GITHUB_TOKEN GH_ADMIN_TOKEN; do
  eval "value=\${$secret:-}"
  [ -n "$value" ] && echo "$secret" >> "$here/leaked"
done
nap() { # a sleep that leaves a trace: its pid when it starts, a line when it wakes
    sleep "$1" &
    echo $! >> "$here/naps"
    wait $!
    echo "$1" >> "$here/woke"
}
id_of() { # the id of a local reference, or nothing
    awk -v r="$1" '$1 == r { id = $2 } END { if (id) print id }' "$here/images" 2>/dev/null
}
build() {
    # A docker 23+ client without buildx refuses BuildKit, as the real one does.
    if [ "$DOCKER_BUILDKIT" = 1 ] && [ -z "$FAKE_BUILDX" ] && [ -z "$FAKE_CLIENT_VERSION" ] && [ -z "$FAKE_PODMAN" ]; then
      echo "ERROR: BuildKit is enabled but the buildx component is missing or broken." >&2; exit 1
    fi
    [ -n "$FAKE_BUILD_PARTIAL" ] && printf '%s' "$FAKE_BUILD_PARTIAL"
    [ -n "$FAKE_BUILD_SLEEP" ] && nap "$FAKE_BUILD_SLEEP"
    echo "Sending build context to Docker daemon  2.048kB"
    [ -n "$FAKE_BUILD_OUTPUT" ] && printf '%s\n' "$FAKE_BUILD_OUTPUT"
    if [ -n "$FAKE_FAIL_BUILD" ]; then
      case "$*" in *"$FAKE_FAIL_BUILD"*)
        echo "Step 2/2 : RUN false"
        echo "The command '/bin/sh -c false' returned a non-zero code: 1" >&2; exit 1 ;; esac
    fi
    ref=; iidfile=
    while [ $# -gt 0 ]; do
      case "$1" in --tag) ref=$2; shift ;; --iidfile) iidfile=$2; shift ;; esac
      shift
    done
    id=$(printf '%s %s %s' "$ref" "$$" "$(date +%s%N)" | sha256sum | cut -c1-64)
    printf '%s sha256:%s\n' "$ref" "$id" >> "$here/images"
    [ -n "$iidfile" ] && printf 'sha256:%s' "$id" > "$iidfile"
    echo "Successfully built $(echo "$id" | cut -c1-12)"
    echo "Successfully tagged $ref"
}
case "$1" in
  --version)
    if [ -n "$FAKE_PODMAN" ]; then echo "podman version 4.3.1"; else echo "Docker version 28.2.2, build e6534b4"; fi ;;
  version)
    case "$3" in
      *Server*) echo "20.10.24+dfsg1" ;;
      *) echo "${FAKE_CLIENT_VERSION:-28.2.2}" ;;
    esac ;;
  info)
    if [ -n "$FAKE_PODMAN" ]; then echo '{"registries":{"search":["docker.io"]}}'
    else echo '{"IndexConfigs":{"docker.io":{"Mirrors":[],"Name":"docker.io","Official":true,"Secure":true}},"InsecureRegistryCIDRs":["127.0.0.0/8"],"Mirrors":[]}'
    fi ;;
  buildx)
    [ -n "$FAKE_BUILDX" ] || { echo "docker: 'buildx' is not a docker command." >&2; exit 1; }
    case "$2" in version) echo "github.com/docker/buildx v0.17.1" ;; build) shift 2; build "$@" ;; esac ;;
  login) cat > "$here/stdin"; echo "Login Succeeded" ;;
  logout) echo "Removing login credentials for $2" ;;
  build) shift; build "$@" ;;
  tag)
    [ -n "$FAKE_TAG_SLEEP" ] && sleep "$FAKE_TAG_SLEEP"
    if [ -n "$FAKE_FAIL_TAG" ]; then
      case "$*" in *"$FAKE_FAIL_TAG"*) echo "Error response from daemon: no space left on device" >&2; exit 1 ;; esac
    fi
    id=$(id_of "$2")
    [ -n "$id" ] || { echo "Error response from daemon: No such image: $2" >&2; exit 1; }
    printf '%s %s\n' "$3" "$id" >> "$here/images" ;;
  push)
    [ -n "$FAKE_PUSH_SLEEP" ] && nap "$FAKE_PUSH_SLEEP"
    echo "The push refers to repository [${2%:*}]"
    if [ -n "$FAKE_PUSH_FAIL" ]; then
      case "$2" in *"$FAKE_PUSH_FAIL")
        n=$(cat "$here/push-failures" 2>/dev/null || echo 0)
        if [ -z "$FAKE_PUSH_FAIL_TIMES" ] || [ "$n" -lt "$FAKE_PUSH_FAIL_TIMES" ]; then
          echo $((n + 1)) > "$here/push-failures"
          echo "${FAKE_PUSH_MESSAGE:-Put \"http://reg/v2/\": dial tcp 127.0.0.1:1: connect: connection refused}" >&2
          exit 1
        fi ;;
      esac
    fi
    id=$(id_of "$2")
    [ -n "$id" ] || { echo "An image does not exist locally with the tag: ${2%:*}" >&2; exit 1; }
    digest=sha256:$(printf 'manifest of %s' "$id" | sha256sum | cut -c1-64)
    printf '%s %s %s\n' "$2" "$id" "$digest" >> "$here/registry"
    # The engine has sent the image, but the client is slow to say so (it is stopped meanwhile).
    [ -n "$FAKE_PUSH_LANDS_THEN_SLEEP" ] && nap "$FAKE_PUSH_LANDS_THEN_SLEEP"
    echo "5f70bf18a086: Pushed"
    echo "${2##*:}: digest: $digest size: 528" ;;
  pull)
    # As docker 28 prints it (checked against a real pull from a local registry); the image
    # gets an id and a registry digest of its own.
    ref=$2; id=sha256:$(printf 'pulled %s' "$ref" | sha256sum | cut -c1-64)
    digest=sha256:$(printf 'index of %s' "$ref" | sha256sum | cut -c1-64)
    printf '%s %s\n' "$ref" "$id" >> "$here/images"
    printf '%s %s\n' "$ref" "$digest" >> "$here/digests"
    echo "${ref##*:}: Pulling from ${ref%:*}"
    echo "Digest: $digest"
    echo "Status: Downloaded newer image for $ref"
    echo "$ref" ;;
  create)
    for reference; do :; done
    [ -n "$(id_of "$reference")" ] || { echo "Error response from daemon: No such image: $reference" >&2; exit 1; }
    echo "c0ffee$(printf '%s' "$reference" | sha256sum | cut -c1-58)" ;;
  export)
    # The files of every image: an os-release and an apk database of one package.
    root=$here/rootfs
    mkdir -p "$root/etc" "$root/lib/apk/db"
    printf 'ID=alpine\n' > "$root/etc/os-release"
    printf 'P:musl\nV:%s\nA:x86_64\nL:MIT\no:musl\n\n' "${FAKE_MUSL_VERSION:-1.2.5-r10}" > "$root/lib/apk/db/installed"
    [ -n "$FAKE_APK_DATABASE" ] && printf '%s' "$FAKE_APK_DATABASE" > "$root/lib/apk/db/installed"
    dirs="etc lib"
    if [ -n "$FAKE_RPMDB" ]; then
      mkdir -p "$root/var/lib/rpm"; printf '%s' "$FAKE_RPMDB" > "$root/var/lib/rpm/rpmdb.sqlite"; dirs="$dirs var"
    fi
    if [ -n "$FAKE_NPM_PACKAGE" ]; then
      mkdir -p "$root/app/node_modules/dep"; printf '%s' "$FAKE_NPM_PACKAGE" > "$root/app/node_modules/dep/package.json"
      dirs="$dirs app"
    fi
    tar -C "$root" -cf - $dirs ;;
  run)
    # Only the image's own rpm is ever run (`--entrypoint rpm`): it prints the query's answer.
    # An image without rpm fails as docker 28 on engine 20.10 says it (checked against the real
    # one): the cause first, then the usage hint.
    if [ -n "$FAKE_RPM_MISSING" ]; then
      echo 'docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "rpm": executable file not found in $PATH: unknown' >&2
      echo "" >&2; echo "Run 'docker run --help' for more information" >&2; exit 127
    fi
    case "$*" in *"--entrypoint rpm"*) printf '%s' "$FAKE_RPM_QUERY" ;; *) echo "unexpected: docker run $*" >&2; exit 1 ;; esac ;;
  rm) echo "$3" ;;
  image)
    case "$2" in
      rm) for reference; do :; done; echo "Untagged: $reference" ;;
      inspect)
        for reference; do :; done
        id=$(id_of "$reference")
        [ -n "$id" ] || { echo "Error response from daemon: no such image: $reference: No such image: $reference" >&2; exit 1; }
        case "$4" in
          *RepoDigests*)
            digest=$(awk -v r="$reference" '$1 == r { d = $2 } END { if (d) print d }' "$here/digests" 2>/dev/null)
            if [ -n "$digest" ]; then echo "$id [\"${reference%:*}@$digest\"]"; else echo "$id []"; fi ;;
          *Labels*) echo "$id null" ;;
          # As docker 28 prints an image's configuration against engine 20.10: empty fields left out.
          *'json .Config}}'*) echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]}' ;;
          *) echo "unexpected: the fake knows no such format: $4" >&2; exit 1 ;;
        esac ;;
    esac ;;
esac
"#;
        let path = dir.write("docker", script);
        make_executable(&path);
        FakeDocker { dir }
    }

    /// How many of the fake's sleeps (FAKE_BUILD_SLEEP, FAKE_PUSH_SLEEP) ran to their end, and
    /// how many are still running: a command the tool stopped leaves neither.
    pub fn naps(&self) -> (usize, usize) {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let woke = read("woke").lines().count();
        let running = read("naps").lines().filter(|pid| alive(pid)).count();
        (woke, running)
    }

    /// Where pushes land: read by `FakeRegistry`.
    pub fn registry_file(&self) -> PathBuf {
        self.dir.path().join("registry")
    }

    pub fn program(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// Every recorded invocation, as its argument vector.
    pub fn calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default();
        let mut calls = Vec::new();
        let mut current = Vec::new();
        for line in text.lines() {
            if line == "--" {
                calls.push(std::mem::take(&mut current));
            } else {
                current.push(line.to_string());
            }
        }
        calls
    }

    /// Invocations other than the read-only questions about the client (`buildx version`,
    /// `version`): what the tool asked docker to do.
    pub fn actions(&self) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|c| {
                !matches!(c[0].as_str(), "version" | "buildx" | "--version" | "info")
                    || c.get(1).is_some_and(|a| a == "build")
            })
            .collect()
    }

    /// Invocations of one docker subcommand (`build`, `push`, ...).
    pub fn calls_of(&self, subcommand: &str) -> Vec<Vec<String>> {
        self.calls().into_iter().filter(|c| c.first().map(String::as_str) == Some(subcommand)).collect()
    }

    /// The secrets that reached the fake docker through its environment (none may).
    pub fn leaked(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("leaked")).unwrap_or_default()
    }

    pub fn stdin(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdin")).unwrap_or_default()
    }

    pub fn raw_calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
    }
}

/// A registry on loopback that answers the OCI distribution API's manifest requests the way
/// Debian's docker-registry (distribution 2.8) does, from what `FakeDocker` pushed. It can be
/// told to answer otherwise (401, 429, 5xx...) or to stop answering, and records what it was
/// asked.
pub struct FakeRegistry {
    port: u16,
    state: std::sync::Arc<std::sync::Mutex<RegistryState>>,
}

#[derive(Default)]
struct RegistryState {
    pushed: PathBuf,
    /// Manifest requests whose path contains the pattern get this status and error code,
    /// `times` times (0: always).
    rules: Vec<(String, u16, String, usize)>,
    down: bool,
    requests: Vec<String>,
}

impl FakeRegistry {
    pub fn start(pushed: PathBuf) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state =
            std::sync::Arc::new(std::sync::Mutex::new(RegistryState { pushed, ..Default::default() }));
        let shared = std::sync::Arc::downgrade(&state);
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            // Ends when the FakeRegistry is dropped.
            while let Some(state) = shared.upgrade() {
                let down = state.lock().unwrap().down;
                if down {
                    listener = None;
                } else if listener.is_none() {
                    listener = TcpListener::bind(("127.0.0.1", port)).ok();
                    listener.iter().for_each(|l| l.set_nonblocking(true).unwrap());
                }
                match listener.as_ref().map(|l| l.accept()) {
                    Some(Ok((stream, _))) => {
                        let state = state.clone();
                        std::thread::spawn(move || serve(stream, &state));
                    }
                    _ => {
                        drop(state);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        });
        FakeRegistry { port, state }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Manifest requests whose request line (`GET /v2/ns/base/manifests/latest`) contains
    /// `pattern` get `status` with error `code`, the next `times` times (0: from now on).
    pub fn answer(&self, pattern: &str, status: u16, code: &str, times: usize) {
        self.state.lock().unwrap().rules.push((pattern.to_string(), status, code.to_string(), times));
    }

    /// Stops (or resumes) answering: connections are refused meanwhile.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// The request lines it was sent, e.g. `GET /v2/ns/base/manifests/v1.0.0_1`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn manifest_requests(&self, tag: &str) -> usize {
        self.requests().iter().filter(|r| r.ends_with(&format!("/manifests/{tag}"))).count()
    }
}

fn serve(mut stream: TcpStream, state: &std::sync::Mutex<RegistryState>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        // A TLS handshake on this plain-HTTP port: answer as Go's HTTP server does.
        if request.first() == Some(&0x16) {
            let _ = stream.write_all(
                b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
            );
            return;
        }
    }
    // The body, when the request has one (a manifest PUT).
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").map_or(request.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let sent = String::from_utf8_lossy(&request[head_end..]).into_owned();
    let line = head.lines().next().unwrap_or_default();
    let method = line.split_whitespace().next().unwrap_or_default().to_string();
    let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let (status, headers, body) = {
        let mut state = state.lock().unwrap();
        state.requests.push(format!("{method} {path}"));
        let port = stream.local_addr().unwrap().port();
        let rule = take_rule(&mut state, &format!("{method} {path}"));
        match method.as_str() {
            "PUT" => put(&state, rule, &path, &sent, port),
            _ => answer(&state, rule, &path, port),
        }
    };
    let reason = match status {
        200 => "OK",
        201 => "Created",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\n{headers}Docker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// The scripted answer for this request, if a rule matches it; a rule for `times` answers
/// counts down.
fn take_rule(state: &mut RegistryState, request: &str) -> Option<(u16, String)> {
    if request.ends_with("/v2/") {
        return None;
    }
    let i = state.rules.iter().position(|(pattern, ..)| request.contains(pattern.as_str()))?;
    let (_, status, code, times) = state.rules[i].clone();
    if times == 1 {
        state.rules.remove(i);
    } else if times > 1 {
        state.rules[i].3 -= 1;
    }
    Some((status, code))
}

/// A manifest PUT, as `crane tag` sends one: the manifest of a pushed image, under a new tag.
fn put(
    state: &RegistryState,
    rule: Option<(u16, String)>,
    path: &str,
    body: &str,
    port: u16,
) -> (u16, String, String) {
    let json = "Content-Type: application/json; charset=utf-8\r\n".to_string();
    if let Some((status, code)) = rule.filter(|(status, _)| *status != 200) {
        let message = code.to_ascii_lowercase().replace('_', " ");
        return (status, json, format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#));
    }
    let Some((repository, tag)) = path.strip_prefix("/v2/").and_then(|p| p.split_once("/manifests/")) else {
        return (404, json, r#"{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}"#.into());
    };
    let manifest: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let id = manifest["config"]["digest"].as_str().unwrap_or_default().to_string();
    let pushed = std::fs::read_to_string(&state.pushed).unwrap_or_default();
    // The same manifest has the same digest: the one it was first pushed with.
    let Some(digest) = pushed.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        let (_, known, digest) = (words.next()?, words.next()?, words.next()?);
        (known == id).then(|| digest.to_string())
    }) else {
        return (
            400,
            json,
            r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#.into(),
        );
    };
    let line = format!("127.0.0.1:{port}/{repository}:{tag} {id} {digest}\n");
    let mut file = std::fs::OpenOptions::new().append(true).create(true).open(&state.pushed).unwrap();
    file.write_all(line.as_bytes()).unwrap();
    (201, format!("Docker-Content-Digest: {digest}\r\n"), String::new())
}

fn answer(
    state: &RegistryState,
    rule: Option<(u16, String)>,
    path: &str,
    port: u16,
) -> (u16, String, String) {
    let json = "Content-Type: application/json; charset=utf-8\r\n".to_string();
    if path == "/v2/" {
        return (200, json, "{}".into());
    }
    let Some((repository, tag)) = path.strip_prefix("/v2/").and_then(|p| p.split_once("/manifests/")) else {
        return (404, json, r#"{"errors":[{"code":"UNSUPPORTED","message":"not here"}]}"#.into());
    };
    let error = |code: &str, message: &str| {
        format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#)
    };
    if let Some((status, code)) = rule {
        if status == 200 {
            let digest = format!("sha256:{}", "e".repeat(64));
            let headers = format!("Content-Type: application/vnd.docker.distribution.manifest.v2+json\r\nDocker-Content-Digest: {digest}\r\n");
            return (
                200,
                headers,
                format!(
                    r#"{{"schemaVersion":2,"config":{{"digest":"sha256:{}"}},"layers":[]}}"#,
                    "f".repeat(64)
                ),
            );
        }
        let mut headers = json;
        if status == 401 {
            headers.push_str("WWW-Authenticate: Basic realm=\"fake\"\r\n");
        }
        return (status, headers, error(&code, &code.to_ascii_lowercase().replace('_', " ")));
    }
    let reference = format!("127.0.0.1:{port}/{repository}:{tag}");
    let pushed = std::fs::read_to_string(&state.pushed).unwrap_or_default();
    let mut found = pushed.lines().filter_map(|l| {
        let mut words = l.split_whitespace();
        Some((words.next()?, words.next()?, words.next()?))
    });
    match found.rfind(|(r, _, _)| *r == reference) {
        Some((_, id, digest)) => (
            200,
            format!("Content-Type: application/vnd.docker.distribution.manifest.v2+json\r\nDocker-Content-Digest: {digest}\r\n"),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"{id}"}},"layers":[]}}"#
            ),
        ),
        None => (404, json, error("MANIFEST_UNKNOWN", "manifest unknown")),
    }
}

/// Whether process `pid` runs (a zombie, killed and waiting for its parent to reap it, does not).
pub fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    // `pid (comm) state ...`: the state follows the last `)`.
    stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
}

pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A three-image inventory (base, child FROM base, quiet with push = false) under
/// `127.0.0.1:<port>/ns`, a fake docker to run it against, and a fake registry on that port
/// that holds what the fake docker pushed.
pub struct Fixture {
    pub dir: TempDir,
    pub inventory: PathBuf,
    pub docker: FakeDocker,
    pub registry: FakeRegistry,
}

impl Fixture {
    pub fn new(label: &str) -> Fixture {
        let dir = TempDir::new(label);
        let docker = FakeDocker::new();
        let registry = FakeRegistry::start(docker.registry_file());
        let images: &[(&str, &[&str], bool)] =
            &[("base", &[], true), ("child", &["base"], true), ("quiet", &[], false)];
        let inventory = fixture_inventory(&dir, &format!("{}/ns", registry.host()), "base:1", images);
        Fixture { dir, inventory, docker, registry }
    }

    /// `127.0.0.1:<port>/ns`, the registry every fixture image lives under.
    pub fn reg(&self) -> String {
        format!("{}/ns", self.registry.host())
    }

    /// `xtask ARGS --inventory <fixture>` with the fake docker.
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = xtask();
        cmd.args(args)
            .arg("--inventory")
            .arg(&self.inventory)
            .env("DOCKER", self.docker.program())
            // No credentials of the machine's own: only what a test stores.
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        cmd
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.xtask(args);
        cmd.envs(env.iter().copied());
        run(&mut cmd)
    }

    /// What the tool asked docker to do (not the questions about the client), arguments
    /// joined by spaces.
    pub fn commands(&self) -> Vec<String> {
        self.docker.actions().iter().map(|c| c.join(" ")).collect()
    }

    pub fn pushes(&self) -> Vec<String> {
        self.commands().into_iter().filter(|c| c.starts_with("push ")).collect()
    }

    /// A file the run wrote in the fixture folder, empty when absent.
    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

/// Writes a small inventory of busybox-based fixture images into `dir` and returns its path.
/// `base` is the local base image every fixture starts FROM.
pub fn fixture_inventory(
    dir: &TempDir,
    registry: &str,
    base: &str,
    images: &[(&str, &[&str], bool)],
) -> PathBuf {
    let mut toml = format!("registry = \"{registry}\"\n\n[test_package]\nname = \"test\"\ntag = \"do_not_use\"\nimage = \"{}\"\n", images[0].0);
    for (name, parents, push) in images {
        let mut dockerfile = String::new();
        match parents.first() {
            Some(parent) => {
                let arg = format!("{}_IMAGE", parent.to_uppercase().replace('-', "_"));
                dockerfile.push_str(&format!("ARG {arg}\nFROM ${{{arg}}}\n"));
            }
            None => dockerfile.push_str(&format!("FROM {base}\n")),
        }
        dockerfile.push_str(&format!("RUN echo {name} > /{name}.txt\n"));
        dir.write(&format!("Dockerfile-{name}"), &dockerfile);
        let deps: Vec<String> = parents.iter().map(|p| format!("\"{p}\"")).collect();
        toml.push_str(&format!(
            "\n[images.{name}]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-{name}\"\npush = {push}\ndepends_on = [{}]\n",
            deps.join(", ")
        ));
    }
    dir.write("images.toml", &toml)
}

// ---------------------------------------------------------------------------------------------
// The real engine and registry.

/// The docker CLI the end-to-end tests drive (the same one the tool will run).
pub fn docker_cli() -> String {
    std::env::var("DOCKER").unwrap_or_else(|_| "docker".into())
}

/// Fails the test unless a Docker engine answers. The end-to-end tests never skip silently:
/// a developer without an engine may set XTASK_SKIP_E2E=1, which CI never does.
pub fn require_engine() -> bool {
    let answers = Command::new(docker_cli())
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if answers {
        return true;
    }
    let skip = std::env::var("XTASK_SKIP_E2E").is_ok_and(|v| v == "1");
    if skip && std::env::var("CI").is_err() {
        eprintln!("SKIPPED: no Docker engine answers and XTASK_SKIP_E2E=1 is set");
        return false;
    }
    panic!(
        "the end-to-end tests need a Docker engine and none answers `docker version`. Start dockerd \
         (bash .ci/run does it on Debian), or set XTASK_SKIP_E2E=1 outside CI to skip them knowingly"
    );
}

/// A local base image made from the host's static busybox, since nothing can be pulled.
pub fn busybox_base() -> &'static str {
    static BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BASE.get_or_init(|| shared_base(&docker_cli()))
}

/// The busybox base in podman's own image store (it does not share the docker engine's).
pub fn podman_busybox_base() -> &'static str {
    static BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BASE.get_or_init(|| shared_base("podman"))
}

/// The one image the tests share: named by a digest of what goes into it, so that a binary's
/// setup makes it once per engine and every later run reuses exactly that (an image under the
/// name holds these very files), and the engine does not gain a base per run.
fn shared_base(client: &str) -> String {
    let busybox = std::fs::read(busybox_path()).unwrap();
    let digest = fnv(&busybox) ^ fnv(APPLETS.join(" ").as_bytes());
    let reference = format!("xtask-test/busybox:{digest:016x}");
    let present = Command::new(client)
        .args(["image", "inspect", "--format", "{{.Id}}", &reference])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        import_rootfs(client, &reference, &[]);
    }
    reference
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

const APPLETS: [&str; 8] = ["sh", "echo", "cat", "ls", "id", "find", "stat", "sleep"];

fn busybox_path() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the end-to-end tests need a static busybox (Debian: apt-get install busybox-static)")
}

/// Imports, as `reference`, a root file system of the host's static busybox plus `files`
/// (path without the leading `/`, contents): a base image made here, since nothing can be
/// pulled.
pub fn import_rootfs(client: &str, reference: &str, files: &[(&str, &str)]) {
    let dir = TempDir::new("rootfs");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox_path(), bin.join("busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for (path, contents) in files {
        dir.write(path, contents);
    }
    let tar = Command::new("tar").arg("-C").arg(dir.path()).args(["-c", "."]).output().unwrap();
    assert!(tar.status.success());
    let mut import = Command::new(client)
        .args(["import", "-", reference])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {client}: {e}"));
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success(), "{client} import of {reference} failed");
}

/// A name for this machine that is not a loopback literal but resolves into 127.0.0.0/8, as a
/// corporate registry's name resolves to its address: the host name when it does, else
/// `localhost`. The engine treats registries there as plain HTTP by its insecure CIDRs.
pub fn loopback_name() -> String {
    use std::net::ToSocketAddrs;
    let host =
        Command::new("hostname").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let loopback = |name: &str| {
        (name, 0u16).to_socket_addrs().is_ok_and(|mut addrs| addrs.all(|a| a.ip().is_loopback()))
    };
    match host {
        Ok(name) if !name.is_empty() && name.parse::<std::net::IpAddr>().is_err() && loopback(&name) => name,
        _ => "localhost".to_string(),
    }
}

/// The docker buildx plugin .ci/run installs out of docker's own plugin folders (or
/// `$XTASK_TEST_BUILDX`), linked into `config` (a DOCKER_CONFIG folder) so that a client run
/// with that folder has buildx. False when there is none; in CI that fails the test.
pub fn add_buildx(config: &Path) -> bool {
    let plugin = std::env::var("XTASK_TEST_BUILDX")
        .unwrap_or_else(|_| "/usr/local/libexec/xtask/docker-buildx".into());
    if !Path::new(&plugin).is_file() {
        if std::env::var("CI").is_ok() {
            panic!(
                "CI must test BuildKit through buildx, and {plugin} is missing (bash .ci/run installs it)"
            );
        }
        eprintln!("NOTE: no buildx plugin at {plugin}: the buildx path is not tested here");
        return false;
    }
    let plugins = config.join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let link = plugins.join("docker-buildx");
    if !link.exists() {
        std::os::unix::fs::symlink(&plugin, link).unwrap();
    }
    true
}

/// Whether `client` has the buildx plugin (with its environment as the tool would run it).
pub fn has_buildx(client: &str, config: Option<&Path>) -> bool {
    let mut cmd = Command::new(client);
    cmd.args(["buildx", "version"]);
    if let Some(config) = config {
        cmd.env("DOCKER_CONFIG", config);
    }
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Whether `program` can be run; in CI a missing one fails the test, as a missing engine does.
pub fn require_program(program: &str, why: &str) -> bool {
    // Most programs answer --version; some (pyspdxtools) only --help.
    let answers = |arg: &str| Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success());
    if answers("--version") || answers("--help") {
        return true;
    }
    if std::env::var("CI").is_err() && std::env::var("XTASK_SKIP_E2E").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: {program} is not installed and XTASK_SKIP_E2E=1 is set");
        return false;
    }
    panic!("{why} needs {program}, which is not installed (bash .ci/run installs it on Debian)");
}

/// A throwaway registry on its own port and data folder, stopped when dropped: the
/// `docker-registry` (Debian) or `registry` binary when on PATH.
pub struct Registry {
    pub port: u16,
    child: Child,
    /// How it was started, to start it again.
    command: Vec<String>,
    /// Set when the registry runs as a registry:2 container rather than a local binary.
    container: Option<String>,
    _dir: TempDir,
    pub auth: Option<(String, String)>,
    /// The namespace every test image pushed here lives under, removed from the engine when
    /// the registry is dropped.
    pub names: OwnNames,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user.to_string(), password.to_string())))
    }

    fn start_with(auth: Option<(String, String)>) -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        Registry::spawn(dir, port, auth)
    }

    fn spawn(dir: TempDir, port: u16, auth: Option<(String, String)>) -> Registry {
        let data = dir.path().join("data");
        let mut config = format!(
            "version: 0.1\nlog: {{ level: warn }}\nstorage: {{ filesystem: {{ rootdirectory: {} }}, delete: {{ enabled: true }} }}\nhttp: {{ addr: 127.0.0.1:{port} }}\n",
            data.display()
        );
        if let Some((user, password)) = &auth {
            let htpasswd = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("a registry with auth needs htpasswd (Debian: apt-get install apache2-utils)");
            assert!(htpasswd.status.success());
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, htpasswd.stdout).unwrap();
            config.push_str(&format!("auth: {{ htpasswd: {{ realm: test, path: {} }} }}\n", path.display()));
        }
        let config_path = dir.path().join("config.yml");
        let binary = ["docker-registry", "registry"].into_iter().find(|p| on_path(p));
        let container = binary.is_none().then(|| format!("xtask-test-registry-{port}"));
        let command: Vec<String> = match binary {
            Some(program) => {
                std::fs::write(&config_path, config).unwrap();
                vec![program.into(), "serve".into(), config_path.display().to_string()]
            }
            // Docker Desktop and similar: the same registry as a container, its folder mounted
            // at the same path so the config's paths hold inside it too.
            None => {
                let config = config.replace(&format!("addr: 127.0.0.1:{port}"), "addr: 0.0.0.0:5000");
                std::fs::write(&config_path, config).unwrap();
                let folder = dir.path().display().to_string();
                let name = container.clone().unwrap_or_default();
                let publish = format!("127.0.0.1:{port}:5000");
                let mount = format!("{folder}:{folder}");
                // The image's entrypoint serves a config named by its .yml path.
                [
                    docker_cli().as_str(),
                    "run",
                    "--rm",
                    "--name",
                    &name,
                    "-p",
                    &publish,
                    "-v",
                    &mount,
                    "registry:2",
                ]
                .into_iter()
                .map(String::from)
                .chain([config_path.display().to_string()])
                .collect()
            }
        };
        let child = launch(&command, &dir.path().join("log"));
        let registry = Registry { port, child, command, container, _dir: dir, auth, names: OwnNames::new() };
        registry.wait_ready();
        registry
    }

    /// Starts the registry again after `stop`, on the same port with the same data.
    pub fn restart(&mut self) {
        self.child = launch(&self.command, &self._dir.path().join("log"));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("registry on port {} did not start", self.port);
    }

    /// Whether `GET /v2/` gets an HTTP answer (200 open, 401 with auth).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.host());
        let mut head = [0u8; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut head).is_ok()
            && head.starts_with(b"HTTP/1.1 ")
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry under another name for this machine, e.g. `loopback_name()`.
    pub fn host_named(&self, name: &str) -> String {
        format!("{name}:{}", self.port)
    }

    /// `127.0.0.1:<port>/<token>`: the registry and namespace a test's images go under.
    pub fn ns(&self) -> String {
        format!("{}/{}", self.host(), self.names.token())
    }

    /// The same namespace with the registry reached under another name.
    pub fn ns_named(&self, name: &str) -> String {
        format!("{}/{}", self.host_named(name), self.names.token())
    }

    /// `<token>/<name>`: the repository of image `name` in the namespace, as the API names it.
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.names.token())
    }

    /// The tags of `repository`, sorted; empty when the repository does not exist.
    pub fn tags(&self, repository: &str) -> Vec<String> {
        let (status, _, body) = self.get(&format!("/v2/{repository}/tags/list"));
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "tags/list of {repository}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut tags: Vec<String> = json["tags"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// The digest the registry serves for `repository:tag`.
    pub fn digest(&self, repository: &str, tag: &str) -> String {
        let (status, headers, body) = self.get(&format!("/v2/{repository}/manifests/{tag}"));
        assert_eq!(status, 200, "manifest of {repository}:{tag}: {body}");
        header(&headers, "docker-content-digest").expect("Docker-Content-Digest header")
    }

    /// Labels of the image config behind `repository:tag`.
    pub fn config(&self, repository: &str, tag: &str) -> serde_json::Value {
        let (_, _, body) = self.get(&format!("/v2/{repository}/manifests/{tag}"));
        let manifest: serde_json::Value = serde_json::from_str(&body).unwrap();
        let digest = manifest["config"]["digest"].as_str().unwrap().to_string();
        let (status, _, body) = self.get(&format!("/v2/{repository}/blobs/{digest}"));
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    }

    /// The manifest under `repository:tag` as stored: its media type and bytes.
    pub fn manifest(&self, repository: &str, tag: &str) -> (String, String) {
        let (status, headers, body) = self.get(&format!("/v2/{repository}/manifests/{tag}"));
        assert_eq!(status, 200, "manifest of {repository}:{tag}: {body}");
        (header(&headers, "content-type").expect("Content-Type header"), body)
    }

    /// PUTs an OCI image index of `members` (platform as `os/arch`, repository:tag of a
    /// manifest pushed before) under `repository:tag`, as a multi-platform upstream image is.
    pub fn put_index(&self, repository: &str, tag: &str, members: &[(&str, &str)]) {
        let manifests: Vec<serde_json::Value> = members
            .iter()
            .map(|(platform, member)| {
                let (os, arch) = platform.split_once('/').unwrap();
                let (media_type, body) = self.manifest(repository, member);
                serde_json::json!({
                    "mediaType": media_type,
                    "digest": self.digest(repository, member),
                    "size": body.len(),
                    "platform": { "os": os, "architecture": arch },
                })
            })
            .collect();
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        })
        .to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let request = format!(
            "PUT /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: \
             application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host(),
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "PUT of the index {repository}:{tag}: {response}");
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut request = format!(
            // Every manifest type: distribution answers MANIFEST_UNKNOWN for an OCI manifest
            // (podman pushes those) when the Accept header leaves OCI out.
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json\r\n",
            self.host()
        );
        if let Some((user, password)) = &self.auth {
            request.push_str(&format!("Authorization: Basic {}\r\n", base64(&format!("{user}:{password}"))));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = if header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, head.to_string(), body)
    }

    /// Stops the registry (keeping its data) to simulate an outage.
    pub fn stop(&mut self) {
        if let Some(name) = &self.container {
            let _ = Command::new(docker_cli()).args(["rm", "-f", name]).output();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn launch(command: &[String], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(&command[0])
        .args(&command[1..])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn base64(input: &str) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// An HTTP server on loopback that answers one request with `status` and `body` and hands the
/// request it received (head and body) back through `request()`.
pub struct OneShotHttp {
    pub url: String,
    handle: Option<std::thread::JoinHandle<String>>,
}

impl OneShotHttp {
    pub fn start(status: u16, body: &'static str) -> OneShotHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let response = format!(
                "HTTP/1.1 {status} Answer\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        OneShotHttp { url, handle: Some(handle) }
    }

    /// The request the server received.
    pub fn request(mut self) -> String {
        self.handle.take().unwrap().join().unwrap()
    }
}
