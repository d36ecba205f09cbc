//! The only place that runs the docker CLI: `docker` on PATH, or `$DOCKER` when set.
//!
//! Every call is an argument vector, never a shell string; a secret reaches docker only on
//! stdin. Every child runs under a timeout and stops when the tool is interrupted. Login, push
//! and registry queries are retried with backoff when the failure is transient.

use std::fmt;
use std::time::Duration;

use anyhow::bail;

use crate::env::Env;
use crate::gha::Log;
use crate::plan::{Builder, DockerCommand};
use crate::process::{self, last_line, sleep_unless_interrupted, Finished, Io};
use crate::retry::{self, Backoff, Failure};
use crate::tarscan::{self, Listing};

/// A token. It has no Display, and Debug hides it, so it cannot end up in a message by accident.
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the one place that hands it to a child process's stdin.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How long one docker command may run before it is stopped and reported.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub build: Duration,
    pub push: Duration,
    /// Everything else: version, tag, login, logout, manifest inspect.
    pub command: Duration,
}

impl Timeouts {
    /// Defaults (build 60 min, push 20 min, other commands 2 min), or XTASK_BUILD_TIMEOUT,
    /// XTASK_PUSH_TIMEOUT and XTASK_COMMAND_TIMEOUT in seconds.
    pub fn from_env(env: &Env) -> Timeouts {
        let secs = |name: &str, default: u64| {
            Duration::from_secs(env.get(name).and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        Timeouts {
            build: secs("XTASK_BUILD_TIMEOUT", 3600),
            push: secs("XTASK_PUSH_TIMEOUT", 1200),
            command: secs("XTASK_COMMAND_TIMEOUT", 120),
        }
    }
}

pub struct Docker {
    program: String,
    timeouts: Timeouts,
    backoff: Backoff,
    log: Log,
}

/// What the registry says about one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Present,
    Absent,
    /// The registry wants credentials the engine does not have (or refuses the ones it has).
    Unauthorized(String),
    /// No answer: connection refused, DNS, TLS, timeouts (after the retries).
    Unreachable(String),
}

/// A finished child after any retries.
struct Attempts {
    last: Finished,
    retries: u32,
}

impl Attempts {
    /// `"after 3 retries: "` or nothing, for messages.
    fn after(&self) -> String {
        match self.retries {
            0 => String::new(),
            1 => "after 1 retry: ".into(),
            n => format!("after {n} retries: "),
        }
    }
}

const INSTALL_DOCKER: &str = "Install the Docker CLI, or set $DOCKER to the client to use";

impl Docker {
    pub fn from_env(env: &Env) -> Docker {
        Docker {
            program: env.get("DOCKER").unwrap_or("docker").to_string(),
            timeouts: Timeouts::from_env(env),
            backoff: Backoff::from_env(env),
            log: Log::new(env),
        }
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// Fails with the fix when the CLI is missing or the daemon does not answer.
    pub fn check_engine(&self) -> anyhow::Result<()> {
        let args = ["version", "--format", "{{.Server.Version}}"].map(String::from);
        let out = self.exec(&args, Io::Capture(None), self.timeouts.command)?;
        if !out.success {
            bail!(
                "the Docker daemon is not reachable ({}). Start it (dockerd, or Docker Desktop) and try again",
                last_line(&out.output)
            );
        }
        Ok(())
    }

    /// BuildKit whenever this client offers it: buildx when installed (required for
    /// `--builder`), else the built-in BuildKit of clients before 23, else the legacy builder.
    pub fn detect_builder(&self, name: Option<&str>) -> anyhow::Result<Builder> {
        let buildx =
            self.exec(&["buildx", "version"].map(String::from), Io::Capture(None), self.timeouts.command)?;
        if buildx.success {
            return Ok(Builder::Buildx { name: name.map(String::from) });
        }
        if let Some(name) = name {
            bail!(
                "--builder {name} needs docker buildx, which `{}` does not have: install the buildx plugin",
                self.program
            );
        }
        let args = ["version", "--format", "{{.Client.Version}}"].map(String::from);
        let version = self.exec(&args, Io::Capture(None), self.timeouts.command)?;
        let major =
            version.output.lines().next().and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok());
        match major {
            Some(major) if major < 23 => Ok(Builder::BuildKit),
            _ => Ok(Builder::Legacy),
        }
    }

