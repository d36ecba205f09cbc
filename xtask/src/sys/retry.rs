//! Which failures are worth another try, and how long to wait before it. Pure.

use std::time::Duration;

use crate::sys::env::Env;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The network or the registry had a bad moment: connection refused or reset, timeouts,
    /// HTTP 5xx, 429 / toomanyrequests.
    Transient,
    /// Retrying cannot help: bad credentials, missing permission, unknown name, or anything not
    /// recognised as transient.
    Permanent,
}

/// Reads the final error line of a failed docker command (never its progress output): the
/// registry's error codes and HTTP status codes count only as whole words, after every word
/// that names something (a reference, a URL, a path) is set aside, so that a build id such as
/// `1429.1` or a layer id holding `401` cannot decide anything.
pub fn classify(error_line: &str) -> Failure {
    let words = plain_words(error_line);
    let has = |phrase: &[&str]| words.windows(phrase.len()).any(|w| w == phrase);
    const PERMANENT: &[&[&str]] = &[
        &["unauthorized"],
        &["denied"],
        &["forbidden"],
        &["401"],
        &["403"],
        &["name_unknown"],
        &["name", "unknown"],
        &["no", "basic", "auth", "credentials"],
        &["authentication", "required"],
    ];
    const TRANSIENT: &[&[&str]] = &[
        &["toomanyrequests"],
        &["too", "many", "requests"],
        &["429"],
        &["500"],
        &["502"],
        &["503"],
        &["504"],
        &["connection", "refused"],
        &["connection", "reset"],
        &["broken", "pipe"],
        &["timeout"],
        &["timed", "out"],
        &["temporary", "failure"],
        &["no", "such", "host"],
        &["unexpected", "eof"],
        &["eof"],
    ];
    if PERMANENT.iter().any(|p| has(p)) {
        Failure::Permanent
    } else if TRANSIENT.iter().any(|t| has(t)) {
        Failure::Transient
    } else {
        Failure::Permanent
    }
}

/// The words of a message, lower-cased and stripped of punctuation, without the ones that name
/// things: anything with `/`, `@`, `=` or a `:` inside it, quoted strings, and words that mix
/// digits with letters or dots (ids, versions, build ids).
pub fn plain_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut in_quotes = false;
    for raw in line.split_whitespace() {
        let quotes = raw.matches('"').count();
        let quoted = in_quotes || raw.starts_with('"');
        if quotes % 2 == 1 {
            in_quotes = !in_quotes;
        }
        if quoted {
            continue;
        }
        let word = raw.trim_matches(|c: char| ",;:()[]{}'\"`.".contains(c)).to_ascii_lowercase();
        let names_something = word.is_empty()
            || word.contains(['/', '@', '=', ':'])
            || (word.bytes().any(|b| b.is_ascii_digit()) && !word.bytes().all(|b| b.is_ascii_digit()));
        if !names_something {
            words.push(word);
        }
    }
    words
}

/// Exponential backoff with jitter: before retry n (1-based) wait between half and all of
/// `base * 2^(n-1)`, capped, so concurrent runners do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// Defaults (4 retries from 2 s, at most 30 s apart: about 30 s in all) or
    /// XTASK_RETRIES (at most 20) and XTASK_RETRY_BASE_MS (at most a minute).
    pub fn from_env(env: &Env) -> anyhow::Result<Backoff> {
        Ok(Backoff {
            retries: env.number_in("XTASK_RETRIES", 4, 0..=20)? as u32,
            base: Duration::from_millis(env.number_in("XTASK_RETRY_BASE_MS", 2000, 0..=60_000)?),
            cap: Duration::from_secs(30),
        })
    }

    /// The wait before retry `n` (1-based); `jitter` is uniform in [0, 1).
    pub fn delay(&self, n: u32, jitter: f64) -> Duration {
        let full = self.base.saturating_mul(2u32.saturating_pow(n.saturating_sub(1))).min(self.cap);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// How an error says the retries ran out: "" after none, " after 1 retry", " after 3 retries".
pub fn after_retries(retries: u32) -> String {
    match retries {
        0 => String::new(),
        1 => " after 1 retry".into(),
        n => format!(" after {n} retries"),
    }
}

/// A number in [0, 1) from the process's random hash keys; good enough to spread retries.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Final error lines as docker 28, docker 20.10 and podman 4.3 print them, some with
    /// references and ids that hold the digits of status codes.
    #[test]
    fn classifies_final_error_lines_by_codes_not_digits_in_names() {
        for transient in [
            "Get \"https://ghcr.io/v2/\": dial tcp 140.82.1.1:443: connect: connection refused",
            "read tcp 10.0.0.1:1234->1.2.3.4:443: read: connection reset by peer",
            "net/http: TLS handshake timeout",
            "toomanyrequests: retry-after: 1s",
            "toomanyrequests: You have reached your pull rate limit",
            "received unexpected HTTP status: 503 Service Unavailable",
            "received unexpected HTTP status: 500 Internal Server Error",
            "error parsing HTTP 429 response body: invalid character 'x'",
            "Put \"http://127.0.0.1:5000/v2/x/blobs/uploads/\": EOF",
            "Error: writing blob: initiating layer upload to /v2/x/blobs/uploads/ in 127.0.0.1:5000: 503 (Service Unavailable)",
            "Error: trying to reuse blob sha256:4013aa at destination: pinging container registry 127.0.0.1:5000: Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
        ] {
            assert_eq!(classify(transient), Failure::Transient, "{transient}");
        }
        for permanent in [
            "unauthorized: authentication required",
            "denied: permission_denied: write_package",
            "denied: requested access to the resource is denied",
            "name unknown: repository name not known to registry",
            "Error response from daemon: login attempt to http://h/v2/ failed with status: 401 Unauthorized",
            "invalid reference format",
            "no basic auth credentials",
            "Error: writing blob: initiating layer upload to /v2/x/blobs/uploads/ in 127.0.0.1:5000: authentication required",
            // Status-code digits inside names are no status codes: these are not transient.
            "tag does not exist: 127.0.0.1:5000/x/base:v1.0.0_1429.1",
            "An image does not exist locally with the tag: reg.example/ns/app-429:v1.0.0_502.1",
        ] {
            assert_eq!(classify(permanent), Failure::Permanent, "{permanent}");
        }
        // The same transient failure, with ids that hold 401 and 403 around it, stays transient.
        for transient in [
            "a401f3c2e4d5: error pushing layer: Put \"http://r/v2/x/blobs/uploads/403\": connection reset by peer",
            "failed to push 127.0.0.1:5000/x/app:v1.0.0_403.1: unexpected EOF",
        ] {
            assert_eq!(classify(transient), Failure::Transient, "{transient}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff { retries: 6, base: Duration::from_secs(2), cap: Duration::from_secs(30) };
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(6, 1.0), Duration::from_secs(30));
        assert_eq!(b.delay(40, 0.0), Duration::from_secs(15));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
        let env = Env::from_pairs(&[("XTASK_RETRIES", "2"), ("XTASK_RETRY_BASE_MS", "10")]);
        assert_eq!(Backoff::from_env(&env).unwrap().retries, 2);
        assert_eq!(Backoff::from_env(&env).unwrap().base, Duration::from_millis(10));
        let env = Env::from_pairs(&[("XTASK_RETRIES", "abc")]);
        let err = Backoff::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("XTASK_RETRIES") && err.contains("`abc`"), "{err}");
        let env = Env::from_pairs(&[("XTASK_RETRIES", "50")]);
        assert!(Backoff::from_env(&env).unwrap_err().to_string().contains("give 0 to 20"));
    }
}
