//! How the engine reaches a registry: TLS, or (for registries its settings call insecure)
//! TLS without verification and then plain HTTP. The tool asks a registry the same way, so
//! what it reads back is what the engine pushed.

use std::net::IpAddr;

use anyhow::Context;

use super::{Client, Docker};
use crate::sys::registry::Transport;

impl Docker {
    /// How the engine reaches `host`: TLS, or (for registries its settings call insecure) TLS
    /// without verification and then plain HTTP. Decided by the engine's own rules, never by
    /// how the name is spelled: docker's insecure-registries and their CIDRs (127.0.0.0/8 by
    /// default, matched against what the name resolves to), podman's registries.conf.
    pub fn transport(&self, registry: &str) -> anyhow::Result<Transport> {
        let host = crate::model::oci::registry_host(registry);
        let insecure = match self.client()? {
            Client::Docker => {
                let out = self.ask("info", &["info", "--format", "{{json .RegistryConfig}}"])?;
                let config: serde_json::Value =
                    serde_json::from_str(out.stdout.trim()).with_context(|| {
                        format!("cannot read the engine's registry settings from `{} info`", self.program)
                    })?;
                docker_insecure(&config, host, &resolve(host))
            }
            Client::Podman => {
                let out = self.ask("info", &["info", "--format", "json"])?;
                let info: serde_json::Value = serde_json::from_str(out.stdout.trim()).with_context(|| {
                    format!("cannot read the registry settings from `{} info`", self.program)
                })?;
                podman_insecure(&info["registries"], registry)
            }
        };
        Ok(if insecure { Transport::Insecure } else { Transport::Tls })
    }
}

/// The addresses `host` (`name[:port]`) resolves to; none when it does not resolve.
fn resolve(host: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    let name = host_name(host);
    if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return vec![ip];
    }
    (name, 0u16).to_socket_addrs().map(|addrs| addrs.map(|a| a.ip()).collect()).unwrap_or_default()
}

/// `registry.internal` of `registry.internal:5000`, `[::1]` of `[::1]:5000`.
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    }
}

/// The docker engine's rule (`docker info`'s RegistryConfig): a registry it has settings for
/// is insecure when they say so; any other is insecure when an address its name resolves to
/// lies in one of the insecure CIDRs.
fn docker_insecure(config: &serde_json::Value, host: &str, addresses: &[IpAddr]) -> bool {
    if let Some(index) = config["IndexConfigs"].get(host) {
        return index["Secure"] == serde_json::Value::Bool(false);
    }
    let cidrs = config["InsecureRegistryCIDRs"].as_array().cloned().unwrap_or_default();
    cidrs.iter().filter_map(|c| c.as_str()).any(|cidr| addresses.iter().any(|ip| in_cidr(*ip, cidr)))
}

/// Podman's rule (registries.conf, as `podman info` reports it): the most specific entry whose
/// prefix covers `location` (`host[/namespace]`: the entry equals it or leads it to a `/`).
fn podman_insecure(registries: &serde_json::Value, location: &str) -> bool {
    let Some(entries) = registries.as_object() else { return false };
    entries
        .iter()
        .filter(|(prefix, entry)| {
            entry.is_object() && (location == prefix.as_str() || location.starts_with(&format!("{prefix}/")))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .is_some_and(|(_, entry)| entry["Insecure"] == serde_json::Value::Bool(true))
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((network, bits)) = cidr.split_once('/') else { return false };
    let (Ok(network), Ok(bits)) = (network.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docker info --format '{{json .RegistryConfig}}'` of a 20.10 engine with one registry
    /// configured as insecure by name.
    const DOCKER_INFO: &str = r#"{"AllowNondistributableArtifactsCIDRs":[],"AllowNondistributableArtifactsHostnames":[],"InsecureRegistryCIDRs":["127.0.0.0/8"],"IndexConfigs":{"docker.io":{"Name":"docker.io","Mirrors":[],"Secure":true,"Official":true},"registry.internal:5000":{"Name":"registry.internal:5000","Mirrors":[],"Secure":false,"Official":false}},"Mirrors":[]}"#;

    #[test]
    fn the_engine_decides_plain_http_by_address_and_settings_not_by_spelling() {
        let config: serde_json::Value = serde_json::from_str(DOCKER_INFO).unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "140.82.112.33".parse().unwrap();
        // A host name that resolves into 127.0.0.0/8 is insecure, whatever it is called.
        assert!(docker_insecure(&config, "vm:5000", &[loopback]));
        assert!(docker_insecure(&config, "127.0.0.1:5000", &[loopback]));
        // A registry configured by name is insecure even though it resolves elsewhere...
        assert!(docker_insecure(&config, "registry.internal:5000", &[public]));
        // ...and a public one is not, nor is a name that does not resolve.
        assert!(!docker_insecure(&config, "ghcr.io", &[public]));
        assert!(!docker_insecure(&config, "nowhere.invalid:5000", &[]));
        // "docker.io" is configured secure; its address decides nothing.
        assert!(!docker_insecure(&config, "docker.io", &[loopback]));
        assert!(in_cidr("::1".parse().unwrap(), "::1/128"));
        assert!(!in_cidr("10.0.0.1".parse().unwrap(), "127.0.0.0/8"));
        assert!(in_cidr("10.1.2.3".parse().unwrap(), "10.0.0.0/8"));
        assert!(in_cidr("10.1.2.3".parse().unwrap(), "0.0.0.0/0"));
    }

    #[test]
    fn podman_reads_registries_conf() {
        let registries: serde_json::Value = serde_json::from_str(
            r#"{"search":["docker.io"],"vm:5000":{"Prefix":"vm:5000","Location":"vm:5000","Insecure":true,"Blocked":false},"ghcr.io":{"Prefix":"ghcr.io","Insecure":false}}"#,
        )
        .unwrap();
        assert!(podman_insecure(&registries, "vm:5000"));
        assert!(podman_insecure(&registries, "vm:5000/team"));
        assert!(!podman_insecure(&registries, "ghcr.io"));
        // The most specific entry decides.
        let nested: serde_json::Value =
            serde_json::from_str(r#"{"r:1":{"Insecure":false},"r:1/pod":{"Insecure":true}}"#).unwrap();
        assert!(podman_insecure(&nested, "r:1/pod"));
        assert!(!podman_insecure(&nested, "r:1/other"));
        // Podman, unlike docker, has no default for loopback addresses.
        assert!(!podman_insecure(&registries, "127.0.0.1:5000"));
        assert!(!podman_insecure(&serde_json::json!({}), "vm:5000"));
    }

    #[test]
    fn host_names_and_resolution() {
        assert_eq!(host_name("vm:5000"), "vm");
        assert_eq!(host_name("ghcr.io"), "ghcr.io");
        assert_eq!(host_name("[::1]:5000"), "[::1]");
        assert_eq!(resolve("127.0.0.1:5000"), ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(resolve("[::1]:5000"), ["::1".parse::<IpAddr>().unwrap()]);
        assert!(resolve("localhost:5000").iter().any(IpAddr::is_loopback));
    }
}