    /// Runs a build: output live when `live`, else captured for printing whole. Err only when
    /// docker could not run to the end (missing, timed out, interrupted).
    pub fn build(&self, command: &DockerCommand, live: bool) -> anyhow::Result<Finished> {
        let io = if live { Io::Inherit } else { Io::Capture(None) };
        process::run_with_env(
            &self.program,
            &command.args,
            &command.env,
            io,
            self.timeouts.build,
            INSTALL_DOCKER,
        )
    }

    /// Runs `docker tag`.
    pub fn tag(&self, command: &DockerCommand) -> anyhow::Result<()> {
        let out = self.exec(&command.args, Io::Capture(None), self.timeouts.command)?;
        if !out.success {
            bail!("docker tag exited with {}: {}", out.status, last_line(&out.output));
        }
        Ok(())
    }

    /// Runs `docker push` (retrying transient failures) and returns the digest the registry
    /// answered with. Every attempt's output goes to `out`.
    pub fn push(&self, command: &DockerCommand, out: &mut String) -> anyhow::Result<Option<String>> {
        let what = format!("docker push {}", command.args.last().map_or("", String::as_str));
        let attempts = self
            .retrying(&what, Some(out), || self.exec(&command.args, Io::Capture(None), self.timeouts.push))?;
        if !attempts.last.success {
            bail!("{}{}", attempts.after(), last_line(&attempts.last.output));
        }
        Ok(attempts.last.output.lines().find_map(push_digest))
    }

    /// `docker login HOST -u USER --password-stdin`, the token on stdin.
    pub fn login(&self, host: &str, username: &str, token: &Secret) -> anyhow::Result<()> {
        let args = login_args(host, username);
        let stdin = token.expose().as_bytes();
        let attempts = self.retrying(&format!("docker login {host}"), None, || {
            self.exec(&args, Io::Capture(Some(stdin)), self.timeouts.command)
        })?;
        if !attempts.last.success {
            // docker does not echo the password, but scrub it anyway in case a client ever does.
            let said = attempts.last.output.replace(token.expose(), "***");
            bail!("docker login to {host} as {username} failed: {}{}", attempts.after(), last_line(&said));
        }
        Ok(())
    }

    /// `docker logout HOST`, so credentials do not outlive the job on a reused runner.
    pub fn logout(&self, host: &str) -> anyhow::Result<()> {
        let args = ["logout", host].map(String::from);
        let out = self.exec(&args, Io::Capture(None), self.timeouts.command)?;
        if !out.success {
            bail!("{}", last_line(&out.output));
        }
        Ok(())
    }

    /// The user an image is configured to run as, and its files (from a container that is
    /// created, exported and removed, never started), keeping the contents of `keep`'s files.
    pub fn image_files(
        &self,
        reference: &str,
        keep: &dyn Fn(&str) -> bool,
    ) -> anyhow::Result<(String, Listing)> {
        let inspect = ["image", "inspect", "--format", "{{.Config.User}}", reference].map(String::from);
        let user = self.exec(&inspect, Io::Capture(None), self.timeouts.command)?;
        if !user.success {
            bail!("cannot inspect {reference}: {}", last_line(&user.output));
        }
        // The entrypoint is never run; it only spares images without CMD a create error.
        let create = ["create", "--entrypoint", "/xtask-verify-never-runs", reference].map(String::from);
        let created = self.exec(&create, Io::Capture(None), self.timeouts.command)?;
        if !created.success {
            bail!("cannot create a container of {reference}: {}", last_line(&created.output));
        }
        let container = last_line(&created.output).to_string();
        let archive =
            std::env::temp_dir().join(format!("xtask-export-{}-{container}.tar", std::process::id()));
        let listing = (|| {
            let export = ["export", "--output", &archive.to_string_lossy(), &container].map(String::from);
            let exported = self.exec(&export, Io::Capture(None), self.timeouts.push)?;
            if !exported.success {
                bail!("cannot export the files of {reference}: {}", last_line(&exported.output));
            }
            let file = std::fs::File::open(&archive)?;
            tarscan::scan(std::io::BufReader::new(file), keep)
        })();
        let _ = self.exec(
            &["rm", "--force", &container].map(String::from),
            Io::Capture(None),
            self.timeouts.command,
        );
        let _ = std::fs::remove_file(&archive);
        Ok((user.output.trim().to_string(), listing?))
    }

