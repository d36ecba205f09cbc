//! Alpine's installed-package database (`/lib/apk/db/installed`): one block per package,
//! blocks separated by a blank line, each line `<letter>:<value>`. P is the name, V the
//! version, A the architecture, L the license, o the origin; the other letters (files, checksums,
//! dependencies, and whatever later apk versions add) are not needed and are passed over.

use anyhow::bail;

use super::{excerpt, Ecosystem, Package};

pub const DATABASE: &str = "/lib/apk/db/installed";

pub fn parse(path: &str, text: &str) -> anyhow::Result<Vec<Package>> {
    let mut packages = Vec::new();
    let mut block = Block::default();
    for (number, line) in text.lines().enumerate() {
        let line_no = number + 1;
        if line.trim().is_empty() {
            block.finish(path, line_no, &mut packages)?;
            continue;
        }
        let Some((key, value)) = line.split_once(':').filter(|(k, _)| k.len() == 1) else {
            bail!("{path}, line {line_no}: not an apk database line (`<letter>:<value>`): {}", excerpt(line));
        };
        if block.start.is_none() {
            block.start = Some(line_no);
        }
        let value = Some(value.to_string());
        match key {
            "P" => block.name = value,
            "V" => block.version = value,
            "A" => block.arch = value,
            "L" => block.license = value,
            "o" => block.origin = value,
            _ => {}
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        bail!("{path}: the file ends in the middle of a line: it looks truncated");
    }
    block.finish(path, text.lines().count() + 1, &mut packages)?;
    Ok(packages)
}

#[derive(Default)]
struct Block {
    start: Option<usize>,
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    license: Option<String>,
    origin: Option<String>,
}

impl Block {
    fn finish(&mut self, path: &str, line: usize, out: &mut Vec<Package>) -> anyhow::Result<()> {
        let block = std::mem::take(self);
        let Some(start) = block.start else { return Ok(()) };
        let present = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let (Some(name), Some(version)) = (present(block.name), present(block.version)) else {
            let lines = match line - 1 {
                end if end == start => format!("line {start}"),
                end => format!("lines {start}-{end}"),
            };
            bail!("{path}, {lines}: a package without its name (P:) or version (V:)");
        };
        out.push(Package {
            ecosystem: Ecosystem::Apk,
            name,
            version,
            license: block.license.filter(|l| !l.is_empty()),
            origin: block.origin,
            arch: block.arch,
            source: path.to_string(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two records as apk 2.14 writes them (checksums shortened).
    const SAMPLE: &str = "C:Q1abcdefghijABCDEFGHIJ0123456789=\nP:musl\nV:1.2.5-r10\nA:x86_64\nS:411323\nI:662528\n\
T:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Natanael Copa <ncopa@alpinelinux.org>\n\
t:1739387455\nc:a1b2c3d4\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1xyz=\nR:libc.musl-x86_64.so.1\n\n\
C:Q1zzzz=\nP:ca-certificates-bundle\nV:20241121-r1\nA:x86_64\nL:MPL-2.0 AND MIT\no:ca-certificates\nF:etc/ssl/certs\n\n";

    #[test]
    fn reads_name_version_arch_license_and_origin() {
        let packages = parse(DATABASE, SAMPLE).unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "musl");
        assert_eq!(packages[0].version, "1.2.5-r10");
        assert_eq!(packages[0].arch.as_deref(), Some("x86_64"));
        assert_eq!(packages[0].license.as_deref(), Some("MIT"));
        assert_eq!(packages[1].origin.as_deref(), Some("ca-certificates"));
        assert_eq!(packages[1].license.as_deref(), Some("MPL-2.0 AND MIT"));
    }

    #[test]
    fn unknown_letters_are_passed_over_and_a_missing_final_blank_line_is_fine() {
        let packages = parse(DATABASE, "P:a\nV:1\ny:some future field\n").unwrap();
        assert_eq!(packages[0].name, "a");
        assert!(parse(DATABASE, "").unwrap().is_empty());
    }

    #[test]
    fn damage_is_an_error_that_names_the_file_and_line() {
        let truncated = &SAMPLE[..SAMPLE.find("V:2024").unwrap() + 3];
        let error = parse(DATABASE, truncated).unwrap_err().to_string();
        assert!(error.starts_with("/lib/apk/db/installed: "), "{error}");
        let error = parse(DATABASE, "P:a\nV:1\n\nP:b\nA:x86_64\n\n").unwrap_err().to_string();
        assert!(error.contains("lines 4-5") && error.contains("V:"), "{error}");
        let error = parse(DATABASE, "P:a\nversion 1\n").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        let binary = String::from_utf8_lossy(&[0xff, 0xfe, 0x00, b'\n']).into_owned();
        assert!(parse(DATABASE, &binary).is_err());
        let error = parse(DATABASE, "P:a\nV:1\n\nP:\nV:\n\n").unwrap_err().to_string();
        assert!(error.contains("lines 4-5") && error.contains("without its name"), "{error}");
        let error = parse(DATABASE, "P:a\nV:1\n\nZ:x\n\n").unwrap_err().to_string();
        assert!(error.contains(", line 4: "), "{error}");
        let junk = format!("P:a\n{}\n", "x".repeat(100_000));
        assert!(parse(DATABASE, &junk).unwrap_err().to_string().len() < 200);
    }
}
