//! End to end: what a rebuild reports and when it publishes (the real engine, a real registry,
//! git, and an independent SPDX validator). The upstream bases are made here from busybox with
//! package databases in them, and pushed to the test's registry so that a scheduled-style run
//! (--pull --no-cache) can pull them.

mod support;

use std::path::Path;
use std::process::Command;

use support::{
    docker_cli, import_rootfs, require_engine, require_program, run, xtask, OwnNames, Registry, TempDir,
};

/// An apk database of musl and openssl at `openssl`, in the format apk writes.
fn apk_database(openssl: &str) -> String {
    format!(
        "C:Q1abc=\nP:musl\nV:1.2.5-r10\nA:x86_64\nL:MIT\no:musl\n\n\
         C:Q1def=\nP:openssl\nV:{openssl}\nA:x86_64\nL:Apache-2.0\no:openssl\nF:usr/lib\nR:libssl.so.3\n\n"
    )
}

const REQUESTS_METADATA: &str =
    "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\n# Requests\n";
const MS_PACKAGE: &str = r#"{"name":"ms","version":"2.1.3","license":"MIT"}"#;

fn docker(args: &[&str]) -> String {
    let out = Command::new(docker_cli()).args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes `dir` a git repository with everything in it committed.
fn commit_fixture(dir: &Path) {
    git(dir, &["init", "-q"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "fixture"]);
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// moving (on an upstream base that will move), moving-kid (built on moving), steady (on a base
/// that stays) and steady-kid (built on steady), in a git repository of their own.
fn inventory(dir: &TempDir, registry: &str, moving_base: &str, steady_base: &str) -> std::path::PathBuf {
    dir.write(
        "Dockerfile-moving",
        &format!("ARG UPSTREAM={moving_base}\nFROM ${{UPSTREAM}}\nRUN echo moving > /moving.txt\n"),
    );
    dir.write("Dockerfile-steady", &format!("FROM {steady_base}\nRUN echo steady > /steady.txt\n"));
    for (kid, parent) in [("moving-kid", "MOVING"), ("steady-kid", "STEADY")] {
        dir.write(
            &format!("Dockerfile-{kid}"),
            &format!("ARG {parent}_IMAGE\nFROM ${{{parent}_IMAGE}}\nRUN echo {kid} > /{kid}.txt\n"),
        );
    }
    let mut toml = format!("registry = \"{registry}\"\n");
    for (name, parent) in
        [("moving", None), ("moving-kid", Some("moving")), ("steady", None), ("steady-kid", Some("steady"))]
    {
        toml.push_str(&format!(
            "\n[images.{name}]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-{name}\"\n"
        ));
        if let Some(parent) = parent {
            toml.push_str(&format!("depends_on = [\"{parent}\"]\n"));
        }
    }
    let path = dir.write("images.toml", &toml);
    dir.write(".gitignore", "sbom/\n*.md\n*.txt\n*.json\n");
    commit_fixture(dir.path());
    path
}

/// ci-main as a GitHub Actions run of `event` would run it (run number `number`).
fn ci_main(dir: &TempDir, inventory: &Path, event: &str, number: &str, sha: &str) -> support::Run {
    let event_file = dir.write("event.json", r#"{"inputs":{"force":true}}"#);
    run(xtask()
        .args(["ci-main", "--sbom-dir"])
        .arg(dir.path().join("sbom"))
        .arg("--inventory")
        .arg(inventory)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_EVENT_PATH", event_file)
        .env("GITHUB_RUN_NUMBER", number)
        .env("GITHUB_RUN_ATTEMPT", "1")
        .env("GITHUB_SHA", sha)
        .env("GITHUB_STEP_SUMMARY", dir.path().join(format!("summary-{number}.md")))
        .env("GITHUB_OUTPUT", dir.path().join(format!("output-{number}.txt")))
        .env_remove("GITHUB_TOKEN"))
}

/// The `attest` step output of a ci-main run (what the workflow's attest job fans out over).
fn attest_output(output: &str) -> Vec<serde_json::Value> {
    let line = output.lines().find_map(|l| l.strip_prefix("attest=")).unwrap_or_else(|| panic!("{output}"));
    serde_json::from_str(line).unwrap()
}

fn unique_tags(registry: &Registry, name: &str) -> Vec<String> {
    registry.tags(&registry.repo(name)).into_iter().filter(|t| t.starts_with("v1.0.0_")).collect()
}

#[test]
fn a_rebuild_publishes_only_what_changed_says_why_and_writes_valid_sboms() {
    if !require_engine() || !require_program("pyspdxtools", "validating the SBOMs (pip install spdx-tools)") {
        return;
    }
    let registry = Registry::start();
    let host = registry.ns();
    let dir = TempDir::new("rebuild");
    let (moving_base, steady_base) =
        (format!("{host}/upstream/moving:1"), format!("{host}/upstream/steady:1"));
    let old_apk = apk_database("3.1.4-r1");
    import_rootfs(&docker_cli(), &moving_base, &[("lib/apk/db/installed", &old_apk)]);
    docker(&["push", &moving_base]);
    import_rootfs(
        &docker_cli(),
        &steady_base,
        &[
            ("etc/os-release", "ID=alpine\n"),
            ("lib/apk/db/installed", &apk_database("3.3.2-r0")),
            ("usr/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA", REQUESTS_METADATA),
            ("app/node_modules/ms/package.json", MS_PACKAGE),
        ],
    );
    docker(&["push", &steady_base]);
    let inv = inventory(&dir, &host, &moving_base, &steady_base);
    let head = git(dir.path(), &["rev-parse", "HEAD"]);
    let sboms = dir.path().join("sbom");

    // 1. A first publish publishes everything, with the base and revision recorded.
    let first = run(xtask()
        .args(["publish", "--build-id", "1", "--sbom-dir"])
        .arg(&sboms)
        .arg("--inventory")
        .arg(&inv))
    .ok();
    for name in ["moving", "moving-kid", "steady", "steady-kid"] {
        assert_eq!(unique_tags(&registry, name), ["v1.0.0_1"], "{name}");
        assert!(first.stdout.contains(&format!("{name}: published: first publish")), "{}", first.stdout);
    }
    let labels =
        |name: &str, tag: &str| registry.config(&registry.repo(name), tag)["config"]["Labels"].clone();
    let moving_labels = labels("moving", "v1.0.0_1");
    let base_digest_1 = registry.digest(&registry.repo("upstream/moving"), "1");
    assert_eq!(moving_labels["org.opencontainers.image.base.name"], moving_base.as_str());
    assert_eq!(moving_labels["org.opencontainers.image.base.digest"], base_digest_1.as_str());
    assert_eq!(moving_labels["org.opencontainers.image.revision"], head.as_str());
    assert_eq!(moving_labels["org.opencontainers.image.ref.name"], "v1.0.0_1");
    let moving_id = docker(&["image", "inspect", "--format", "{{.Id}}", &format!("{host}/moving:v1.0.0_1")]);
    let kid_labels = labels("moving-kid", "v1.0.0_1");
    assert_eq!(kid_labels["org.opencontainers.image.base.name"], format!("{host}/moving:v1.0.0").as_str());
    assert_eq!(kid_labels["org.opencontainers.image.base.digest"], moving_id.as_str());

    // Every SBOM validates with an independent validator, and describes the published digest.
    let sbom = |name: &str| -> serde_json::Value {
        let file = sboms.join(format!("{name}.spdx.json"));
        let check = Command::new("pyspdxtools").arg("-i").arg(&file).output().unwrap();
        assert!(
            check.status.success(),
            "{} is not valid SPDX: {}{}",
            file.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
    };
    let purls = |doc: &serde_json::Value| -> Vec<String> {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["externalRefs"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["referenceLocator"].as_str().map(String::from))
            .collect()
    };
    for name in ["moving", "moving-kid", "steady", "steady-kid"] {
        let doc = sbom(name);
        let digest = registry.digest(&registry.repo(name), "v1.0.0_1");
        assert_eq!(
            doc["packages"][0]["checksums"][0]["checksumValue"],
            digest.trim_start_matches("sha256:"),
            "{name}"
        );
    }
    let steady = purls(&sbom("steady"));
    for purl in
        ["pkg:apk/alpine/openssl@3.3.2-r0?arch=x86_64", "pkg:pypi/requests@2.31.0", "pkg:npm/ms@2.1.3"]
    {
        assert!(steady.contains(&purl.to_string()), "{purl} missing from {steady:?}");
    }

    // 2. The upstream base moves (a patched openssl, under a new digest). The scheduled run
    //    republishes moving and what is built on it, and leaves steady and its kid alone.
    import_rootfs(&docker_cli(), &moving_base, &[("lib/apk/db/installed", &apk_database("3.1.4-r5"))]);
    docker(&["push", &moving_base]);
    let base_digest_2 = registry.digest(&registry.repo("upstream/moving"), "1");
    assert_ne!(base_digest_1, base_digest_2);
    let second = ci_main(&dir, &inv, "schedule", "2", &head).ok();
    assert_eq!(unique_tags(&registry, "moving"), ["v1.0.0_1", "v1.0.0_2.1"]);
    assert_eq!(unique_tags(&registry, "moving-kid"), ["v1.0.0_1", "v1.0.0_2.1"]);
    assert_eq!(unique_tags(&registry, "steady"), ["v1.0.0_1"]);
    assert_eq!(unique_tags(&registry, "steady-kid"), ["v1.0.0_1"]);
    let summary = std::fs::read_to_string(dir.path().join("summary-2.md")).unwrap();
    assert!(summary.contains("#### moving\n"), "{summary}");
    assert!(
        summary.contains(&format!("- base moved: {moving_base} {base_digest_1} -> {base_digest_2}")),
        "{summary}"
    );
    assert!(summary.contains("- packages: openssl 3.1.4-r1 -> 3.1.4-r5\n"), "{summary}");
    let steady_digest = registry.digest(&registry.repo("steady"), "v1.0.0");
    assert!(summary.contains(&format!("- unchanged since v1.0.0_1 ({steady_digest})")), "{summary}");
    assert!(
        second.stdout.contains("steady is unchanged: what is built on it builds on the published steady"),
        "{}",
        second.stdout
    );
    let output = std::fs::read_to_string(dir.path().join("output-2.txt")).unwrap();
    assert!(output.contains(&format!("sbom-dir={}", sboms.display())), "{output}");
    // What the workflow attests: exactly the two images this run pushed, each by the digest
    // the registry holds (read here, not by the tool) and the SBOM that names that digest.
    let attest = attest_output(&output);
    let attested: Vec<&str> = attest.iter().map(|a| a["image"].as_str().unwrap()).collect();
    assert_eq!(attested, ["moving", "moving-kid"], "{output}");
    for item in &attest {
        let name = item["image"].as_str().unwrap();
        let digest = registry.digest(&registry.repo(name), "v1.0.0_2.1");
        assert_eq!(item["digest"], digest.as_str(), "{name}");
        assert_eq!(
            registry.digest(&registry.repo(name), "v1.0.0"),
            digest,
            "{name}: the version tag pins the same"
        );
        assert_eq!(item["repository"], format!("{host}/{name}"), "{name}");
        assert_eq!(item["registry"], host.split('/').next().unwrap(), "{name}");
        let document: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(sboms.join(item["sbom"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            document["packages"][0]["checksums"][0]["checksumValue"],
            digest.trim_start_matches("sha256:")
        );
        assert!(document["name"].as_str().unwrap().contains(&digest), "{document}");
    }
    assert!(purls(&sbom("moving")).contains(&"pkg:apk/alpine/openssl@3.1.4-r5?arch=x86_64".to_string()));
    let steady_doc = sbom("steady");
    assert_eq!(
        steady_doc["packages"][0]["checksums"][0]["checksumValue"],
        steady_digest.trim_start_matches("sha256:")
    );

    // 3. Nothing moved: a scheduled run over the same fixture pushes nothing, and says so per image.
    let tags_before: Vec<Vec<String>> = ["moving", "moving-kid", "steady", "steady-kid"]
        .iter()
        .map(|n| registry.tags(&registry.repo(n)))
        .collect();
    ci_main(&dir, &inv, "schedule", "3", &head).ok();
    let output = std::fs::read_to_string(dir.path().join("output-3.txt")).unwrap();
    assert_eq!(attest_output(&output), Vec::<serde_json::Value>::new(), "nothing pushed, nothing to attest");
    let summary = std::fs::read_to_string(dir.path().join("summary-3.md")).unwrap();
    for (name, before) in ["moving", "moving-kid", "steady", "steady-kid"].iter().zip(&tags_before) {
        assert_eq!(&registry.tags(&registry.repo(name)), before, "{name} was pushed");
        let section = summary.split(&format!("#### {name}\n")).nth(1).unwrap_or_else(|| panic!("{summary}"));
        assert!(section.starts_with("- unchanged since v1.0.0_"), "{name}: {summary}");
    }

    // 4. A manual run asked to force publishes everything again.
    ci_main(&dir, &inv, "workflow_dispatch", "4", &head).ok();
    assert_eq!(unique_tags(&registry, "steady"), ["v1.0.0_1", "v1.0.0_4.1"]);
    assert_eq!(unique_tags(&registry, "steady-kid"), ["v1.0.0_1", "v1.0.0_4.1"]);
}

/// An RPM database (SQLite, as rpm 4.16+ writes it) in an image is read by this machine's rpm
/// from the exported files; the image is never run.
#[test]
fn packages_reads_an_rpm_database_with_this_machines_rpm() {
    if !require_engine()
        || !require_program("rpm", "reading RPM databases")
        || !require_program("rpmbuild", "making the test's RPM package")
    {
        return;
    }
    let dir = TempDir::new("rpmdb");
    let spec = "Name: xtask-fixture\nVersion: 1.0\nRelease: 3.el8\nSummary: fixture\nLicense: MIT\nBuildArch: noarch\n\
                %description\nfixture\n%files\n";
    let spec_file = dir.write("fixture.spec", spec);
    let top = dir.path().join("top");
    let built = Command::new("rpmbuild")
        .args(["-bb", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec_file)
        .output()
        .unwrap();
    assert!(built.status.success(), "rpmbuild: {}", String::from_utf8_lossy(&built.stderr));
    let package = top.join("RPMS/noarch/xtask-fixture-1.0-3.el8.noarch.rpm");
    let db = dir.path().join("db");
    for args in [
        vec!["--initdb"],
        vec!["-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos", package.to_str().unwrap()],
    ] {
        let out = Command::new("rpm").arg("--dbpath").arg(&db).args(&args).output().unwrap();
        assert!(out.status.success(), "rpm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let sqlite = std::fs::read(db.join("rpmdb.sqlite")).unwrap();
    // The database is binary; the rootfs writer takes text, so it goes in by a file of its own.
    let names = OwnNames::new();
    let (image, with_rpmdb) = (format!("{}:1", names.image("rpmdb")), format!("{}:2", names.image("rpmdb")));
    import_rootfs(&docker_cli(), &image, &[("etc/os-release", "ID=\"rhel\"\n")]);
    let with_db =
        dir.write("Dockerfile", &format!("FROM {image}\nCOPY rpmdb.sqlite /var/lib/rpm/rpmdb.sqlite\n"));
    std::fs::write(dir.path().join("rpmdb.sqlite"), sqlite).unwrap();
    docker(&[
        "build",
        "-q",
        "-t",
        &with_rpmdb,
        "-f",
        with_db.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    dir.write("Dockerfile-ubi", &format!("FROM {with_rpmdb}\n"));
    let inv = dir.write(
        "images.toml",
        &format!(
            "registry = \"127.0.0.1:9/{}\"\n[images.ubi]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-ubi\"\n",
            names.token()
        ),
    );
    let out =
        run(xtask().args(["packages", "ubi", "--reference", &with_rpmdb, "--json", "--inventory"]).arg(&inv))
            .ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let found = &json["packages"][0];
    assert_eq!(json["distro"], "rhel");
    assert_eq!((found["ecosystem"].as_str(), found["name"].as_str()), (Some("rpm"), Some("xtask-fixture")));
    assert_eq!((found["version"].as_str(), found["license"].as_str()), (Some("1.0-3.el8"), Some("MIT")));
    assert!(
        out.stderr.contains("/var/lib/rpm/rpmdb.sqlite read by this machine's rpm from the exported files"),
        "{}",
        out.stderr
    );
}

/// With podman: a rebuild of an unchanged fixture pushes nothing, a child builds on the
/// published parent, and the SBOMs validate.
#[test]
fn podman_skips_what_did_not_change() {
    if !require_program("podman", "the podman rebuild test")
        || !require_program("pyspdxtools", "validating the SBOMs (pip install spdx-tools)")
    {
        return;
    }
    let mut registry = Registry::start();
    registry.names.also_podman();
    let host = registry.ns();
    let dir = TempDir::new("rebuild-podman");
    let upstream = &format!("{host}/upstream/podman:1");
    import_rootfs("podman", upstream, &[("lib/apk/db/installed", &apk_database("3.3.2-r0"))]);
    dir.write("Dockerfile-pbase", &format!("FROM {upstream}\nRUN echo base > /base.txt\n"));
    dir.write("Dockerfile-pkid", "ARG PBASE_IMAGE\nFROM ${PBASE_IMAGE}\nRUN echo kid > /kid.txt\n");
    let inv = dir.write(
        "images.toml",
        &format!(
            "registry = \"{host}\"\n[images.pbase]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-pbase\"\n\
             [images.pkid]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-pkid\"\ndepends_on = [\"pbase\"]\n"
        ),
    );
    dir.write(".gitignore", "sbom/\n*.conf\n*.json\n");
    commit_fixture(dir.path());
    let conf = dir.write(
        "registries.conf",
        &format!("[[registry]]\nlocation = \"{}\"\ninsecure = true\n", registry.host()),
    );
    let sboms = dir.path().join("sbom");
    dir.write("auth.json", "{}");
    let publish = |id: &str| {
        run(xtask()
            .args(["publish", "--build-id", id, "--sbom-dir"])
            .arg(&sboms)
            .arg("--inventory")
            .arg(&inv)
            .env("DOCKER", "podman")
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .env("REGISTRY_AUTH_FILE", dir.path().join("auth.json")))
    };
    publish("1").ok();
    let out = publish("2").ok();
    for name in ["pbase", "pkid"] {
        assert_eq!(unique_tags(&registry, name), ["v1.0.0_1"], "{name}:\n{}", out.all());
        let digest = registry.digest(&registry.repo(name), "v1.0.0");
        assert!(
            out.stdout.contains(&format!("{name}: not pushed: unchanged since v1.0.0_1 ({digest})")),
            "{}",
            out.stdout
        );
        let file = sboms.join(format!("{name}.spdx.json"));
        let check = Command::new("pyspdxtools").arg("-i").arg(&file).output().unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    }
    assert!(
        out.stdout.contains("pbase is unchanged: what is built on it builds on the published pbase"),
        "{}",
        out.stdout
    );
}

/// An image that takes files from another image (a build stage) is published again when that
/// image moves, though its own base and packages did not.
#[test]
fn a_moved_build_stage_image_publishes_again() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let host = registry.ns();
    let dir = TempDir::new("rebuild-stage");
    let (base, tool) = (format!("{host}/upstream/base:1"), format!("{host}/upstream/tool:1"));
    import_rootfs(&docker_cli(), &base, &[("lib/apk/db/installed", &apk_database("3.3.2-r0"))]);
    docker(&["push", &base]);
    import_rootfs(&docker_cli(), &tool, &[("tool", "tool v1 (vulnerable)\n")]);
    docker(&["push", &tool]);
    dir.write(
        "Dockerfile-multi",
        &format!("FROM {tool} AS build\nFROM {base}\nCOPY --from=build /tool /tool\n"),
    );
    let inv = dir.write(
        "images.toml",
        &format!(
            "registry = \"{host}\"\n[images.multi]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-multi\"\n"
        ),
    );
    dir.write(".gitignore", "sbom/\n");
    commit_fixture(dir.path());
    let publish =
        |id: &str| run(xtask().args(["publish", "--pull", "--build-id", id, "--inventory"]).arg(&inv)).ok();
    publish("1");
    let before = registry.digest(&registry.repo("upstream/tool"), "1");
    import_rootfs(&docker_cli(), &tool, &[("tool", "tool v2 (patched)\n")]);
    docker(&["push", &tool]);
    let after = registry.digest(&registry.repo("upstream/tool"), "1");
    let out = publish("2");
    assert!(
        out.stdout.contains(&format!(
            "multi: published: content: /tool; build image moved: {tool} {before} -> {after}"
        )),
        "{}",
        out.stdout
    );
    let labels = registry.config(&registry.repo("multi"), "v1.0.0_2")["config"]["Labels"].clone();
    assert_eq!(labels["gov.cfpb.images.build-sources"], format!("{tool}@{after}").as_str());
    let out = publish("3");
    assert!(out.stdout.contains("multi: not pushed: unchanged since v1.0.0_2"), "{}", out.stdout);
    assert_eq!(unique_tags(&registry, "multi"), ["v1.0.0_1", "v1.0.0_2"]);
}

/// What was built decides "unchanged", not rules about inputs: a symlinked file and a symlinked
/// folder (Docker copies their targets), and a RUN whose output differs on every build, all
/// publish when what they put in the image changes; a weekly `--no-cache` rebuild of an image
/// that adds a user (whose /etc/shadow records the day of the build) comes out unchanged.
#[test]
fn unchanged_is_decided_by_the_files_and_configuration_built() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("rebuild-content");
    let base = support::busybox_base();
    dir.write("linktarget.txt", "l2\n");
    std::os::unix::fs::symlink("linktarget.txt", dir.path().join("onlylink.txt")).unwrap();
    dir.write("shared/conf/app.conf", "level=2\n");
    std::os::unix::fs::symlink("shared/conf", dir.path().join("conf")).unwrap();
    dir.write("Dockerfile-linked", &format!("FROM {base}\nCOPY onlylink.txt /\nCOPY conf/ /etc/app/\n"));
    dir.write(
        "Dockerfile-noisy",
        &format!("FROM {base}\nRUN cat /proc/sys/kernel/random/uuid > /build-id\n"),
    );
    // The day of the last password change is the build's; here a value of its own per build.
    dir.write(
        "Dockerfile-users",
        &format!(
            "FROM {base}\nRUN echo 'sbl:x:1000:1000::/home/sbl:/sbin/nologin' >> /etc/passwd \
             && echo \"sbl:!:$(busybox cut -c1-5 /proc/sys/kernel/random/uuid):0:99999:7:::\" >> /etc/shadow\n"
        ),
    );
    let mut toml = format!("registry = \"{}\"\n", registry.ns());
    for name in ["linked", "noisy", "users"] {
        toml.push_str(&format!(
            "\n[images.{name}]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-{name}\"\n"
        ));
    }
    let inv = dir.write("images.toml", &toml);
    dir.write(".gitignore", "sbom/\n");
    commit_fixture(dir.path());
    let publish = |id: &str, extra: &[&str]| {
        run(xtask().args(["publish", "--build-id", id]).args(extra).arg("--inventory").arg(&inv)).ok()
    };
    publish("1", &[]);

    // The weekly rebuild: every step runs again.
    let out = publish("2", &["--no-cache"]);
    assert!(out.stdout.contains("noisy: published: content: /build-id"), "{}", out.stdout);
    for name in ["linked", "users"] {
        assert!(
            out.stdout.contains(&format!("{name}: not pushed: unchanged since v1.0.0_1")),
            "{name}:\n{}",
            out.stdout
        );
    }
    assert_eq!(unique_tags(&registry, "users"), ["v1.0.0_1"]);
    assert_eq!(unique_tags(&registry, "noisy"), ["v1.0.0_1", "v1.0.0_2"]);

    // Only the targets of the links change: the input rules see no COPY source change, the
    // image does.
    dir.write("linktarget.txt", "l3-CHANGED\n");
    dir.write("shared/conf/app.conf", "level=3\n");
    git(dir.path(), &["commit", "-q", "-a", "-m", "targets"]);
    let out = publish("3", &[]);
    assert!(
        out.stdout.contains("linked: published: content: /etc/app/app.conf, /onlylink.txt"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("users: not pushed: unchanged since v1.0.0_1"), "{}", out.stdout);
    let (_, held) = registry_file(&registry, "linked", "v1.0.0", "onlylink.txt");
    assert_eq!(held, "l3-CHANGED\n");
}

/// The content of `file` in the image the registry holds as `name:tag`, read from its layers
/// with curl and tar rather than through the tool: (the layer it was in, the content).
fn registry_file(registry: &Registry, name: &str, tag: &str, file: &str) -> (String, String) {
    let base = format!("http://{}/v2/{}", registry.host(), registry.repo(name));
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args(["-fsSL", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"])
            .arg(format!("{base}/{path}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {path}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let manifest: serde_json::Value = serde_json::from_slice(&curl(&format!("manifests/{tag}"))).unwrap();
    for layer in manifest["layers"].as_array().unwrap().iter().rev() {
        let digest = layer["digest"].as_str().unwrap();
        let blob = curl(&format!("blobs/{digest}"));
        let mut tar = Command::new("tar")
            .args(["-xzO", file])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        tar.stdin.take().unwrap().write_all(&blob).unwrap();
        let out = tar.wait_with_output().unwrap();
        if out.status.success() {
            return (digest.to_string(), String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    panic!("{file} is in no layer of {name}:{tag}");
}

/// A package whose name carries a newline and a workflow command, in an image rebuilt with a
/// new version of it: ci-main in GitHub Actions names the change, and neither its log nor its
/// job summary lets the name start a line of its own or break the Markdown.
#[test]
fn a_package_name_cannot_steer_the_log_or_the_summary() {
    if !require_engine() {
        return;
    }
    let registry = Registry::start();
    let dir = TempDir::new("rebuild-evil");
    let base = support::busybox_base();
    let package = |version: &str| {
        format!(r#"{{"name":"dep\n::error title=X::pwned","version":"{version}","license":"MIT|<b>`x`"}}"#)
    };
    dir.write("package.json", &package("1.0.0"));
    dir.write(
        "Dockerfile-evil",
        &format!("FROM {base}\nCOPY package.json /app/node_modules/dep/package.json\n"),
    );
    let inv = dir.write(
        "images.toml",
        &format!(
            "registry = \"{}\"\n[images.evil]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile-evil\"\n",
            registry.ns()
        ),
    );
    dir.write(".gitignore", "sbom/\nsummary-*\noutput-*\nevent.json\n");
    commit_fixture(dir.path());
    let head = git(dir.path(), &["rev-parse", "HEAD"]);
    ci_main(&dir, &inv, "push", "1", &head).ok();
    dir.write("package.json", &package("2.0.0"));
    git(dir.path(), &["commit", "-q", "-a", "-m", "bump"]);
    let head = git(dir.path(), &["rev-parse", "HEAD"]);
    let out = ci_main(&dir, &inv, "push", "2", &head).ok();
    assert!(
        out.stdout.contains(r"packages: dep\n::error title=X::pwned (npm) 1.0.0 -> 2.0.0"),
        "{}",
        out.stdout
    );
    // Outside a stop-commands block no line may start a workflow command the tool did not write.
    let mut stopped: Option<String> = None;
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        if let Some(token) = line.strip_prefix("::stop-commands::") {
            stopped = Some(format!("::{token}::"));
        } else if stopped.as_deref() == Some(line) {
            stopped = None;
        } else {
            let command = line.trim_start().starts_with("::error title=X");
            assert!(stopped.is_some() || !command, "a workflow command from the image: {line}");
        }
    }
    let md = std::fs::read_to_string(dir.path().join("summary-2.md")).unwrap();
    let changed = md.split("### What changed").nth(1).unwrap_or_default();
    assert!(changed.contains(r"dep\n::error title=X::pwned (npm) 1.0.0 -> 2.0.0"), "{md}");
    assert!(!changed.lines().any(|l| l.trim_start().starts_with("::")), "{md}");
    assert!(!md.contains("<b>"), "{md}");
}

/// The package inventory reads the file system as the image has it: an apk database reached
/// through a merged /usr (`/lib -> usr/lib`), an npm manifest hard-linked from a package
/// manager's store; and an Alpine image without an apk database is said, not listed empty.
#[test]
fn packages_are_read_where_the_image_has_them() {
    if !require_engine() {
        return;
    }
    let names = OwnNames::new();
    let dir = TempDir::new("packages-fs");
    let base = support::busybox_base();
    dir.write(
        "Dockerfile",
        &format!(
            "FROM {base}\n\
             RUN busybox mkdir -p /etc /usr/lib/apk/db /store/v3/ab /app/node_modules/ms \
             && echo ID=alpine > /etc/os-release \
             && printf 'P:musl\\nV:1.2.5-r10\\nA:x86_64\\nL:MIT\\no:musl\\n\\n' > /usr/lib/apk/db/installed \
             && busybox ln -s usr/lib /lib \
             && echo '{{\"name\":\"ms\",\"version\":\"2.1.3\",\"license\":\" \"}}' > /store/v3/ab/cdef \
             && busybox ln /store/v3/ab/cdef /app/node_modules/ms/package.json\n"
        ),
    );
    let image = format!("{}:1", names.image("packages-fs"));
    docker(&["build", "-q", "-t", &image, dir.path().to_str().unwrap()]);
    let inv = dir.write(
        "images.toml",
        &format!(
            "registry = \"127.0.0.1:9/{}\"\n[images.fs]\nversion = \"1.0.0\"\ndockerfile = \"Dockerfile\"\n",
            names.token()
        ),
    );
    let out = run(xtask().args(["packages", "fs", "--reference", &image, "--inventory"]).arg(&inv)).ok();
    assert!(out.stdout.contains("apk    musl 1.2.5-r10 MIT"), "{}", out.stdout);
    assert!(out.stdout.contains("npm    ms"), "{}", out.stdout);

    // The same Alpine image without its database: said, not 0 packages in silence.
    let bare = format!("{}:2", names.image("packages-fs"));
    dir.write("Dockerfile", &format!("FROM {image}\nRUN busybox rm -rf /usr/lib/apk\n"));
    docker(&["build", "-q", "-t", &bare, dir.path().to_str().unwrap()]);
    let out = run(xtask().args(["packages", "fs", "--reference", &bare, "--inventory"]).arg(&inv)).ok();
    assert!(
        out.stderr
            .contains("its os-release says alpine, but it holds no apk database (/lib/apk/db/installed)"),
        "{}",
        out.stderr
    );
}
