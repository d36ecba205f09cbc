//! A target platform (`os/arch[/variant]`, as OCI and docker write it): how it names a tag,
//! which emulator runs it on another machine, and which ELF machine its executables are.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    /// `v8` of `linux/arm64/v8`; empty when none is written.
    pub variant: String,
}

impl Platform {
    /// `os/arch[/variant]`, each part letters and digits; None otherwise.
    pub fn parse(written: &str) -> Option<Platform> {
        let parts: Vec<&str> = written.split('/').collect();
        let valid = (2..=3).contains(&parts.len())
            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric()));
        if !valid {
            return None;
        }
        let arch = parts[1].to_ascii_lowercase();
        // arm64's only variant is v8: `linux/arm64/v8` is `linux/arm64`.
        let variant =
            parts.get(2).map(|v| v.to_ascii_lowercase()).filter(|v| !(arch == "arm64" && v == "v8"));
        Some(Platform { os: parts[0].to_ascii_lowercase(), arch, variant: variant.unwrap_or_default() })
    }

    /// What a tag may carry: `linux-arm64`, `linux-arm-v7`.
    pub fn tag_suffix(&self) -> String {
        let mut suffix = format!("{}-{}", self.os, self.arch);
        if !self.variant.is_empty() {
            suffix.push('-');
            suffix.push_str(&self.variant);
        }
        suffix
    }

    /// Whether an image configuration's `os`, `architecture` and `variant` are this platform.
    /// arm64's variant is v8 whether or not it is written.
    pub fn matches(&self, os: &str, arch: &str, variant: &str) -> bool {
        let plain =
            |v: &str, arch: &str| if arch == "arm64" && v == "v8" { String::new() } else { v.to_string() };
        self.os == os && self.arch == arch && plain(&self.variant, &self.arch) == plain(variant, arch)
    }

    /// The name QEMU's binfmt_misc entry has for this architecture (`qemu-<name>`), and the
    /// ELF machine number (e_machine) its executables carry.
    pub fn machine(&self) -> Option<(&'static str, u16)> {
        Some(match self.arch.as_str() {
            "amd64" => ("x86_64", 62),
            "arm64" => ("aarch64", 183),
            "arm" => ("arm", 40),
            "386" => ("i386", 3),
            "ppc64le" => ("ppc64le", 21),
            "s390x" => ("s390x", 22),
            "riscv64" => ("riscv64", 243),
            _ => return None,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The ELF machine number of an executable's first bytes, when they are an ELF header.
pub fn elf_machine(head: &[u8]) -> Option<u16> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    // e_machine sits at offset 18, in the byte order EI_DATA (offset 5) names.
    let bytes = [head[18], head[19]];
    Some(if head[5] == 2 { u16::from_be_bytes(bytes) } else { u16::from_le_bytes(bytes) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_print_and_name_tags() {
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(arm.to_string(), "linux/arm64");
        assert_eq!(arm.tag_suffix(), "linux-arm64");
        assert_eq!(Platform::parse("linux/arm/v7").unwrap().tag_suffix(), "linux-arm-v7");
        for bad in ["linux", "linux/", "/arm64", "linux/arm64/v8/x", "linux/arm_64", "linux arm64"] {
            assert_eq!(Platform::parse(bad), None, "{bad}");
        }
        assert!(arm.matches("linux", "arm64", "v8") && arm.matches("linux", "arm64", ""));
        assert!(!arm.matches("linux", "amd64", ""));
        assert!(!Platform::parse("linux/arm/v7").unwrap().matches("linux", "arm", "v6"));
        assert_eq!(arm.machine(), Some(("aarch64", 183)));
        assert_eq!(Platform::parse("linux/arm64/v8"), Some(arm.clone()), "arm64's v8 is arm64");
    }

    #[test]
    fn elf_machines() {
        let mut head = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\xb7\0".to_vec();
        assert_eq!(elf_machine(&head), Some(183));
        head[18] = 0x3e;
        assert_eq!(elf_machine(&head), Some(62));
        assert_eq!(elf_machine(b"#!/bin/sh\necho hi there"), None);
        assert_eq!(elf_machine(b"\x7fELF"), None);
    }
}
