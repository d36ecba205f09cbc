//! The only place that runs the container CLI: `docker` on PATH, or `$DOCKER` when set (a
//! pinned docker, or podman).
//!
//! Every call is an argument vector, never a shell string; a secret reaches the CLI only on
//! stdin. Every child runs under a time limit and stops when the tool is interrupted. Login
//! and push are retried with backoff when the failure is transient. What is parsed as data
//! (ids, versions, users) is read from stdout alone; errors come from stderr.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::model::filesystem::Config;
use crate::model::listing::Listing;
use crate::model::step::{BuildStep, Builder, Step};
use crate::sys::env::Env;
use crate::sys::export;
use crate::sys::gha::Log;
use crate::sys::process::{self, sleep_unless_interrupted, Finished, Io};
use crate::sys::retry::{self, Backoff, Failure};

mod insecure;
mod settings;
use settings::buildkit_off;
pub use settings::{Secret, Timeouts};

/// Which CLI `$DOCKER` is: their commands, outputs and registry settings differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Docker,
    Podman,
}

pub struct Docker {
    program: String,
    client: OnceLock<Client>,
    pub timeouts: Timeouts,
    pub backoff: Backoff,
    log: Log,
    /// `DOCKER_BUILDKIT=0`: the legacy builder is asked for, as docker itself reads it, also
    /// where buildx is installed.
    buildkit_off: bool,
}

const INSTALL_DOCKER: &str = "Install the Docker CLI, or set $DOCKER to the client to use";

/// What to do when the registry refuses a push (401, 403).
pub const REFUSED_PUSH: &str =
    "The registry refuses this push: log in with `cargo xtask login` (a token with \
     write:packages), or in GitHub Actions give the job `packages: write`";

/// A command stopped by its time limit, after its retries: it may have done part of its work
/// (a push the engine goes on with).
#[derive(Debug)]
pub struct StoppedByTimeLimit(pub String);

impl std::fmt::Display for StoppedByTimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoppedByTimeLimit {}

