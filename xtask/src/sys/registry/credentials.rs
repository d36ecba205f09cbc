//! The credentials the container CLI stored at login: docker's config.json (`auths`, a
//! credential store or per-host credential helpers), or for podman its auth.json files first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::sys::docker::{Client, Secret};
use crate::sys::env::Env;
use crate::sys::process::{self, Io};
use crate::sys::registry::Credentials;

/// The credentials the CLI stored for `host`: docker's config.json (credential helpers
/// included), or for podman its auth.json files and then docker's.
pub fn stored_credentials(
    client: Client,
    env: &Env,
    host: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Credentials>> {
    let home = env.get("HOME").map(PathBuf::from);
    let docker_config = env
        .get("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"));
    let mut files = Vec::new();
    if client == Client::Podman {
        files.extend(env.get("REGISTRY_AUTH_FILE").map(PathBuf::from));
        files.extend(env.get("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("containers/auth.json")));
        // Where podman run by root keeps them.
        files.push(PathBuf::from("/run/containers/0/auth.json"));
        files.extend(home.as_ref().map(|h| h.join(".config/containers/auth.json")));
    }
    files.extend(docker_config);
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the stored credentials in {}", file.display()))
            }
        };
        let config: ConfigFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not the JSON a container CLI writes", file.display()))?;
        if let Some(found) = config.credentials_for(host, timeout)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
}

impl ConfigFile {
    fn credentials_for(&self, host: &str, timeout: Duration) -> anyhow::Result<Option<Credentials>> {
        if let Some(helper) = self.cred_helpers.get(host) {
            return helper_credentials(helper, host, timeout);
        }
        let Some((_, entry)) = self.auths.iter().find(|(key, _)| auth_key_host(key) == host) else {
            return Ok(None);
        };
        match (&entry.auth, &self.creds_store) {
            (Some(auth), _) if !auth.is_empty() => Ok(Some(Credentials::Basic(Secret::new(auth.clone())))),
            // With a credential store, `auths` only lists the hosts it holds secrets for.
            (_, Some(store)) => helper_credentials(store, host, timeout),
            _ => Ok(None),
        }
    }
}

/// The host of an `auths` key: `127.0.0.1:5000`, `https://ghcr.io`, `https://index.docker.io/v1/`,
/// or podman's `registry.example/namespace`.
fn auth_key_host(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    }
}

/// Asks `docker-credential-<helper> get` for `host`'s credentials.
fn helper_credentials(helper: &str, host: &str, timeout: Duration) -> anyhow::Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let hint = format!("the docker config names the credential helper `{helper}`: install {program}");
    let out =
        process::run(&program, &["get".to_string()], Io::Capture(Some(host.as_bytes())), timeout, &hint)?;
    if !out.success {
        // "credentials not found in native keychain": nothing stored for this host.
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_str(&out.stdout)
        .with_context(|| format!("{program} get answered with something other than credentials"))?;
    // `<token>` marks an identity token, which only docker's own token exchange can use.
    if answer.username == "<token>" || answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::Password { user: answer.username, secret: Secret::new(answer.secret) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_credentials_are_found_by_host() {
        let dir = crate::testdir::TestDir::new("creds");
        dir.write(
            "docker/config.json",
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dTpw"},"https://ghcr.io":{"auth":"Z2g6cA=="},"https://index.docker.io/v1/":{"auth":"aHViOnA="}}}"#,
        );
        let env = Env::from_pairs(&[("DOCKER_CONFIG", &dir.path().join("docker").to_string_lossy())]);
        let auth = |host: &str| match stored_credentials(Client::Docker, &env, host, Duration::from_secs(5))
            .unwrap()
        {
            Some(Credentials::Basic(s)) => Some(s.expose().to_string()),
            Some(Credentials::Password { .. }) => Some("password".into()),
            None => None,
        };
        assert_eq!(auth("127.0.0.1:5000").as_deref(), Some("dTpw"));
        assert_eq!(auth("ghcr.io").as_deref(), Some("Z2g6cA=="));
        assert_eq!(auth("docker.io").as_deref(), Some("aHViOnA="));
        assert_eq!(auth("vm:5000"), None);
        // Podman looks in its own auth file first.
        dir.write("auth.json", r#"{"auths":{"vm:5000":{"auth":"cG9kOnA="}}}"#);
        let env = Env::from_pairs(&[
            ("DOCKER_CONFIG", &dir.path().join("docker").to_string_lossy()),
            ("REGISTRY_AUTH_FILE", &dir.path().join("auth.json").to_string_lossy()),
        ]);
        let found = stored_credentials(Client::Podman, &env, "vm:5000", Duration::from_secs(5)).unwrap();
        assert!(matches!(found, Some(Credentials::Basic(s)) if s.expose() == "cG9kOnA="));
        // A damaged file is an error that names it.
        dir.write("docker/config.json", "{not json");
        let env = Env::from_pairs(&[("DOCKER_CONFIG", &dir.path().join("docker").to_string_lossy())]);
        let err = stored_credentials(Client::Docker, &env, "x", Duration::from_secs(5)).err().unwrap();
        assert!(format!("{err:#}").contains("config.json"), "{err:#}");
    }

    #[test]
    fn auth_keys() {
        assert_eq!(auth_key_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(auth_key_host("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(auth_key_host("quay.io/team"), "quay.io");
    }
}