    /// Asks the registry (with the engine's stored credentials) whether `reference` exists.
    pub fn manifest(&self, reference: &str, insecure: bool) -> anyhow::Result<Manifest> {
        let args = manifest_args(reference, insecure);
        let attempts = self.retrying(&format!("docker manifest inspect {reference}"), None, || {
            self.exec(&args, Io::Capture(None), self.timeouts.command)
        })?;
        Ok(match classify_manifest(attempts.last.success, &attempts.last.output) {
            Manifest::Unreachable(said) => Manifest::Unreachable(format!("{}{said}", attempts.after())),
            other => other,
        })
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the retries are used up; each
    /// retry is logged. `transcript` collects every attempt's output (pushes).
    fn retrying(
        &self,
        what: &str,
        mut transcript: Option<&mut String>,
        mut attempt: impl FnMut() -> anyhow::Result<Finished>,
    ) -> anyhow::Result<Attempts> {
        let mut retries = 0;
        loop {
            let last = attempt()?;
            if let Some(t) = transcript.as_deref_mut() {
                t.push_str(&last.output);
            }
            let transient = !last.success && retry::classify(&last.output) == Failure::Transient;
            if !transient || retries == self.backoff.retries {
                return Ok(Attempts { last, retries });
            }
            retries += 1;
            let wait = self.backoff.delay(retries, retry::jitter());
            self.log.warning(&format!(
                "{what} failed ({}); retry {retries} of {} in {:.1}s",
                last_line(&last.output),
                self.backoff.retries,
                wait.as_secs_f64()
            ));
            sleep_unless_interrupted(wait)?;
        }
    }

    fn exec(&self, args: &[String], io: Io<'_>, timeout: Duration) -> anyhow::Result<Finished> {
        process::run(&self.program, args, io, timeout, INSTALL_DOCKER)
    }
}

pub fn login_args(host: &str, username: &str) -> Vec<String> {
    ["login", host, "--username", username, "--password-stdin"].map(String::from).to_vec()
}

fn manifest_args(reference: &str, insecure: bool) -> Vec<String> {
    let mut args = vec!["manifest".to_string(), "inspect".to_string()];
    if insecure {
        args.push("--insecure".into());
    }
    args.push(reference.to_string());
    args
}

/// Reads `docker manifest inspect`'s answer. Unknown failures count as unreachable, never as
/// absent: treating "could not ask" as "not there" would let a rerun overwrite a pinned tag.
fn classify_manifest(success: bool, said: &str) -> Manifest {
    if success {
        return Manifest::Present;
    }
    let lower = said.to_ascii_lowercase();
    let line = last_line(said).to_string();
    if lower.contains("no such manifest") || lower.contains("manifest unknown") {
        Manifest::Absent
    } else if ["unauthorized", "no basic auth credentials", "denied", "401", "403"]
        .iter()
        .any(|w| lower.contains(w))
    {
        Manifest::Unauthorized(line)
    } else {
        Manifest::Unreachable(line)
    }
}

/// The digest in docker push's closing line: `v1: digest: sha256:... size: 735`.
pub fn push_digest(line: &str) -> Option<String> {
    let rest = line.split_once("digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_from_push_output() {
        let line =
            "v1: digest: sha256:0e7b175490c06313a8508796098a7ac360f11dc2a74b6cf9e14f38dbcd79fddb size: 735";
        assert_eq!(
            push_digest(line).as_deref(),
            Some("sha256:0e7b175490c06313a8508796098a7ac360f11dc2a74b6cf9e14f38dbcd79fddb")
        );
        assert_eq!(push_digest("fb7774699db7: Pushed"), None);
    }

    #[test]
    fn manifest_answers() {
        assert_eq!(classify_manifest(true, ""), Manifest::Present);
        assert_eq!(classify_manifest(false, "no such manifest: 127.0.0.1:5055/x/a:nope\n"), Manifest::Absent);
        assert!(matches!(
            classify_manifest(false, "Get \"http://h/v2/x/manifests/y\": no basic auth credentials\n"),
            Manifest::Unauthorized(_)
        ));
        assert!(matches!(
            classify_manifest(false, "unauthorized: authentication required"),
            Manifest::Unauthorized(_)
        ));
        assert!(matches!(
            classify_manifest(
                false,
                "failed to configure transport: error pinging v2 registry: connect: connection refused"
            ),
            Manifest::Unreachable(_)
        ));
        assert!(matches!(classify_manifest(false, "something new"), Manifest::Unreachable(_)));
    }

    #[test]
    fn secret_debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("ghp_abc".into())), "Secret(***)");
    }
}
