//! Which failures are worth another try, and how long to wait before it. Pure.

use std::time::Duration;

use crate::env::Env;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The network or the registry had a bad moment: connection refused or reset, timeouts,
    /// HTTP 5xx, 429 / toomanyrequests.
    Transient,
    /// Retrying cannot help: bad credentials, missing permission, unknown name, or anything not
    /// recognised as transient.
    Permanent,
}

/// Reads a docker or registry error message.
pub fn classify(message: &str) -> Failure {
    let m = message.to_ascii_lowercase();
    const PERMANENT: &[&str] =
        &["unauthorized", "denied", "401", "403", "name unknown", "no basic auth credentials", "forbidden"];
    const TRANSIENT: &[&str] = &[
        "connection refused",
        "connection reset",
        "broken pipe",
        "timeout",
        "timed out",
        "temporary failure",
        "no such host",
        "unexpected eof",
        ": eof",
        "toomanyrequests",
        "too many requests",
        "429",
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "status 500",
        "status 502",
        "status 503",
        "status 504",
    ];
    if PERMANENT.iter().any(|p| m.contains(p)) {
        Failure::Permanent
    } else if TRANSIENT.iter().any(|t| m.contains(t)) {
        Failure::Transient
    } else {
        Failure::Permanent
    }
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
    /// XTASK_RETRIES and XTASK_RETRY_BASE_MS.
    pub fn from_env(env: &Env) -> Backoff {
        let number = |name: &str| env.get(name).and_then(|v| v.parse::<u64>().ok());
        Backoff {
            retries: number("XTASK_RETRIES").map_or(4, |n| n.min(20) as u32),
            base: Duration::from_millis(number("XTASK_RETRY_BASE_MS").unwrap_or(2000)),
            cap: Duration::from_secs(30),
        }
    }

    /// The wait before retry `n` (1-based); `jitter` is uniform in [0, 1).
    pub fn delay(&self, n: u32, jitter: f64) -> Duration {
        let full = self.base.saturating_mul(2u32.saturating_pow(n.saturating_sub(1))).min(self.cap);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
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

    #[test]
    fn classifies_docker_messages() {
        for transient in [
            "Get \"https://ghcr.io/v2/\": dial tcp 140.82.1.1:443: connect: connection refused",
            "read tcp 10.0.0.1:1234->1.2.3.4:443: read: connection reset by peer",
            "net/http: TLS handshake timeout",
            "toomanyrequests: retry-after: 1s",
            "received unexpected HTTP status: 503 Service Unavailable",
            "error parsing HTTP 429 response body",
            "Put \"http://127.0.0.1:5000/v2/x/blobs/uploads/\": EOF",
        ] {
            assert_eq!(classify(transient), Failure::Transient, "{transient}");
        }
        for permanent in [
            "unauthorized: authentication required",
            "denied: permission_denied: write_package",
            "name unknown: repository name not known to registry",
            "Error response from daemon: login attempt to http://h/v2/ failed with status: 401 Unauthorized",
            "invalid reference format",
            "no basic auth credentials",
        ] {
            assert_eq!(classify(permanent), Failure::Permanent, "{permanent}");
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
        assert_eq!(Backoff::from_env(&env).retries, 2);
        assert_eq!(Backoff::from_env(&env).base, Duration::from_millis(10));
    }
}
