//! The only place that runs the docker CLI: `docker` on PATH, or `$DOCKER` when set.
//!
//! Every call is an argument vector, never a shell string (duct feeds stdin and reads output
//! while it streams); a secret reaches docker only on stdin.

use std::fmt;
use std::io::{BufRead, BufReader, Write};

use anyhow::{bail, Context};

use crate::env::Env;
use crate::plan::DockerCommand;

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

pub struct Docker {
    program: String,
}

/// What the registry says about one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Present,
    Absent,
    /// The registry wants credentials the engine does not have (or refuses the ones it has).
    Unauthorized(String),
    /// No answer: connection refused, DNS, TLS, timeouts.
    Unreachable(String),
}

impl Docker {
    pub fn from_env(env: &Env) -> anyhow::Result<Docker> {
        let program = env.get("DOCKER").unwrap_or("docker").to_string();
        Ok(Docker { program })
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// Fails with the fix when the CLI is missing or the daemon does not answer.
    pub fn check_engine(&self) -> anyhow::Result<()> {
        let out = duct::cmd(&self.program, ["version", "--format", "{{.Server.Version}}"])
            .stdout_capture()
            .stderr_capture()
            .stdin_null()
            .unchecked()
            .run();
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "cannot run `{}`: not found. Install the Docker CLI, or set $DOCKER to the client to use",
                self.program
            ),
            Err(e) => bail!("cannot run `{}`: {e}", self.program),
        };
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            bail!(
                "the Docker daemon is not reachable ({}). Start it (dockerd, or Docker Desktop) and try again",
                last_line(&said)
            );
        }
        Ok(())
    }

    /// Runs a build or tag step with its output going straight to the user.
    pub fn run(&self, command: &DockerCommand) -> anyhow::Result<()> {
        let out = duct::cmd(&self.program, &command.args)
            .stdin_null()
            .unchecked()
            .run()
            .with_context(|| format!("cannot run `{}`", self.program))?;
        if !out.status.success() {
            bail!("docker {} exited with {}", command.args[0], out.status);
        }
        Ok(())
    }

    /// Runs `docker push`, echoing its output, and returns the digest the registry answered with.
    pub fn push(&self, command: &DockerCommand) -> anyhow::Result<Option<String>> {
        let reader = duct::cmd(&self.program, &command.args)
            .stderr_to_stdout()
            .stdin_null()
            .unchecked()
            .reader()
            .with_context(|| format!("cannot run `{}`", self.program))?;
        let mut digest = None;
        let mut last = String::new();
        let stdout = std::io::stdout();
        for line in BufReader::new(&reader).lines() {
            let line = line.context("reading docker push output")?;
            digest = digest.or_else(|| push_digest(&line));
            let _ = writeln!(stdout.lock(), "{line}");
            last = line;
        }
        let status = reader.try_wait()?.map(|o| o.status);
        match status {
            Some(s) if s.success() => Ok(digest),
            Some(s) => bail!("{} ({})", last.trim(), s),
            None => bail!("docker push ended without an exit status"),
        }
    }

    /// `docker login HOST -u USER --password-stdin`, the token on stdin.
    pub fn login(&self, host: &str, username: &str, token: &Secret) -> anyhow::Result<()> {
        let out = duct::cmd(&self.program, login_args(host, username))
            .stdin_bytes(token.expose().as_bytes())
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("cannot run `{}`", self.program))?;
        if !out.status.success() {
            // docker does not echo the password, but scrub it anyway in case a client ever does.
            let said = String::from_utf8_lossy(&out.stderr).replace(token.expose(), "***");
            bail!("docker login to {host} as {username} failed: {}", last_line(&said));
        }
        Ok(())
    }

    /// `docker logout HOST`, so credentials do not outlive the job on a reused runner.
    pub fn logout(&self, host: &str) -> anyhow::Result<()> {
        let sh = xshell::Shell::new()?;
        let program = &self.program;
        xshell::cmd!(sh, "{program} logout {host}").quiet().ignore_stdout().run()?;
        Ok(())
    }

    /// Asks the registry (with the engine's stored credentials) whether `reference` exists.
    pub fn manifest(&self, reference: &str, insecure: bool) -> anyhow::Result<Manifest> {
        let out = duct::cmd(&self.program, manifest_args(reference, insecure))
            .stdout_capture()
            .stderr_capture()
            .stdin_null()
            .unchecked()
            .run()
            .with_context(|| format!("cannot run `{}`", self.program))?;
        let said = String::from_utf8_lossy(&out.stderr);
        Ok(classify_manifest(out.status.success(), &said))
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
fn classify_manifest(success: bool, stderr: &str) -> Manifest {
    if success {
        return Manifest::Present;
    }
    let lower = stderr.to_ascii_lowercase();
    let said = last_line(stderr).to_string();
    if lower.contains("no such manifest") || lower.contains("manifest unknown") {
        Manifest::Absent
    } else if ["unauthorized", "no basic auth credentials", "denied", "401", "403"]
        .iter()
        .any(|w| lower.contains(w))
    {
        Manifest::Unauthorized(said)
    } else {
        Manifest::Unreachable(said)
    }
}

/// The digest in docker push's closing line: `v1: digest: sha256:... size: 735`.
pub fn push_digest(line: &str) -> Option<String> {
    let rest = line.split_once("digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

fn last_line(text: &str) -> &str {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message")
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
