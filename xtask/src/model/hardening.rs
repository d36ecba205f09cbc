//! The hardening baseline an image must meet, checked against its files and its configured
//! user. Pure: the rules come from the inventory (`[verify]` and `[images.NAME.verify]`), the
//! files from `docker export` (see sys/export.rs).

use std::fmt;

use crate::model::listing::{Entry, Kind, Listing};

/// What one image must satisfy. Every rule is opt-in through the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    /// The user the image must run as; it must not be root.
    pub user: Option<String>,
    pub no_setuid: bool,
    pub no_world_writable: bool,
    pub sticky_tmp: bool,
    pub banner: Option<Banner>,
    /// Paths that must not exist (tools an attacker uses, removed configuration).
    pub absent: Vec<String>,
    /// The only accounts /etc/passwd may hold.
    pub accounts: Option<Vec<String>>,
    /// Every account has a nologin shell and (where /etc/shadow exists) a locked password.
    pub accounts_locked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub file: String,
    pub contains: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub path: String,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path is the image's: spelled out on one line, whatever it holds.
        write!(f, "{}: {}: {}", self.rule, crate::model::text::one_line(&self.path), self.detail)
    }
}

/// Runtime mounts and scratch space: world-writable by design.
const WRITABLE_ROOTS: [&str; 5] = ["/tmp", "/var/tmp", "/dev", "/proc", "/sys"];

impl Spec {
    /// Files whose contents the rules read.
    pub fn files_to_read(&self) -> Vec<String> {
        let mut files = vec!["/etc/passwd".to_string(), "/etc/shadow".to_string()];
        files.extend(self.banner.as_ref().map(|b| b.file.clone()));
        files
    }

    /// Every rule this image breaks, each naming the rule and the path.
    pub fn check(&self, configured_user: &str, listing: &Listing) -> Vec<Violation> {
        let mut out = Vec::new();
        let text = |path: &str| listing.content(path).map(|b| String::from_utf8_lossy(b).into_owned());
        let passwd = text("/etc/passwd").unwrap_or_default();
        let accounts: Vec<Account> = passwd.lines().filter_map(Account::parse).collect();
        let v = |rule, path: &str, detail: String| Violation { rule, path: path.to_string(), detail };

        if let Some(expected) = &self.user {
            out.extend(check_user(expected, configured_user, &accounts));
        }
        out.extend(self.check_modes(listing));
        if self.sticky_tmp {
            match listing.entries.iter().find(|e| e.path == "/tmp") {
                None => out.push(v("sticky-tmp", "/tmp", "is missing".into())),
                Some(e) if e.mode & 0o1000 == 0 => {
                    out.push(v("sticky-tmp", "/tmp", format!("lacks the sticky bit (mode {:04o})", e.mode)))
                }
                Some(_) => {}
            }
        }
        if let Some(banner) = &self.banner {
            match text(&banner.file) {
                None => out.push(v("banner", &banner.file, "is missing, so no login banner is shown".into())),
                Some(t) if !t.contains(&banner.contains) => out.push(v(
                    "banner",
                    &banner.file,
                    format!("does not contain the login banner ({:?})", banner.contains),
                )),
                Some(_) => {}
            }
        }
        for path in &self.absent {
            if let Some(e) = listing.entries.iter().find(|e| &e.path == path) {
                let what =
                    if e.kind == Kind::Symlink { format!("a link to {}", e.link) } else { "present".into() };
                out.push(v("absent", path, format!("must be removed, but is {what}")));
            }
        }
        out.extend(self.check_accounts(&accounts, &text("/etc/shadow").unwrap_or_default()));
        out
    }

    /// setuid/setgid files and world-writable files and folders.
    fn check_modes(&self, listing: &Listing) -> Vec<Violation> {
        let mut out = Vec::new();
        let v = |rule, path: &str, detail: String| Violation { rule, path: path.to_string(), detail };
        for e in &listing.entries {
            let regular = matches!(e.kind, Kind::File | Kind::Hardlink);
            if self.no_setuid && regular && e.mode & 0o6000 != 0 {
                let bit = if e.mode & 0o4000 != 0 { "setuid" } else { "setgid" };
                out.push(v("no-setuid", &e.path, format!("has the {bit} bit (mode {:04o})", e.mode)));
            }
            // A world-writable folder is safe with the sticky bit (only owners may delete).
            let unsafe_folder = e.kind == Kind::Dir && e.mode & 0o1000 == 0;
            let writable = e.mode & 0o002 != 0 && (regular || unsafe_folder);
            if self.no_world_writable && writable && !under_writable_root(e) {
                out.push(v("no-world-writable", &e.path, format!("is world-writable (mode {:04o})", e.mode)));
            }
        }
        out
    }

