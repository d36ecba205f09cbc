//! What the container CLI runs with: the secret it is given on stdin, the time limits, and
//! docker's own DOCKER_BUILDKIT switch.

use std::fmt;
use std::time::Duration;

use anyhow::bail;

use crate::sys::env::Env;

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

/// How long one command may run before it is stopped and reported.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub build: Duration,
    pub push: Duration,
    /// Everything else: version, tag, login, logout, registry queries.
    pub command: Duration,
}

impl Timeouts {
    /// Defaults (build 60 min, push 20 min, other commands 2 min), or XTASK_BUILD_TIMEOUT,
    /// XTASK_PUSH_TIMEOUT and XTASK_COMMAND_TIMEOUT in seconds.
    pub fn from_env(env: &Env) -> anyhow::Result<Timeouts> {
        // Between a second and a week: a limit of 0 stops everything at once, and one of a
        // lifetime is no limit (and overflows the clock).
        let secs = |name: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(env.number_in(name, default, 1..=7 * 24 * 3600)?))
        };
        Ok(Timeouts {
            build: secs("XTASK_BUILD_TIMEOUT", 3600)?,
            push: secs("XTASK_PUSH_TIMEOUT", 1200)?,
            command: secs("XTASK_COMMAND_TIMEOUT", 120)?,
        })
    }
}

/// Whether `DOCKER_BUILDKIT` turns BuildKit off. The values are docker's own (Go's boolean
/// spellings); any other is an error, as it is for docker.
pub(super) fn buildkit_off(env: &Env) -> anyhow::Result<bool> {
    match env.get("DOCKER_BUILDKIT") {
        None => Ok(false),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(true),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(false),
        Some(other) => bail!("DOCKER_BUILDKIT is `{other}`: docker reads it as a boolean (0 or 1)"),
    }
}
