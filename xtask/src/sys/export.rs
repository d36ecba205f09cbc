//! Reads a tar stream (what `docker export` writes) into a list of entries, keeping the bytes
//! of the few files a caller asks for, and the SHA-256 of every file's content. The archive
//! format is the `tar` crate's business (USTAR, PAX and GNU long names included); this module
//! only says what the hardening rules and the comparison of two images need.

use std::io::Read;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::model::filesystem;
use crate::model::listing::{Entry, Kind, Listing};
use crate::model::platform::elf_machine;

// An RPM database (RHEL 8's Berkeley DB) runs to tens of megabytes.
const MAX_KEPT: u64 = 256 << 20;

pub fn scan(input: impl Read, keep: &dyn Fn(&str) -> bool) -> anyhow::Result<Listing> {
    scan_keeping(input, keep, MAX_KEPT)
}

/// `scan`, keeping files of at most `limit` bytes.
fn scan_keeping(input: impl Read, keep: &dyn Fn(&str) -> bool, limit: u64) -> anyhow::Result<Listing> {
    let mut listing = Listing::default();
    // Where each file's entry is, for the hard links to it that come later: an image may hold
    // thousands of them, so no search through every entry per link.
    let mut files: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().context("reading the image's files")? {
        let mut entry = entry.context("reading the image's files")?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            _ => Kind::Other,
        };
        let mode = header.mode().context("a file of the image has a bad mode")? & 0o7777;
        let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        let xattrs = xattrs_of(&mut entry).context("reading the image's files")?;
        let path = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
        let link =
            entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
        let mut size = entry.size();
        let mut digest = String::new();
        let mut machine = None;
        if kind == Kind::File {
            let wanted = keep(&path);
            let kept = wanted && size <= limit;
            if wanted && !kept {
                listing.too_large.push((path.clone(), size));
            }
            if kept || filesystem::volatile(&path) {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).with_context(|| format!("reading {path} from the image"))?;
                digest = hex(&Sha256::digest(filesystem::normalised(&path, &data)));
                machine = elf_machine(&data);
                if kept {
                    listing.contents.push((path.clone(), data));
                }
            } else {
                let head;
                (digest, head) =
                    digest_of(&mut entry).with_context(|| format!("reading {path} from the image"))?;
                machine = elf_machine(&head);
            }
        }
        if kind == Kind::Hardlink {
            let target = normalise(&link);
            // A hard link's data is its target's, which came earlier in the archive: a file
            // kept under the target's name is kept under this one too.
            if keep(&path) {
                match listing.content(&target).map(<[u8]>::to_vec) {
                    Some(data) => listing.contents.push((path.clone(), data)),
                    None => listing.unkept_links.push((path.clone(), target.clone())),
                }
            }
            if let Some(linked) = files.get(&target).map(|&i| &listing.entries[i]) {
                (size, digest, machine) = (linked.size, linked.digest.clone(), linked.machine);
            }
        }
        if matches!(kind, Kind::File | Kind::Hardlink) {
            files.insert(path.clone(), listing.entries.len());
        }
        listing.entries.push(Entry { path, kind, mode, link, uid, gid, size, digest, xattrs, machine });
    }
    Ok(listing)
}

/// The extended attributes a PAX header records for `entry`, as `Entry::xattrs` holds them.
fn xattrs_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::io::Result<String> {
    let Some(extensions) = entry.pax_extensions()? else { return Ok(String::new()) };
    let mut found = Vec::new();
    for extension in extensions {
        let extension = extension?;
        if let Some(name) = extension.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
            found.push(format!("{name}={}", hex(extension.value_bytes())));
        }
    }
    found.sort();
    Ok(found.join(";"))
}