    /// Accounts that are not needed, and accounts that could log in.
    fn check_accounts(&self, accounts: &[Account], shadow: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        let v = |rule, path: &str, detail: String| Violation { rule, path: path.to_string(), detail };
        if let Some(allowed) = &self.accounts {
            for a in accounts.iter().filter(|a| !allowed.contains(&a.name)) {
                out.push(v(
                    "accounts",
                    "/etc/passwd",
                    format!("account `{}` is not needed: remove it", a.name),
                ));
            }
        }
        if self.accounts_locked {
            for a in accounts {
                if !(a.shell.ends_with("/nologin") || a.shell == "/bin/false") {
                    out.push(v(
                        "accounts-locked",
                        "/etc/passwd",
                        format!("account `{}` has the shell {}", a.name, a.shell),
                    ));
                }
                let password = shadow.lines().find_map(|l| l.strip_prefix(&format!("{}:", a.name)));
                if let Some(rest) = password {
                    let hash = rest.split(':').next().unwrap_or("");
                    if !(hash.starts_with('!') || hash.starts_with('*')) {
                        out.push(v(
                            "accounts-locked",
                            "/etc/shadow",
                            format!("account `{}` is not locked", a.name),
                        ));
                    }
                }
            }
        }
        out
    }
}

fn under_writable_root(e: &Entry) -> bool {
    WRITABLE_ROOTS.iter().any(|root| e.path == *root || e.path.starts_with(&format!("{root}/")))
}

struct Account {
    name: String,
    uid: u32,
    shell: String,
}

impl Account {
    fn parse(line: &str) -> Option<Account> {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7).then(|| Account {
            name: fields[0].to_string(),
            uid: fields[2].parse().unwrap_or(u32::MAX),
            shell: fields[6].to_string(),
        })
    }
}

