//! npm packages: the `package.json` of every folder directly under a `node_modules` (or under
//! a `node_modules/@scope`). Its `name` and `version` say what it is; `license` is an SPDX
//! expression, or in old packages an object or a `licenses` list of `{ "type": ... }`.

use anyhow::{bail, Context};

use super::{Ecosystem, Package};

pub fn is_manifest(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [.., "node_modules", package, "package.json"] => {
            !package.starts_with('@') && !package.starts_with('.')
        }
        [.., "node_modules", scope, _, "package.json"] => scope.starts_with('@'),
        _ => false,
    }
}

pub fn parse(path: &str, bytes: &[u8]) -> anyhow::Result<Vec<Package>> {
    // Node and npm accept a UTF-8 byte order mark; so does this reader.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let json: serde_json::Value = serde_json::from_slice(bytes)
        .with_context(|| format!("{path}: not valid JSON (damaged or truncated)"))?;
    let Some(object) = json.as_object() else { bail!("{path}: not a JSON object") };
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let (Some(name), Some(version)) = (text("name"), text("version")) else {
        // A package.json without both is not a package's (npm requires both to publish).
        return Ok(Vec::new());
    };
    let license = match object.get("license") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => o.get("type").and_then(|t| t.as_str()).map(String::from),
        _ => object.get("licenses").and_then(|l| l.as_array()).map(|list| {
            let types: Vec<&str> =
                list.iter().filter_map(|l| l.get("type").and_then(|t| t.as_str())).collect();
            types.join(" OR ")
        }),
    }
    .filter(|l| !l.is_empty());
    Ok(vec![Package::language(Ecosystem::Npm, name, version, license, path)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_version_and_each_form_of_license() {
        let p = &parse("/n", br#"{"name":"express","version":"4.19.2","license":"MIT","dependencies":{}}"#)
            .unwrap()[0];
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.license.as_deref()),
            ("express", "4.19.2", Some("MIT"))
        );
        let p =
            &parse("/n", br#"{"name":"@types/node","version":"20.1.0","license":{"type":"MIT","url":"x"}}"#)
                .unwrap()[0];
        assert_eq!((p.name.as_str(), p.license.as_deref()), ("@types/node", Some("MIT")));
        let p = &parse(
            "/n",
            br#"{"name":"old","version":"0.1.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}"#,
        )
        .unwrap()[0];
        assert_eq!(p.license.as_deref(), Some("MIT OR Apache-2.0"));
        assert!(parse("/n", br#"{"type":"module"}"#).unwrap().is_empty());
        let with_bom = b"\xef\xbb\xbf{\"name\":\"ms\",\"version\":\"2.1.3\"}";
        assert_eq!(parse("/n", with_bom).unwrap()[0].name, "ms");
    }

    #[test]
    fn only_a_package_folder_s_own_manifest_counts() {
        assert!(is_manifest("/usr/local/lib/node_modules/npm/package.json"));
        assert!(is_manifest("/app/node_modules/@babel/core/package.json"));
        assert!(is_manifest("/usr/local/lib/node_modules/npm/node_modules/semver/package.json"));
        assert!(!is_manifest("/app/node_modules/semver/lib/package.json"));
        assert!(!is_manifest("/app/package.json"));
        assert!(!is_manifest("/app/node_modules/@babel/package.json"));
        assert!(!is_manifest("/app/node_modules/.bin/package.json"));
    }

    #[test]
    fn damage_is_an_error_that_names_the_file() {
        let path = "/app/node_modules/ms/package.json";
        let error = parse(path, br#"{"name":"ms","vers"#).unwrap_err().to_string();
        assert!(error.starts_with(path), "{error}");
        assert!(parse(path, b"[1,2]").unwrap_err().to_string().contains("not a JSON object"));
        assert!(parse(path, &[0xff, 0xfe]).is_err());
    }
}