/// The SHA-256 of what `input` reads to its end, hex, and its first bytes (an ELF header's).
fn digest_of(input: &mut impl Read) -> std::io::Result<(String, Vec<u8>)> {
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match input.read(&mut buffer)? {
            0 => return Ok((hex(&hasher.finalize()), head)),
            n => {
                hasher.update(&buffer[..n]);
                let wanted = 20usize.saturating_sub(head.len()).min(n);
                head.extend_from_slice(&buffer[..wanted]);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn normalise(name: &str) -> String {
    let trimmed = name.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
    format!("/{trimmed}")
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An archive of (name, typeflag, mode, contents, link) entries, written by the `tar`
    /// crate's own writer (GNU long names for paths over 100 bytes).
    pub fn archive(entries: &[(&str, u8, u32, &str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, typeflag, mode, contents, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::new(*typeflag));
            header.set_mode(*mode);
            header.set_size(contents.len() as u64);
            if !link.is_empty() {
                builder.append_link(&mut header, name, link).unwrap();
            } else {
                builder.append_data(&mut header, name, contents.as_bytes()).unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn reads_entries_modes_links_and_kept_contents() {
        let long = "very/".repeat(30) + "long";
        let tar = archive(&[
            ("bin/", b'5', 0o755, "", ""),
            ("bin/busybox", b'0', 0o4755, "ELF", ""),
            ("bin/sh", b'2', 0o777, "", "busybox"),
            ("etc/passwd", b'0', 0o644, "root:x:0:0::/root:/sbin/nologin\n", ""),
            ("tmp/", b'5', 0o1777, "", ""),
            (&long, b'0', 0o644, "", ""),
        ]);
        let listing = scan(&tar[..], &|p| p == "/etc/passwd").unwrap();
        let paths: Vec<&str> = listing.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/bin", "/bin/busybox", "/bin/sh", "/etc/passwd", "/tmp", &format!("/{long}")]);
        assert_eq!(listing.entries[1].mode, 0o4755);
        assert_eq!(listing.entries[2].kind, Kind::Symlink);
        assert_eq!(listing.entries[2].link, "busybox");
        assert_eq!(listing.entries[4].mode, 0o1777);
        assert_eq!(listing.content("/etc/passwd"), Some(&b"root:x:0:0::/root:/sbin/nologin\n"[..]));
        assert_eq!(listing.contents.len(), 1);
    }

    #[test]
    fn a_file_too_large_to_keep_is_named() {
        let tar = archive(&[("lib/apk/db/installed", b'0', 0o644, "P:musl\nV:1\n", "")]);
        let listing = scan_keeping(&tar[..], &|_| true, 4).unwrap();
        assert!(listing.contents.is_empty());
        assert_eq!(listing.too_large, [("/lib/apk/db/installed".to_string(), 11)]);
    }

    #[test]
    fn a_hard_link_to_a_kept_file_is_kept_with_its_data() {
        let tar = archive(&[
            ("cache/x/METADATA", b'0', 0o644, "Name: six\nVersion: 1.16.0\n", ""),
            ("site-packages/six-1.16.0.dist-info/METADATA", b'1', 0o644, "", "cache/x/METADATA"),
        ]);
        let listing = scan(&tar[..], &|p| p.ends_with("/METADATA")).unwrap();
        assert_eq!(
            listing.content("/site-packages/six-1.16.0.dist-info/METADATA"),
            Some(&b"Name: six\nVersion: 1.16.0\n"[..])
        );
    }

    #[test]
    fn files_are_found_where_a_linked_folder_puts_them() {
        let tar = archive(&[
            ("lib", b'2', 0o777, "", "usr/lib"),
            ("usr/lib/apk/db/installed", b'0', 0o644, "P:musl\nV:1\n", ""),
            ("etc/alt", b'2', 0o777, "", "../usr/lib/apk"),
            ("escape", b'2', 0o777, "", "../../.."),
        ]);
        let mut listing = scan(&tar[..], &|p| p.ends_with("/installed")).unwrap();
        listing.add_linked_names();
        assert_eq!(listing.content("/lib/apk/db/installed"), Some(&b"P:musl\nV:1\n"[..]));
        assert_eq!(listing.content("/etc/alt/db/installed"), Some(&b"P:musl\nV:1\n"[..]));
    }

    #[test]
    fn a_hard_link_whose_data_was_not_kept_is_named() {
        let tar = archive(&[
            ("store/v3/files/ab/cdef", b'0', 0o644, r#"{"name":"ms","version":"2.1.3"}"#, ""),
            ("app/node_modules/ms/package.json", b'1', 0o644, "", "store/v3/files/ab/cdef"),
        ]);
        let listing = scan(&tar[..], &|p| p.ends_with("package.json")).unwrap();
        assert_eq!(
            listing.unkept_links,
            [("/app/node_modules/ms/package.json".to_string(), "/store/v3/files/ab/cdef".to_string())]
        );
        // Every entry still has its content digest, the link's being its target's.
        assert_eq!(listing.entries[1].digest, listing.entries[0].digest);
        assert_eq!(listing.entries[1].size, 31);
    }

    /// File capabilities travel as extended attributes in a PAX header, as `docker export`
    /// writes them.
    #[test]
    fn extended_attributes_are_part_of_an_entry() {
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_pax_extensions([("SCHILY.xattr.security.capability", &b"\x01\x02"[..])]).unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o755);
        header.set_size(3);
        builder.append_data(&mut header, "bin/ping", &b"ELF"[..]).unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o755);
        header.set_size(3);
        builder.append_data(&mut header, "bin/plain", &b"ELF"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let listing = scan(&tar[..], &|_| false).unwrap();
        assert_eq!(listing.entries[0].xattrs, "security.capability=0102");
        assert_eq!(listing.entries[1].xattrs, "");
        assert_eq!(listing.entries[0].digest, listing.entries[1].digest);
    }

    #[test]
    fn truncated_archives_are_errors() {
        let tar = archive(&[("etc/passwd", b'0', 0o644, "root", "")]);
        assert!(scan(&tar[..515], &|_| true).is_err());
        assert!(scan(&tar[..100], &|_| true).is_err());
        assert!(scan(&[][..], &|_| true).unwrap().entries.is_empty());
    }
}
