//! The SPDX 2.3 document (JSON) of one image: the image itself as the described package,
//! identified by its digest, and every package found in it. Pure.
//!
//! Package databases declare licences as free text ("MIT BSD", "OpenSSL and ASL 2.0") that is
//! often not an SPDX expression, and whether an identifier is on the SPDX licence list is not
//! something this tool can know offline. So each declared licence is recorded as it was
//! declared: a `LicenseRef-` of its own, with the declared text as the extracted licence.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::model::packages::Found;

/// What the document describes.
pub struct Subject<'a> {
    pub image: &'a str,
    pub version: &'a str,
    /// The repository the image is (or would be) published under, e.g. `ghcr.io/org/alpine`.
    pub repository: &'a str,
    /// `sha256:<hex>`: the manifest digest when published, else the image id.
    pub digest: &'a str,
    /// A reference that names the image where it is: `repository@digest` in the registry, or
    /// its local tag. The document is named after it.
    pub reference: &'a str,
    /// RFC 3339, seconds.
    pub created: &'a str,
    /// Makes the document namespace unique to this run.
    pub run: &'a str,
}

pub fn document(subject: &Subject<'_>, found: &Found) -> Value {
    let hex = subject.digest.strip_prefix("sha256:").unwrap_or(subject.digest);
    let mut licences: BTreeMap<String, String> = BTreeMap::new();
    let mut packages = vec![json!({
        "name": subject.image,
        "SPDXID": "SPDXRef-image",
        "versionInfo": subject.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{ "algorithm": "SHA256", "checksumValue": hex }],
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!(
                "pkg:oci/{}@{}?repository_url={}",
                subject.repository.rsplit('/').next().unwrap_or(subject.image),
                subject.digest.replace(':', "%3A"),
                subject.repository
            ),
        }],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-image",
    })];
    for (n, p) in found.packages.iter().enumerate() {
        let id = format!("SPDXRef-package-{}-{}", n + 1, idstring(&p.name));
        // A blank declaration declares nothing.
        let declared = match p.license.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(text) => {
                let next = format!("LicenseRef-{}-{}", licences.len() + 1, idstring(text));
                licences.entry(text.to_string()).or_insert(next).clone()
            }
            None => "NOASSERTION".to_string(),
        };
        packages.push(json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "sourceInfo": format!("{} package, read from {}", p.ecosystem, p.source),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl(&found.distro),
            }],
        }));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let extracted: Vec<Value> = licences
        .iter()
        .map(|(text, id)| json!({ "licenseId": id, "extractedText": text, "name": text }))
        .collect();
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.reference,
        "documentNamespace": format!("https://{}/spdx/{}/{}", subject.repository, hex, subject.run),
        "creationInfo": {
            "created": subject.created,
            "creators": [format!("Tool: xtask-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        document["hasExtractedLicensingInfos"] = Value::Array(extracted);
    }
    document
}

/// `text` as an SPDX id string: letters, digits, `.` and `-`.
fn idstring(text: &str) -> String {
    let mapped: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    let trimmed = mapped.trim_matches('-');
    let short: String = trimmed.chars().take(48).collect();
    if short.is_empty() {
        "x".into()
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::packages::{Ecosystem, Package};

    #[test]
    fn describes_the_image_by_digest_and_contains_each_package() {
        let package = |name: &str, license: Option<&str>| Package {
            ecosystem: Ecosystem::Apk,
            name: name.into(),
            version: "1.0-r0".into(),
            license: license.map(String::from),
            origin: None,
            arch: Some("x86_64".into()),
            source: "/lib/apk/db/installed".into(),
        };
        let found = Found {
            distro: "alpine".into(),
            packages: vec![
                package("musl", Some("MIT")),
                package("busybox", Some("GPL-2.0-only")),
                package("x", None),
                package("y", Some("MIT")),
            ],
        };
        let digest = format!("sha256:{}", "ab".repeat(32));
        let subject = Subject {
            image: "alpine",
            version: "3.23.0",
            repository: "ghcr.io/org/alpine",
            digest: &digest,
            reference: "ghcr.io/org/alpine:local-v3.23.0",
            created: "2026-11-29T00:00:00Z",
            run: "abc",
        };
        let doc = document(&subject, &found);
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["name"], "ghcr.io/org/alpine:local-v3.23.0");
        assert_eq!(doc["packages"][0]["checksums"][0]["checksumValue"], "ab".repeat(32));
        assert_eq!(doc["packages"].as_array().unwrap().len(), 5);
        assert_eq!(
            doc["packages"][1]["externalRefs"][0]["referenceLocator"],
            "pkg:apk/alpine/musl@1.0-r0?arch=x86_64"
        );
        assert_eq!(doc["packages"][1]["licenseDeclared"], doc["packages"][4]["licenseDeclared"]);
        assert_eq!(doc["packages"][3]["licenseDeclared"], "NOASSERTION");
        assert_eq!(doc["hasExtractedLicensingInfos"].as_array().unwrap().len(), 2);
        assert_eq!(doc["relationships"].as_array().unwrap().len(), 5);
        let blank = Found { distro: String::new(), packages: vec![package("blank", Some("  "))] };
        let doc = document(&subject, &blank);
        assert_eq!(doc["packages"][1]["licenseDeclared"], "NOASSERTION");
        assert!(doc["hasExtractedLicensingInfos"].as_array().is_none_or(|l| l.is_empty()));
        assert_eq!(idstring("OpenSSL and ASL 2.0"), "OpenSSL-and-ASL-2.0");
        assert_eq!(idstring("()"), "x");
    }
}
