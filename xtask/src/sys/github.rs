//! The one call this tool makes to GitHub's REST API: deleting the test package, which the
//! workflow token cannot do. It runs curl with the token as a header read from stdin
//! (`--header @-`), so the token is never in an argument vector.

use std::time::Duration;

use anyhow::bail;

use crate::sys::docker::Secret;
use crate::sys::process::{self, last_line, Io};

/// `DELETE {api}/orgs/{org}/packages/container/{package}`, computed from the inventory. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePackage {
    pub org: String,
    /// The package name as GitHub knows it: the registry namespace under the org plus the name.
    pub package: String,
    pub url: String,
}

impl DeletePackage {
    pub fn new(api_base: &str, registry: &str, name: &str) -> anyhow::Result<DeletePackage> {
        // The admin token crosses the network only over TLS; plain HTTP only to this machine.
        if let Some(rest) = api_base.strip_prefix("http://") {
            let host = rest.split(['/', ':']).next().unwrap_or_default();
            if !["127.0.0.1", "localhost", "[::1]"].contains(&host) {
                bail!("GITHUB_API_URL={api_base}: the admin token would travel in clear text; use https://");
            }
        }
        let mut parts = registry.split('/');
        let host = parts.next().unwrap_or_default();
        if host != "ghcr.io" {
            bail!("the test package lives on {host}, not ghcr.io: only GitHub's registry has a package API to call");
        }
        let Some(org) = parts.next() else {
            bail!("registry `{registry}` names no organisation: expected ghcr.io/ORG[/NAMESPACE]");
        };
        let package: Vec<&str> = parts.chain(std::iter::once(name)).collect();
        let package = package.join("/");
        // Package names follow the OCI grammar ([a-z0-9._-] and `/`), so `/` is all there is to encode.
        let encoded = package.replace('/', "%2F");
        let url = format!("{}/orgs/{org}/packages/container/{encoded}", api_base.trim_end_matches('/'));
        Ok(DeletePackage { org: org.to_string(), package, url })
    }

    pub fn send(&self, token: &Secret) -> anyhow::Result<()> {
        let args = [
            "--silent",
            "--show-error",
            "--max-time",
            "60",
            "--request",
            "DELETE",
            "--header",
            "Accept: application/vnd.github+json",
            "--header",
            "X-GitHub-Api-Version: 2022-11-28",
            "--header",
            "@-",
            "--output",
            "-",
            "--write-out",
            "\n%{http_code}",
            &self.url,
        ];
        let header = format!("Authorization: Bearer {}\n", token.expose());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        // curl gives up after --max-time; the supervisor's limit is only a backstop.
        let out = process::run(
            "curl",
            &args,
            Io::Capture(Some(header.as_bytes())),
            Duration::from_secs(90),
            "Install curl (Debian: apt-get install curl)",
        )?;
        let (body, code) = out.stdout.trim_end().rsplit_once('\n').unwrap_or(("", out.stdout.trim()));
        let code: u16 = code.trim().parse().unwrap_or(0);
        let body = body.replace(token.expose(), "***");
        let (org, package) = (&self.org, &self.package);
        match code {
            200..=299 => Ok(()),
            401 => bail!("GitHub refused GH_ADMIN_TOKEN (401): it is invalid or expired; create a new one"),
            403 => bail!(
                "GH_ADMIN_TOKEN may not delete container package {package} of {org} (403): it needs the \
                 delete:packages scope and admin rights on the org's packages"
            ),
            404 => bail!(
                "no container package {package} in {org} (404): it is already deleted, or GH_ADMIN_TOKEN \
                 cannot see it (read:packages)"
            ),
            0 => bail!("the request to {} got no HTTP answer: {}", self.url, last_line(&body)),
            _ => {
                let mut body = body.chars().take(400).collect::<String>();
                body.retain(|c| c != '\r');
                bail!("GitHub answered HTTP {code} to DELETE {}: {}", self.url, body.trim())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_from_registry_and_name() {
        let d = DeletePackage::new("https://api.github.com/", "ghcr.io/cfpb/regtech/sbl", "test").unwrap();
        assert_eq!(d.url, "https://api.github.com/orgs/cfpb/packages/container/regtech%2Fsbl%2Ftest");
        assert_eq!((d.org.as_str(), d.package.as_str()), ("cfpb", "regtech/sbl/test"));
        let d = DeletePackage::new("http://127.0.0.1:1", "ghcr.io/org", "test").unwrap();
        assert_eq!(d.url, "http://127.0.0.1:1/orgs/org/packages/container/test");
        assert!(DeletePackage::new("x", "127.0.0.1:5000/x", "t")
            .unwrap_err()
            .to_string()
            .contains("not ghcr.io"));
        assert!(DeletePackage::new("x", "ghcr.io", "t").unwrap_err().to_string().contains("no organisation"));
    }
}
