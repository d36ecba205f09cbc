//! End to end: `verify` against fixture images built by the real engine from a local busybox
//! base. One meets every rule; each other breaks exactly one and must fail naming it and the
//! path. A failing image stops publish before anything reaches the registry.

mod support;

use support::{busybox_base, docker_cli, require_engine, run, xtask, OwnNames, Registry, TempDir};

fn image_exists(reference: &str) -> bool {
    std::process::Command::new(docker_cli())
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .is_ok_and(|o| o.status.success())
}

const RULES: &str = r#"
[verify]
user = "sbl"
no_setuid = true
no_world_writable = true
sticky_tmp = true
banner = { file = "/etc/profile", contains = "AUTHORIZED USE ONLY" }
absent = ["/bin/su"]
accounts = ["root", "sbl"]
accounts_locked = true
"#;

/// (image, the line that breaks a rule, the rule and path the failure must name)
const BROKEN: [(&str, &str, &str); 7] = [
    ("v-setuid", "RUN busybox chmod u+s /bin/busybox", "no-setuid: /bin/busybox: has the setuid bit"),
    ("v-root", "USER root", "user: USER: the image runs as root"),
    (
        "v-writable",
        "RUN echo x > /etc/app.conf && busybox chmod 666 /etc/app.conf",
        "no-world-writable: /etc/app.conf",
    ),
    (
        "v-banner",
        "RUN echo 'echo hello' > /etc/profile",
        "banner: /etc/profile: does not contain the login banner",
    ),
    ("v-su", "RUN busybox ln -s busybox /bin/su", "absent: /bin/su: must be removed"),
    ("v-tmp", "RUN busybox chmod 0777 /tmp", "sticky-tmp: /tmp: lacks the sticky bit"),
    (
        "v-games",
        "RUN echo 'games:x:12:100::/usr/games:/sbin/nologin' >> /etc/passwd",
        "accounts: /etc/passwd: account `games` is not needed",
    ),
];

fn dockerfile(base: &str, breaking: &str) -> String {
    // USER comes last so that a breaking RUN still runs as root.
    format!(
        "FROM {base}\n\
         RUN busybox mkdir -p /tmp /home/sbl \\\n \
         && echo 'root:x:0:0:root:/root:/sbin/nologin' > /etc/passwd \\\n \
         && echo 'sbl:x:1000:1000::/home/sbl:/sbin/nologin' >> /etc/passwd \\\n \
         && echo 'root:!::0:::::' > /etc/shadow && echo 'sbl:!::0:::::' >> /etc/shadow \\\n \
         && echo \"echo 'AUTHORIZED USE ONLY'\" > /etc/profile \\\n \
         && busybox chmod 1777 /tmp\n\
         {breaking}\n\
         USER sbl\n"
    )
    .replace("USER root\nUSER sbl\n", "USER root\n")
}

fn inventory(dir: &TempDir, registry: &str, images: &[(&str, &str)]) -> std::path::PathBuf {
    let base = busybox_base();
    let mut toml = format!("registry = \"{registry}\"\n{RULES}");
    for (name, breaking) in images {
        dir.write(&format!("Dockerfile-{name}"), &dockerfile(base, breaking));
        toml.push_str(&format!(
            "\n[images.{name}]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-{name}\"\n"
        ));
    }
    dir.write("images.toml", &toml)
}

#[test]
fn verify_passes_a_hardened_image_and_names_each_broken_rule() {
    if !require_engine() {
        return;
    }
    let names = OwnNames::new();
    let registry = format!("127.0.0.1:9/{}", names.token());
    let dir = TempDir::new("verify");
    let mut images = vec![("v-good", "")];
    images.extend(BROKEN.iter().map(|(name, breaking, _)| (*name, *breaking)));
    let inv = inventory(&dir, &registry, &images);

    // build checks every image as it is built and reports every failure at once; the image
    // that passed gets its local tag, as a developer iterating on one Dockerfile expects.
    let out = run(xtask().args(["build", "--inventory"]).arg(&inv)).fails();
    assert!(out.stderr.contains("the hardening baseline is not met"), "{}", out.stderr);
    for (name, _, expected) in BROKEN {
        assert!(
            out.stderr.contains(&format!("{name}: {expected}")),
            "{name}: expected `{expected}` in:\n{}",
            out.stderr
        );
        // Each rejected image is kept under one name per image, for a look.
        let kept = format!("{registry}/{name}:rejected");
        assert!(out.stderr.contains(&format!("kept as {kept}")), "{}", out.stderr);
        assert!(image_exists(&kept), "{kept} was not kept");
        assert!(!image_exists(&format!("{registry}/{name}:local-v1.0.0")), "{name} was tagged");
    }
    assert!(!out.stderr.contains("  v-good: "), "{}", out.stderr);
    let good = format!("{registry}/v-good:local-v1.0.0");
    assert!(out.stderr.contains(&format!("Tagged what passed: {good}")), "{}", out.stderr);
    assert!(image_exists(&good), "{good} was not tagged");

    // verify on its own: the good image passes, each broken one (read where it was kept) fails
    // with exactly its rule.
    let out = run(xtask().args(["verify", "v-good", "--inventory"]).arg(&inv)).ok();
    assert!(out.stdout.contains("meets its hardening rules"), "{}", out.stdout);
    for (name, _, expected) in BROKEN {
        let kept = format!("{registry}/{name}:rejected");
        let out = run(xtask().args(["verify", name, "--reference", &kept, "--inventory"]).arg(&inv)).fails();
        assert!(out.stderr.contains("breaks 1 hardening rule(s)"), "{name}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{name}: {}", out.stderr);
    }
}

