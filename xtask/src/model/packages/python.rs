//! Python distributions: the core metadata (packaging.python.org, "Core metadata
//! specifications") of `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or an `.egg-info`
//! file) under any site-packages or dist-packages folder. The metadata is a block of
//! `Field: value` headers, continued on lines that start with white space, ended by a blank
//! line (the description follows).

use anyhow::bail;

use super::{excerpt, Ecosystem, Package};

pub fn is_metadata(path: &str) -> bool {
    let in_packages = path.contains("/site-packages/") || path.contains("/dist-packages/");
    let Some((folder, file)) = path.rsplit_once('/') else { return false };
    in_packages
        && ((file == "METADATA" && folder.ends_with(".dist-info"))
            || (file == "PKG-INFO" && folder.ends_with(".egg-info"))
            || file.ends_with(".egg-info"))
}

/// The name as package indexes compare it (PEP 503): lowercase, runs of `-_.` as one `-`.
pub fn normalise(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

pub fn parse(path: &str, text: &str) -> anyhow::Result<Vec<Package>> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                None => bail!("{path}, line {}: a continuation line before any field", number + 1),
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            bail!("{path}, line {}: not a metadata field (`Name: value`): {}", number + 1, excerpt(line));
        };
        fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let field = |name: &str| fields.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone());
    let (Some(name), Some(version)) = (field("name"), field("version")) else {
        bail!("{path}: no Name or Version field: the metadata is damaged or truncated");
    };
    // License-Expression (metadata 2.4) is SPDX; License is free text, often a whole licence,
    // so only its first line is kept; a trove classifier says the least.
    let license = field("license-expression")
        .or_else(|| field("license").map(|l| l.lines().next().unwrap_or_default().to_string()))
        .filter(|l| !l.is_empty() && l != "UNKNOWN")
        .or_else(|| {
            fields
                .iter()
                .find_map(|(k, v)| (k == "classifier").then(|| v.strip_prefix("License :: ")).flatten())
                .map(|c| c.rsplit(" :: ").next().unwrap_or(c).to_string())
        });
    Ok(vec![Package::language(Ecosystem::Python, &name, &version, license, path)])
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\n\
Home-page: https://requests.readthedocs.io\nLicense: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\n\
Requires-Python: >=3.7\nRequires-Dist: idna (<4,>=2.5)\nDescription-Content-Type: text/markdown\n\n# Requests\n\nName: not-a-field\n";

    #[test]
    fn reads_the_headers_and_stops_at_the_description() {
        let p = &parse("/usr/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA", METADATA)
            .unwrap()[0];
        assert_eq!((p.name.as_str(), p.version.as_str()), ("requests", "2.31.0"));
        assert_eq!(p.license.as_deref(), Some("Apache 2.0"));
    }

    #[test]
    fn license_expression_first_then_license_then_the_classifier() {
        let with_expression =
            "Metadata-Version: 2.4\nName: a\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: x\n";
        assert_eq!(parse("/m", with_expression).unwrap()[0].license.as_deref(), Some("MIT OR Apache-2.0"));
        let long_text =
            "Name: b\nVersion: 2\nLicense: Copyright (c) someone\n        Permission is hereby granted\n";
        assert_eq!(parse("/m", long_text).unwrap()[0].license.as_deref(), Some("Copyright (c) someone"));
        let classifier =
            "Name: c\nVersion: 3\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n";
        assert_eq!(parse("/m", classifier).unwrap()[0].license.as_deref(), Some("MIT License"));
        assert_eq!(parse("/m", "Name: d\nVersion: 4\n").unwrap()[0].license, None);
    }

    #[test]
    fn finds_metadata_files_in_any_site_packages() {
        assert!(is_metadata("/usr/local/lib/python3.12/site-packages/pip-24.0.dist-info/METADATA"));
        assert!(is_metadata("/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO"));
        assert!(is_metadata("/usr/lib/python3.11/site-packages/distro-1.8.0.egg-info"));
        assert!(is_metadata("/opt/app-root/lib64/python3.12/site-packages/x-1.dist-info/METADATA"));
        assert!(!is_metadata("/usr/lib/python3.12/site-packages/pip/METADATA"));
        assert!(!is_metadata("/srv/pip-24.0.dist-info/METADATA"));
        assert_eq!(normalise("Typing_Extensions"), "typing-extensions");
        assert_eq!(normalise("zope.interface"), "zope-interface");
    }

    #[test]
    fn damage_is_an_error_that_names_the_file() {
        let path = "/usr/lib/python3.12/site-packages/a-1.dist-info/METADATA";
        let error = parse(path, "Metadata-Version: 2.1\nNa").unwrap_err().to_string();
        assert!(error.starts_with(path) && error.contains("line 2"), "{error}");
        let error = parse(path, "Metadata-Version: 2.1\nName: a\n").unwrap_err().to_string();
        assert!(error.contains("no Name or Version"), "{error}");
        assert!(parse(path, "   leading continuation\n").is_err());
        assert!(parse(path, "").is_err());
    }
}
