//! Reads a tar stream (what `docker export` writes) into a list of entries, keeping the bytes
//! of the few files a caller asks for. Pure: USTAR, PAX and GNU long names, nothing else.

use std::io::Read;

use anyhow::{bail, Context};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute, without a trailing slash: `/bin/busybox`, `/tmp`.
    pub path: String,
    pub kind: Kind,
    /// Permission bits including setuid (04000), setgid (02000) and sticky (01000).
    pub mode: u32,
    pub link: String,
}

/// Entries of the archive, and the contents of the regular files `keep` selected (at most
/// `MAX_KEPT` bytes each).
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub contents: Vec<(String, Vec<u8>)>,
}

impl Listing {
    /// The kept contents of the file at `path`.
    pub fn content(&self, path: &str) -> Option<&[u8]> {
        self.contents.iter().find(|(p, _)| p == path).map(|(_, c)| c.as_slice())
    }
}

const MAX_KEPT: u64 = 1 << 20;
const BLOCK: usize = 512;

pub fn scan(mut input: impl Read, keep: &dyn Fn(&str) -> bool) -> anyhow::Result<Listing> {
    let mut listing = Listing::default();
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut header = [0u8; BLOCK];
    loop {
        if !read_block(&mut input, &mut header)? || header.iter().all(|b| *b == 0) {
            return Ok(listing);
        }
        let size = octal(&header[124..136]).context("tar header with a bad size")?;
        let typeflag = header[156];
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        match typeflag {
            // PAX extended header: `path` and `linkpath` apply to the next entry.
            b'x' | b'L' | b'K' => {
                let data = read_exact_vec(&mut input, padded)?;
                let data = &data[..size as usize];
                if typeflag == b'x' {
                    for (key, value) in pax_records(data) {
                        match key {
                            "path" => long_name = Some(value.to_string()),
                            "linkpath" => long_link = Some(value.to_string()),
                            _ => {}
                        }
                    }
                } else {
                    let text = String::from_utf8_lossy(data).trim_end_matches('\0').to_string();
                    if typeflag == b'L' {
                        long_name = Some(text);
                    } else {
                        long_link = Some(text);
                    }
                }
                continue;
            }
            b'g' => {
                skip(&mut input, padded)?;
                continue;
            }
            _ => {}
        }
        let name = long_name.take().unwrap_or_else(|| ustar_name(&header));
        let link = long_link.take().unwrap_or_else(|| field(&header[157..257]));
        let path = normalise(&name);
        let kind = match typeflag {
            b'0' | 0 | b'7' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            b'1' => Kind::Hardlink,
            _ => Kind::Other,
        };
        let mode = (octal(&header[100..108]).unwrap_or(0) & 0o7777) as u32;
        if kind == Kind::File && keep(&path) && size <= MAX_KEPT {
            let data = read_exact_vec(&mut input, padded)?;
            listing.contents.push((path.clone(), data[..size as usize].to_vec()));
        } else {
            skip(&mut input, padded)?;
        }
        listing.entries.push(Entry { path, kind, mode, link });
    }
}

fn read_block(input: &mut impl Read, block: &mut [u8; BLOCK]) -> anyhow::Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        let n = input.read(&mut block[filled..]).context("reading the image's files")?;
        if n == 0 {
            if filled == 0 {
                return Ok(false);
            }
            bail!("the archive ends inside a header");
        }
        filled += n;
    }
    Ok(true)
}

fn read_exact_vec(input: &mut impl Read, len: u64) -> anyhow::Result<Vec<u8>> {
    let mut data = vec![0u8; len as usize];
    input.read_exact(&mut data).context("the archive ends inside an entry")?;
    Ok(data)
}

fn skip(input: &mut impl Read, len: u64) -> anyhow::Result<()> {
    let copied = std::io::copy(&mut input.take(len), &mut std::io::sink())?;
    if copied != len {
        bail!("the archive ends inside an entry");
    }
    Ok(())
}

/// A numeric field: octal text, or base-256 when the high bit of the first byte is set.
fn octal(bytes: &[u8]) -> Option<u64> {
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Some(bytes[1..].iter().fold(u64::from(bytes[0] & 0x7f), |n, b| (n << 8) | u64::from(*b)));
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn ustar_name(header: &[u8; BLOCK]) -> String {
    let name = field(&header[0..100]);
    let prefix = if &header[257..262] == b"ustar" { field(&header[345..500]) } else { String::new() };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

fn normalise(name: &str) -> String {
    let trimmed = name.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
    format!("/{trimmed}")
}

/// `"<len> <key>=<value>\n"` records.
fn pax_records(data: &[u8]) -> Vec<(&str, &str)> {
    let text = std::str::from_utf8(data).unwrap_or("");
    text.lines()
        .filter_map(|record| {
            let (_, kv) = record.split_once(' ')?;
            kv.split_once('=')
        })
        .collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A USTAR header block for tests.
    pub fn header(name: &str, typeflag: u8, mode: u32, size: usize, link: &str) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(format!("{mode:07o}").as_bytes());
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h
    }

    /// An archive of (name, typeflag, mode, contents, link) entries.
    pub fn archive(entries: &[(&str, u8, u32, &str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, typeflag, mode, contents, link) in entries {
            out.extend(header(name, *typeflag, *mode, contents.len(), link));
            out.extend(contents.as_bytes());
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    #[test]
    fn reads_entries_modes_links_and_kept_contents() {
        let pax_path = "very/".repeat(30) + "long";
        let pax = format!("{} path={pax_path}\n", pax_path.len() + 11);
        let tar = archive(&[
            ("bin/", b'5', 0o755, "", ""),
            ("bin/busybox", b'0', 0o4755, "ELF", ""),
            ("bin/sh", b'2', 0o777, "", "busybox"),
            ("etc/passwd", b'0', 0o644, "root:x:0:0::/root:/sbin/nologin\n", ""),
            ("tmp/", b'5', 0o1777, "", ""),
            ("PaxHeaders/x", b'x', 0o644, &pax, ""),
            ("short-name", b'0', 0o600, "", ""),
        ]);
        let listing = scan(&tar[..], &|p| p == "/etc/passwd").unwrap();
        let paths: Vec<&str> = listing.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/bin", "/bin/busybox", "/bin/sh", "/etc/passwd", "/tmp", &format!("/{pax_path}")]
        );
        assert_eq!(listing.entries[1].mode, 0o4755);
        assert_eq!(listing.entries[2].kind, Kind::Symlink);
        assert_eq!(listing.entries[2].link, "busybox");
        assert_eq!(listing.entries[4].mode, 0o1777);
        assert_eq!(listing.content("/etc/passwd"), Some(&b"root:x:0:0::/root:/sbin/nologin\n"[..]));
        assert_eq!(listing.contents.len(), 1);
    }

    #[test]
    fn truncated_archives_are_errors() {
        let tar = archive(&[("etc/passwd", b'0', 0o644, "root", "")]);
        assert!(scan(&tar[..700], &|_| true).is_err());
        assert!(scan(&tar[..100], &|_| true).is_err());
        assert!(scan(&[][..], &|_| true).unwrap().entries.is_empty());
    }

    #[test]
    fn numbers() {
        assert_eq!(octal(b"0000755\0"), Some(0o755));
        assert_eq!(octal(b"   644 \0"), Some(0o644));
        assert_eq!(octal(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(octal(b"9\0"), None);
    }
}
