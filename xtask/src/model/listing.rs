//! What an image's files are, as read from its exported file system: every entry with its
//! metadata and content digest, and the bytes of the few files a reader asked for. Pure data;
//! sys/export.rs reads it from the archive.

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
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// The SHA-256 of a file's content, hex (a hard link's is its target's); for the few files
    /// `filesystem::volatile` names, of the content as `filesystem::normalised` gives it.
    pub digest: String,
    /// Its extended attributes (file capabilities among them) as the archive records them
    /// (`SCHILY.xattr.NAME`): `NAME=hex` each, sorted, `;`-separated; empty when none.
    pub xattrs: String,
    /// For an ELF file, the machine it is built for (e_machine): what says an image is the
    /// platform its configuration names.
    pub machine: Option<u16>,
}

/// Entries of the archive, and the contents of the regular files `keep` selected (at most
/// `MAX_KEPT` bytes each).
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub contents: Vec<(String, Vec<u8>)>,
    /// Files `keep` selected that were too large to keep, with their sizes.
    pub too_large: Vec<(String, u64)>,
    /// Hard links `keep` selected whose data is stored under a name it did not select (a
    /// package manager's store): (the link, the file it links to). A second read keeps those.
    pub unkept_links: Vec<(String, String)>,
}

impl Listing {
    /// The kept contents of the file at `path`.
    pub fn content(&self, path: &str) -> Option<&[u8]> {
        self.contents.iter().find(|(p, _)| p == path).map(|(_, c)| c.as_slice())
    }

    /// Adds each kept file again under the names a linked folder gives it, so that readers
    /// find it where the image has it: with `/lib -> usr/lib` (a merged /usr), the file stored
    /// as /usr/lib/apk/db/installed is also /lib/apk/db/installed.
    pub fn add_linked_names(&mut self) {
        let links: Vec<(String, String)> = self
            .entries
            .iter()
            .filter(|e| e.kind == Kind::Symlink)
            .filter_map(|e| resolve(&e.path, &e.link).map(|target| (e.path.clone(), target)))
            .collect();
        let mut aliases = Vec::new();
        for (link, target) in &links {
            for (path, data) in &self.contents {
                let Some(rest) = path.strip_prefix(target.as_str()).filter(|r| r.starts_with('/')) else {
                    continue;
                };
                let alias = format!("{link}{rest}");
                if self.content(&alias).is_none() {
                    aliases.push((alias, data.clone()));
                }
            }
        }
        self.contents.extend(aliases);
    }
}

/// The absolute path a symbolic link at `path` to `target` leads to, `..` and `.` resolved;
/// None when it climbs out of the root.
fn resolve(path: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        parts.extend(path.split('/').filter(|p| !p.is_empty()));
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_inside_the_root_or_not_at_all() {
        assert_eq!(resolve("/lib", "usr/lib").as_deref(), Some("/usr/lib"));
        assert_eq!(resolve("/etc/alt", "../usr/lib/apk").as_deref(), Some("/usr/lib/apk"));
        assert_eq!(resolve("/a/b", "/c/./d").as_deref(), Some("/c/d"));
        assert_eq!(resolve("/escape", "../../.."), None);
    }
}