/// `USER` as configured in the image (`""`, `sbl`, `1000`, `sbl:sbl`) against the expected user.
fn check_user(expected: &str, configured: &str, accounts: &[Account]) -> Vec<Violation> {
    let v = |detail: String| vec![Violation { rule: "user", path: "USER".into(), detail }];
    let user = configured.split(':').next().unwrap_or("");
    if user.is_empty() {
        return v(format!("the image runs as root (no USER); it must run as `{expected}`"));
    }
    let found = match user.parse::<u32>() {
        Ok(uid) => accounts.iter().find(|a| a.uid == uid).map(|a| (a.name.as_str(), uid)).or(Some(("", uid))),
        Err(_) => accounts.iter().find(|a| a.name == user).map(|a| (a.name.as_str(), a.uid)),
    };
    match found {
        None => v(format!("USER `{user}` has no entry in /etc/passwd")),
        Some((_, 0)) => v(format!("the image runs as root (USER `{user}`); it must run as `{expected}`")),
        Some((name, uid)) if name != expected && uid.to_string() != expected => {
            v(format!("the image runs as `{user}`; it must run as `{expected}`"))
        }
        Some(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_names_its_path_on_one_line() {
        let v = Violation {
            rule: "no-setuid",
            path: "/bad\n::error title=F::pwned".into(),
            detail: "has the setuid bit".into(),
        };
        assert_eq!(v.to_string(), "no-setuid: /bad\\n::error title=F::pwned: has the setuid bit");
    }
    use crate::sys::export::{scan, tests::archive};

    const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nsbl:x:1000:1000::/home/sbl:/sbin/nologin\n";

    fn strict() -> Spec {
        Spec {
            user: Some("sbl".into()),
            no_setuid: true,
            no_world_writable: true,
            sticky_tmp: true,
            banner: Some(Banner { file: "/etc/profile".into(), contains: "AUTHORIZED USE ONLY".into() }),
            absent: vec!["/bin/su".into()],
            accounts: Some(vec!["root".into(), "sbl".into()]),
            accounts_locked: true,
        }
    }

    fn listing(extra: &[(&str, u8, u32, &str, &str)]) -> Listing {
        let mut entries: Vec<(&str, u8, u32, &str, &str)> = vec![
            ("bin/busybox", b'0', 0o755, "", ""),
            ("etc/passwd", b'0', 0o644, PASSWD, ""),
            ("etc/shadow", b'0', 0o600, "root:!::0:::::\nsbl:*::0:::::\n", ""),
            ("etc/profile", b'0', 0o644, "echo 'AUTHORIZED USE ONLY'\n", ""),
            ("tmp/", b'5', 0o1777, "", ""),
            ("dev/shm/", b'5', 0o1777, "", ""),
        ];
        // A later entry for the same path replaces the earlier one.
        for e in extra {
            entries.retain(|(name, ..)| name != &e.0);
            entries.push(*e);
        }
        let spec = strict();
        let keep = spec.files_to_read();
        scan(&archive(&entries)[..], &|p| keep.iter().any(|k| k == p)).unwrap()
    }

    fn rules(violations: &[Violation]) -> Vec<String> {
        violations.iter().map(|v| format!("{} {}", v.rule, v.path)).collect()
    }

    #[test]
    fn a_hardened_image_passes() {
        assert_eq!(strict().check("sbl", &listing(&[])), []);
        assert_eq!(strict().check("1000:1000", &listing(&[])), []);
    }

    #[test]
    fn each_rule_names_itself_and_the_path() {
        let spec = strict();
        let cases: Vec<(&str, Listing, &str)> = vec![
            ("sbl", listing(&[("bin/busybox", b'0', 0o4755, "", "")]), "no-setuid /bin/busybox"),
            ("sbl", listing(&[("usr/bin/x", b'0', 0o2755, "", "")]), "no-setuid /usr/bin/x"),
            ("sbl", listing(&[("etc/app.conf", b'0', 0o666, "", "")]), "no-world-writable /etc/app.conf"),
            ("sbl", listing(&[("tmp/", b'5', 0o777, "", "")]), "sticky-tmp /tmp"),
            ("sbl", listing(&[("etc/profile", b'0', 0o644, "# nothing\n", "")]), "banner /etc/profile"),
            ("sbl", listing(&[("bin/su", b'2', 0o777, "", "busybox")]), "absent /bin/su"),
            ("", listing(&[]), "user USER"),
            ("root", listing(&[]), "user USER"),
            ("0", listing(&[]), "user USER"),
            ("nobody", listing(&[]), "user USER"),
        ];
        for (user, files, expected) in cases {
            assert_eq!(rules(&spec.check(user, &files)), [expected], "user {user:?}");
        }
        let games = format!("{PASSWD}games:x:12:100::/usr/games:/bin/sh\n");
        let found =
            rules(&spec.check("sbl", &listing(&[("etc/passwd", b'0', 0o644, &games, "")]))).join(", ");
        assert_eq!(found, "accounts /etc/passwd, accounts-locked /etc/passwd");
        let unlocked = "root:$6$hash::0:::::\nsbl:*::0:::::\n";
        let found = rules(&spec.check("sbl", &listing(&[("etc/shadow", b'0', 0o600, unlocked, "")])));
        assert_eq!(found, ["accounts-locked /etc/shadow"]);
    }

    #[test]
    fn runtime_mounts_and_tmp_may_be_world_writable_and_links_never_count() {
        let files =
            listing(&[("var/tmp/", b'5', 0o1777, "", ""), ("etc/mtab", b'2', 0o777, "", "/proc/mounts")]);
        assert_eq!(strict().check("sbl", &files), []);
    }

    #[test]
    fn a_world_writable_folder_needs_the_sticky_bit() {
        let sticky = listing(&[("var/spool/drop/", b'5', 0o1777, "", "")]);
        assert_eq!(strict().check("sbl", &sticky), []);
        let open = listing(&[("var/spool/drop/", b'5', 0o777, "", "")]);
        assert_eq!(rules(&strict().check("sbl", &open)), ["no-world-writable /var/spool/drop"]);
    }

    #[test]
    fn rules_left_out_are_not_checked() {
        let files = listing(&[("bin/busybox", b'0', 0o4755, "", ""), ("tmp/", b'5', 0o777, "", "")]);
        assert_eq!(Spec::default().check("", &files), []);
    }
}