impl Docker {
    pub fn from_env(env: &Env, log: Log) -> anyhow::Result<Docker> {
        Ok(Docker {
            program: env.get("DOCKER").unwrap_or("docker").to_string(),
            client: OnceLock::new(),
            timeouts: Timeouts::from_env(env)?,
            backoff: Backoff::from_env(env)?,
            log,
            buildkit_off: buildkit_off(env)?,
        })
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// Whether `DOCKER_BUILDKIT=0` asks for the legacy builder.
    pub fn buildkit_off(&self) -> bool {
        self.buildkit_off
    }

    /// docker or podman, from `$DOCKER --version` (asked once).
    pub fn client(&self) -> anyhow::Result<Client> {
        if let Some(client) = self.client.get() {
            return Ok(*client);
        }
        let out = self.exec(&["--version"], Io::Capture(None), self.timeouts.command)?;
        let client = match out.stdout.trim_start().to_ascii_lowercase().starts_with("podman") {
            true => Client::Podman,
            false => Client::Docker,
        };
        Ok(*self.client.get_or_init(|| client))
    }

    /// Fails with the fix when the CLI is missing or the engine does not answer.
    pub fn check_engine(&self) -> anyhow::Result<()> {
        let out = self.exec(
            &["version", "--format", "{{.Server.Version}}"],
            Io::Capture(None),
            self.timeouts.command,
        )?;
        if !out.success || out.stdout.trim().is_empty() {
            bail!(
                "the container engine behind `{}` is not reachable ({}). Start it (dockerd, Docker Desktop, \
                 or podman's service) and try again",
                self.program,
                out.error_line()
            );
        }
        Ok(())
    }

    /// BuildKit whenever this client offers it: buildx when installed (required for
    /// `--builder`), else the built-in BuildKit of docker clients before 23, else the legacy
    /// builder. Podman builds with its own builder (buildah).
    pub fn detect_builder(&self, name: Option<&str>) -> anyhow::Result<Builder> {
        if self.client()? == Client::Podman {
            if let Some(name) = name {
                bail!(
                    "--builder {name} needs docker buildx; `{}` is podman, which has no builders to pick",
                    self.program
                );
            }
            return Ok(Builder::Podman);
        }
        if self.buildkit_off {
            if let Some(name) = name {
                bail!("--builder {name} needs BuildKit, and DOCKER_BUILDKIT=0 asks for the legacy builder");
            }
            return Ok(Builder::Legacy);
        }
        let buildx = self.exec(&["buildx", "version"], Io::Capture(None), self.timeouts.command)?;
        if buildx.success {
            return Ok(Builder::Buildx { name: name.map(String::from) });
        }
        if let Some(name) = name {
            bail!(
                "--builder {name} needs docker buildx, which `{}` does not have: install the buildx plugin",
                self.program
            );
        }
        let version = self.exec(
            &["version", "--format", "{{.Client.Version}}"],
            Io::Capture(None),
            self.timeouts.command,
        )?;
        let major = version.stdout.trim().split('.').next().and_then(|m| m.parse::<u32>().ok());
        match major {
            Some(major) if major < 23 => Ok(Builder::BuildKit),
            _ => Ok(Builder::Legacy),
        }
    }

    /// The driver of a buildx builder (`name`, or the current one) and the platforms it builds.
    pub fn buildx_builder(&self, name: Option<&str>) -> anyhow::Result<(String, Vec<String>)> {
        let mut args = vec!["buildx", "inspect"];
        args.extend(name);
        let out = self.exec(&args, Io::Capture(None), self.timeouts.command)?;
        if !out.success {
            bail!("docker buildx inspect {}: {}", name.unwrap_or(""), out.error_line());
        }
        Ok(parse_buildx_inspect(&out.stdout))
    }

    /// Runs a build: output streamed when `live`, else captured for printing whole.
    pub fn build(&self, build: &BuildStep, live: bool) -> anyhow::Result<Finished> {
        let io = if live { Io::Stream(self.log.sink()) } else { Io::Capture(None) };
        let command = build.command();
        process::run_with_env(
            &self.program,
            &command.args,
            &command.env,
            io,
            self.timeouts.build,
            INSTALL_DOCKER,
        )
    }

    /// Runs a short command (tag, image rm) that must succeed.
    pub fn run(&self, step: &Step) -> anyhow::Result<Finished> {
        let out = self.exec(&step.command().args, Io::Capture(None), self.timeouts.command)?;
        if !out.success {
            bail!("{} {} {}: {}", self.name(), step.verb(), out.status, out.error_line());
        }
        Ok(out)
    }

    /// Runs a push (retrying transient failures) and returns the digest docker reports, if
    /// any (podman reports none; the registry is asked afterwards either way). Every attempt's
    /// output goes to `transcript`.
    pub fn push(
        &self,
        reference: &str,
        registry: &str,
        transcript: &mut String,
    ) -> anyhow::Result<Option<String>> {
        let command = Step::push(reference).command();
        let what = format!("{} push {reference}", self.name());
        let last = self
            .retrying(&what, registry, Some(transcript), || {
                self.exec(&command.args, Io::Capture(None), self.timeouts.push)
            })
            .map_err(|e| {
                let said = format!("{e:#}");
                let refused = retry::plain_words(&said)
                    .iter()
                    .any(|w| ["unauthorized", "denied", "401", "403"].contains(&w.as_str()));
                match refused {
                    true => anyhow::anyhow!("{said}. {REFUSED_PUSH}"),
                    false => e,
                }
            })?;
        Ok(last.stdout.lines().find_map(push_digest))
    }

    /// Runs a pull, retrying transient failures; its output goes to `transcript`.
    pub fn pull(&self, reference: &str, transcript: &mut String) -> anyhow::Result<()> {
        self.pull_step(&Step::pull(reference), transcript)
    }

    /// Runs a pull step (retrying transient failures); its output goes to `transcript`.
    pub fn pull_step(&self, step: &Step, transcript: &mut String) -> anyhow::Result<()> {
        let reference = step.subject();
        let command = step.command();
        let what = format!("{} pull {reference}", self.name());
        let registry = crate::model::oci::registry_of(reference);
        self.retrying(&what, registry, Some(transcript), || {
            self.exec(&command.args, Io::Capture(None), self.timeouts.push)
        })
        .map(|_| ())
    }

    /// `docker login HOST -u USER --password-stdin`, the token on stdin.
    pub fn login(&self, host: &str, username: &str, token: &Secret) -> anyhow::Result<()> {
        let args = Step::Login { host: host.to_string(), username: username.to_string() }.command().args;
        let stdin = token.expose().as_bytes();
        let what = format!("{} login as {username}", self.name());
        let result = self.retrying(&what, host, None, || {
            self.exec(&args, Io::Capture(Some(stdin)), self.timeouts.command)
        });
        // The CLI does not echo the password, but scrub it anyway in case a client ever does.
        result.map(|_| ()).map_err(|e| anyhow::anyhow!("{}", format!("{e:#}").replace(token.expose(), "***")))
    }

    /// `docker logout HOST`, so credentials do not outlive the job on a reused runner.
    pub fn logout(&self, host: &str) -> anyhow::Result<()> {
        self.run(&Step::Logout { host: host.to_string() }).map(|_| ())
    }

    /// The configuration an image starts containers with, and its files (from a container that
    /// is created, exported and removed, never started), keeping the contents of `keep`'s files.
    pub fn image_files(
        &self,
        reference: &str,
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> anyhow::Result<(Config, Listing)> {
        let inspect = self.exec(
            &["image", "inspect", "--format", "{{json .Config}}", reference],
            Io::Capture(None),
            self.timeouts.command,
        )?;
        if !inspect.success {
            bail!("cannot inspect {reference}: {}", inspect.error_line());
        }
        let config = Config::parse(&inspect.stdout).with_context(|| format!("inspecting {reference}"))?;
        // The entrypoint is never run; it only spares images without CMD a create error.
        let create = ["create", "--entrypoint", "/xtask-verify-never-runs", reference];
        let created = self.exec(&create, Io::Capture(None), self.timeouts.command)?;
        let container =
            created.stdout.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default().to_string();
        if !created.success || container.is_empty() {
            bail!("cannot create a container of {reference}: {}", created.error_line());
        }
        // The files stream from `docker export` straight into the reader: no copy on disk.
        let export = ["export".to_string(), container.clone()];
        let listing =
            process::run_reading(&self.program, &export, self.timeouts.push, INSTALL_DOCKER, |files| {
                export::scan(files, keep)
            })
            .and_then(|(exported, listing)| match exported.success {
                true => listing,
                false => bail!("cannot export the files of {reference}: {}", exported.error_line()),
            });
        let _ = self.exec(&["rm", "--force", &container], Io::Capture(None), self.timeouts.command);
        Ok((config, listing?))
    }

    /// Asks the engine a question (`what`: `info`) that must be answered.
    fn ask(&self, what: &str, args: &[&str]) -> anyhow::Result<Finished> {
        let out = self.exec(args, Io::Capture(None), self.timeouts.command)?;
        if !out.success {
            bail!("{} {what} {}: {}", self.name(), out.status, out.error_line());
        }
        Ok(out)
    }

    /// Runs a short command and returns what it printed, whether it succeeded or not.
    pub fn capture(&self, args: &[&str]) -> anyhow::Result<Finished> {
        self.exec(args, Io::Capture(None), self.timeouts.command)
    }

    /// The digest of the image `reference` names, as a base: its registry digest when the
    /// engine knows it (it was pulled or pushed), else its image id (a local-only image).
    /// Pulled first when the engine does not have it, as the build would.
    pub fn base_digest(&self, reference: &str, transcript: &mut String) -> anyhow::Result<String> {
        let mut out = self.inspect_id_and(reference, ".RepoDigests")?;
        if !out.success {
            self.pull(reference, transcript)
                .map_err(|e| e.context(format!("{reference}, the base of a build, is not on this engine")))?;
            out = self.inspect_id_and(reference, ".RepoDigests")?;
        }
        let (id, digests): (String, Vec<String>) = id_and(reference, &out, "RepoDigests")?;
        Ok(crate::model::oci::repo_digest_of(reference, &digests).unwrap_or(id))
    }

    /// The platform (os, architecture, variant) a local image's configuration names.
    pub fn platform_of(&self, reference: &str) -> anyhow::Result<(String, String, String)> {
        // podman's image inspect has no Variant field.
        let format = match self.client()? {
            Client::Podman => "{{.Os}} {{.Architecture}}",
            Client::Docker => "{{.Os}} {{.Architecture}} {{.Variant}}",
        };
        let out = self.ask("image inspect", &["image", "inspect", "--format", format, reference])?;
        let mut words = out.stdout.split_whitespace().map(String::from);
        let (os, arch) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        Ok((os, arch, words.next().unwrap_or_default()))
    }

    /// The id and labels of a local image.
    pub fn id_and_labels(&self, reference: &str) -> anyhow::Result<(String, BTreeMap<String, String>)> {
        id_and(reference, &self.inspect_id_and(reference, ".Config.Labels")?, "labels")
    }

    /// `image inspect` of `reference` for its id and `field` as JSON.
    fn inspect_id_and(&self, reference: &str, field: &str) -> anyhow::Result<Finished> {
        let format = format!("{{{{.Id}}}} {{{{json {field}}}}}");
        self.exec(
            &["image", "inspect", "--format", &format, reference],
            Io::Capture(None),
            self.timeouts.command,
        )
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are used up; each
    /// retry is logged. A time limit that ran out counts as transient. The error names the
    /// command and the registry.
    fn retrying(
        &self,
        what: &str,
        registry: &str,
        mut transcript: Option<&mut String>,
        mut attempt: impl FnMut() -> anyhow::Result<Finished>,
    ) -> anyhow::Result<Finished> {
        let mut retries = 0;
        loop {
            let last = attempt()?;
            if let Some(t) = transcript.as_deref_mut() {
                t.push_str(&last.transcript());
            }
            if last.success {
                return Ok(last);
            }
            let cause = match last.timed_out {
                Some(limit) => format!("did not finish within {}s and was stopped", limit.as_secs_f64()),
                None => last.error_line().to_string(),
            };
            let transient =
                last.timed_out.is_some() || retry::classify(last.error_line()) == Failure::Transient;
            if !transient || retries == self.backoff.retries {
                let after = retry::after_retries(retries);
                let message = format!("{what} (registry {registry}) failed{after}: {cause}");
                return Err(match last.timed_out {
                    Some(_) => StoppedByTimeLimit(message).into(),
                    None => anyhow::anyhow!(message),
                });
            }
            retries += 1;
            let wait = self.backoff.delay(retries, retry::jitter());
            self.log.warning(&format!(
                "{what} (registry {registry}) failed ({cause}); retry {retries} of {} in {:.1}s",
                self.backoff.retries,
                wait.as_secs_f64()
            ));
            sleep_unless_interrupted(wait)?;
        }
    }

    /// `docker` or `podman`, for messages.
    fn name(&self) -> &str {
        std::path::Path::new(&self.program).file_name().and_then(|n| n.to_str()).unwrap_or(&self.program)
    }

    fn exec<S: AsRef<str>>(&self, args: &[S], io: Io<'_>, timeout: Duration) -> anyhow::Result<Finished> {
        let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
        let out = process::run(&self.program, &args, io, timeout, INSTALL_DOCKER)?;
        Ok(out)
    }
}

/// `Driver:` and the first node's `Platforms:` of `docker buildx inspect`.
fn parse_buildx_inspect(text: &str) -> (String, Vec<String>) {
    let field =
        |name: &str| text.lines().find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()));
    let driver = field("Driver:").unwrap_or_default();
    let platforms = field("Platforms:")
        .map(|p| {
            p.split(',')
                .map(|p| p.trim().trim_end_matches('*').to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    (driver, platforms)
}

/// The digest in docker push's closing line: `v1: digest: sha256:... size: 735`.
pub fn push_digest(line: &str) -> Option<String> {
    let rest = line.split_once("digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

/// `sha256:<hex>` whether the CLI said it with or without the algorithm (podman's ids come
/// bare from some commands).
/// The id and the JSON field of what `inspect_id_and` printed (JSON `null` as the default).
fn id_and<T: serde::de::DeserializeOwned + Default>(
    reference: &str,
    out: &Finished,
    what: &str,
) -> anyhow::Result<(String, T)> {
    if !out.success {
        bail!("cannot inspect {reference}: {}", out.error_line());
    }
    let (id, json) = out.stdout.trim().split_once(' ').unwrap_or((out.stdout.trim(), "null"));
    let value: Option<T> =
        serde_json::from_str(json).with_context(|| format!("reading the {what} of {reference}"))?;
    Ok((normalize_id(id), value.unwrap_or_default()))
}

pub fn normalize_id(id: &str) -> String {
    let id = id.trim();
    if id.contains(':') || id.is_empty() {
        id.to_string()
    } else {
        format!("sha256:{id}")
    }
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

    /// What buildx 0.13 prints for the engine's own builder.
    #[test]
    fn buildx_inspect() {
        let text = "Name:   default\nDriver: docker\n\nNodes:\nName:             default\nEndpoint:         default\n\
                    Status:           running\nBuildKit version: v0.8+unknown\nPlatforms:        linux/amd64, linux/386\n";
        assert_eq!(
            parse_buildx_inspect(text),
            ("docker".to_string(), vec!["linux/amd64".to_string(), "linux/386".to_string()])
        );
        let text = "Driver: docker-container\nPlatforms: linux/amd64*, linux/arm64\n";
        assert_eq!(parse_buildx_inspect(text).1, ["linux/amd64", "linux/arm64"]);
    }

    #[test]
    fn ids_carry_their_algorithm() {
        assert_eq!(normalize_id("abc\n"), "sha256:abc");
        assert_eq!(normalize_id("sha256:abc"), "sha256:abc");
    }

    #[test]
    fn secret_debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("ghp_abc".into())), "Secret(***)");
    }

    #[test]
    fn bad_time_limits_name_the_variable() {
        let err = Timeouts::from_env(&Env::from_pairs(&[("XTASK_BUILD_TIMEOUT", "abc")])).unwrap_err();
        assert!(err.to_string().contains("XTASK_BUILD_TIMEOUT=`abc`"), "{err}");
        assert!(Timeouts::from_env(&Env::from_pairs(&[("XTASK_PUSH_TIMEOUT", "0")])).is_err());
        let huge = Timeouts::from_env(&Env::from_pairs(&[("XTASK_COMMAND_TIMEOUT", "18446744073709551615")]));
        assert!(huge.unwrap_err().to_string().contains("out of range: give 1 to 604800"));
        assert_eq!(Timeouts::from_env(&Env::default()).unwrap().command, Duration::from_secs(120));
    }
}