#[test]
fn an_image_failing_verify_is_never_pushed() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("verify");
    let inv = inventory(&dir, &registry.ns(), &[("p-good", ""), ("p-setuid", BROKEN[0].1)]);
    let out = run(xtask().args(["publish", "--build-id", "1", "--inventory"]).arg(&inv)).fails();
    assert!(out.stderr.contains("p-setuid: no-setuid: /bin/busybox"), "{}", out.stderr);
    assert!(out.stderr.contains("Nothing was pushed. Built: p-good"), "{}", out.stderr);
    assert!(
        registry.tags(&registry.repo("p-good")).is_empty()
            && registry.tags(&registry.repo("p-setuid")).is_empty()
    );
}

#[test]
fn verify_without_rules_or_build_says_what_to_do() {
    if !require_engine() {
        return;
    }
    let names = OwnNames::new();
    let dir = TempDir::new("verify");
    let inv = inventory(&dir, &format!("127.0.0.1:9/{}", names.token()), &[("v-unbuilt", "")]);
    let never_built = format!("{}:1", names.image("never-built"));
    let out =
        run(xtask().args(["verify", "v-unbuilt", "--reference", &never_built, "--inventory"]).arg(&inv))
            .fails();
    assert!(out.stderr.contains(&format!("cannot inspect {never_built}")), "{}", out.stderr);
    let text = std::fs::read_to_string(&inv).unwrap().replace(RULES, "");
    std::fs::write(&inv, text).unwrap();
    let out = run(xtask().args(["verify", "v-unbuilt", "--inventory"]).arg(&inv)).fails();
    assert!(out.stderr.contains("no hardening rules for v-unbuilt"), "{}", out.stderr);
}

/// The Alpine hardening script, run for real on an Alpine-like busybox image (every applet
/// linked, extra accounts, a setuid file, a world-writable file, cron and root's home, a
/// dangling link), must produce an image that passes the repository's own [verify] rules.
/// Alpine's account tools and apk are not in Debian's busybox, so small stand-ins take their place.
#[test]
fn the_alpine_hardening_script_meets_the_repository_baseline() {
    if !require_engine() {
        return;
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("images");
    let inventory = std::fs::read_to_string(repo.join("images.toml")).unwrap();
    let start = inventory.find("\n[verify]").expect("images.toml has a [verify] table");
    let end = inventory[start + 1..].find("\n[images.").map_or(inventory.len(), |i| start + 1 + i);
    let baseline = &inventory[start..end];

    let names = OwnNames::new();
    let dir = TempDir::new("harden");
    std::fs::copy(repo.join("harden-alpine.sh"), dir.path().join("harden-alpine.sh")).unwrap();
    dir.write(
        "stand-ins.sh",
        r#"set -e
tool() { printf '#!/bin/sh\n%s\n' "$2" > "$1"; busybox chmod 755 "$1"; }
tool /sbin/apk 'exit 0'
tool /usr/sbin/deluser 'sed -i "/^$1:/d" /etc/passwd /etc/shadow'
tool /usr/sbin/delgroup 'sed -i "/^$1:/d" /etc/group'
tool /usr/sbin/addgroup 'echo "$3:x:$2:" >> /etc/group'
tool /usr/sbin/adduser 'while getopts Du:G:s:h: o; do case $o in u) u=$OPTARG;; s) s=$OPTARG;; h) h=$OPTARG;; esac; done; shift $((OPTIND-1)); echo "$1:x:$u:$u::$h:$s" >> /etc/passwd; echo "$1:!::0:::::" >> /etc/shadow; mkdir -p "$h"'
"#,
    );
    let base = busybox_base();
    dir.write(
        "Dockerfile-hardened",
        &format!(
            r#"FROM {base}
RUN busybox mkdir -p /sbin /usr/bin /usr/sbin && busybox --install -s
COPY stand-ins.sh /tmp/stand-ins.sh
RUN sh /tmp/stand-ins.sh \
 && mkdir -p /etc /root /etc/crontabs /tmp /usr/local/bin \
 && printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:2:2:daemon:/sbin:/sbin/nologin\ngames:x:35:35:games:/usr/games:/bin/sh\n' > /etc/passwd \
 && printf 'root:x:0:\ndaemon:x:2:\ngames:x:35:\n' > /etc/group \
 && printf 'root:$6$hash:1::::::\ndaemon:*:1::::::\ngames:$6$x:1::::::\n' > /etc/shadow \
 && echo 'export PATH' > /etc/profile && echo '/dev/sda / ext4' > /etc/fstab \
 && cp /bin/busybox /usr/local/bin/ping && chmod 4755 /usr/local/bin/ping \
 && echo data > /etc/app.conf && chmod 666 /etc/app.conf \
 && mkdir -p /var/spool/drop && chmod 777 /var/spool/drop \
 && ln -s /nowhere /usr/local/bin/dangling
ENV APP_USER=sbl APP_UID=1000
COPY harden-alpine.sh /tmp/harden-alpine.sh
RUN sh /tmp/harden-alpine.sh && rm -f /tmp/harden-alpine.sh /tmp/stand-ins.sh
USER sbl
"#
        ),
    );
    let inv = dir.write(
        "images.toml",
        &format!("registry = \"127.0.0.1:9/{}\"\n{baseline}\n[images.hardened]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-hardened\"\n", names.token()),
    );
    let out = run(xtask().args(["build", "--inventory"]).arg(&inv)).ok();
    assert!(out.stdout.contains("meets its hardening rules"), "{}", out.stdout);
}
