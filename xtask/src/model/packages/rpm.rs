//! The RPM database, as an rpm program lists it: the database itself (Berkeley DB on RHEL 8,
//! SQLite after) is rpm's format, so the reading is rpm's job (sys/rpm.rs runs it); this
//! module holds the query and reads its answer, one tab-separated line per package.

use anyhow::bail;

use super::{Ecosystem, Package};

/// What rpm prints per package: name, epoch (0 when none), version, release, arch, license,
/// source rpm.
pub const QUERY_FORMAT: &str =
    "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\t%{SOURCERPM}\\n";

/// The packages in rpm's answer; `database` names where they came from.
pub fn parse(database: &str, output: &str) -> anyhow::Result<Vec<Package>> {
    let mut packages = Vec::new();
    for (number, line) in output.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, epoch, version, release, arch, license, source] = fields.as_slice() else {
            bail!(
                "{database}: rpm's answer, line {}, has {} fields, not 7: {line:?}",
                number + 1,
                fields.len()
            );
        };
        let version = match *epoch {
            "0" | "" | "(none)" => format!("{version}-{release}"),
            epoch => format!("{epoch}:{version}-{release}"),
        };
        let known = |v: &str| (!v.is_empty() && v != "(none)").then(|| v.to_string());
        packages.push(Package {
            ecosystem: Ecosystem::Rpm,
            name: name.to_string(),
            version,
            license: known(license),
            origin: known(source),
            arch: known(arch),
            source: database.to_string(),
        });
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_line_of_the_query() {
        // As rpm 4.18 prints QUERY_FORMAT for two packages of a UBI 8 database.
        let output = "openssl-libs\t1\t1.1.1k\t12.el8_9\tx86_64\tOpenSSL and ASL 2.0\topenssl-1.1.1k-12.el8_9.src.rpm\n\
                      gpg-pubkey\t0\tfd431d51\t4ae0493b\t(none)\tpubkey\t(none)\n";
        let packages = parse("/var/lib/rpm/Packages", output).unwrap();
        assert_eq!(packages[0].version, "1:1.1.1k-12.el8_9");
        assert_eq!(packages[0].license.as_deref(), Some("OpenSSL and ASL 2.0"));
        assert_eq!(packages[0].origin.as_deref(), Some("openssl-1.1.1k-12.el8_9.src.rpm"));
        assert_eq!(packages[1].version, "fd431d51-4ae0493b");
        assert_eq!(packages[1].arch, None);
    }

    #[test]
    fn a_short_line_is_an_error_naming_the_database() {
        let error = parse("/var/lib/rpm/Packages", "bash\t0\t4.4.20\n").unwrap_err().to_string();
        assert!(error.starts_with("/var/lib/rpm/Packages") && error.contains("line 1"), "{error}");
    }
}
