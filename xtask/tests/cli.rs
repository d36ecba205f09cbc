//! The built binary against a fake docker that records argv and stdin: exact commands, order,
//! and that a token never shows anywhere but on docker's stdin.

mod support;

use support::{run, xtask, Fixture};

const TOKEN: &str = "ghp_s3cr3t_TOKEN_value";

#[test]
fn publish_builds_all_then_tags_pushes_and_reads_back_unique_version_latest() {
    let f = Fixture::new("cli");
    let out = f.run(&["publish", "--build-id", "42.2", "--jobs", "1"], &[]).ok();
    let reg = f.reg();
    let commands = f.commands();
    // Reading images (the base's digest, each built image's files) runs beside the builds.
    let reads = |c: &&String| {
        ["pull ", "create ", "export ", "rm ", "image inspect "].iter().any(|k| c.starts_with(k))
    };
    let kinds: Vec<&str> =
        commands.iter().filter(|c| !reads(c)).map(|c| c.split(' ').next().unwrap()).collect();
    let first_build = commands.iter().position(|c| c.starts_with("build")).unwrap();
    assert!(commands[..first_build].iter().any(|c| c == "pull base:1"), "{commands:#?}");
    assert_eq!(commands.iter().filter(|c| c.starts_with("export ")).count(), 3, "{commands:#?}");
    // Builds under run-private names, then per image: the unique tag made and pushed, then the
    // version tag and `latest` made locally and given the same manifest in the registry (quiet,
    // push = false, is tagged only), then the run-private names go.
    let expected: Vec<&str> = ["build"; 3]
        .into_iter()
        .chain(["tag", "push", "tag", "tag"])
        .chain(["tag", "push", "tag", "tag"])
        .chain(["tag"; 3])
        .chain(["image"; 3])
        .collect();
    assert_eq!(kinds, expected, "{commands:#?}");
    let d = f.dir.path().display();
    let builds = f.docker.calls_of("build");
    let run_tag = builds[0][builds[0].iter().position(|a| a == "--tag").unwrap() + 1].clone();
    let token = run_tag.rsplit_once(":run-").expect("a run-private name").1.to_string();
    let child = builds.iter().find(|b| b.contains(&format!("{d}/Dockerfile-child"))).unwrap();
    assert_eq!(&child[..4], ["build", "--force-rm", "--file", &format!("{d}/Dockerfile-child")]);
    assert!(child.contains(&format!("BASE_IMAGE={reg}/base:run-{token}")), "{child:?}");
    assert!(child.contains(&"org.opencontainers.image.version=1.0.0".to_string()));
    assert!(child.contains(&format!("org.opencontainers.image.base.name={reg}/base:v1.0.0")), "{child:?}");
    assert_eq!(child.last().unwrap(), &d.to_string());
    assert_eq!(f.pushes(), [format!("push {reg}/base:v1.0.0_42.2"), format!("push {reg}/child:v1.0.0_42.2")]);
    let puts: Vec<String> = f.registry.requests().into_iter().filter(|r| r.starts_with("PUT ")).collect();
    assert_eq!(
        puts,
        [
            "PUT /v2/ns/base/manifests/v1.0.0",
            "PUT /v2/ns/base/manifests/latest",
            "PUT /v2/ns/child/manifests/v1.0.0",
            "PUT /v2/ns/child/manifests/latest"
        ]
    );
    assert!(
        commands.contains(&format!("tag {reg}/base:run-{token} {reg}/base:v1.0.0_42.2")),
        "{commands:#?}"
    );
    assert!(commands.contains(&format!("image rm {reg}/child:run-{token}")), "{commands:#?}");
    // The unique tag was asked about before the builds, again right before its push, and after
    // it (its manifest, read back, is what the other two tags are given).
    assert_eq!(f.registry.manifest_requests("v1.0.0_42.2"), 2 * (1 + 1 + 1), "{:#?}", f.registry.requests());
    // The version tag: the comparison's question (nothing published yet), its PUT, its read-back.
    assert_eq!(f.registry.manifest_requests("v1.0.0"), 2 * 3, "{:#?}", f.registry.requests());
    // `latest`: its PUT and its read-back.
    assert_eq!(f.registry.manifest_requests("latest"), 2 * 2);
    // The report shows the digests the registry holds.
    let pushed = std::fs::read_to_string(f.docker.registry_file()).unwrap();
    for line in pushed.lines() {
        let digest = line.split_whitespace().nth(2).unwrap();
        assert!(out.stdout.contains(digest), "{digest} not reported:\n{}", out.stdout);
    }
    assert!(!f.docker.raw_calls().contains("--all-tags"));
}

#[test]
fn a_failed_build_pushes_nothing_and_says_why() {
    let f = Fixture::new("cli");
    let args = ["publish", "--build-id", "1", "--jobs", "1"];
    let out = f.run(&args, &[("FAKE_FAIL_BUILD", "Dockerfile-child")]).fails();
    assert!(f.pushes().is_empty() && f.docker.calls_of("tag").is_empty());
    assert!(
        out.stderr.contains("build of child failed: ")
            && out.stderr.contains("build exited with exit status: 1: ")
            && out
                .stderr
                .contains("The command '/bin/sh -c false' returned a non-zero code: 1\nNothing was pushed"),
        "the error carries docker's cause:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Nothing was pushed. Built: base. Not built: quiet (stopped after the failure)"),
        "{}",
        out.stderr
    );
}

/// Publishing a child publishes the parent it was built on (when it changed; here it was never
/// published), and says so.
#[test]
fn publishing_a_child_says_that_its_parent_comes_along() {
    let f = Fixture::new("cli");
    let out = f.run(&["publish", "child", "--build-id", "1"], &[]).ok();
    assert!(
        out.stderr.contains(
            "base is built too, and published if it changed: child is built on it, and is published on the base \
             the registry holds"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(f.pushes().len(), 2, "the unique tags; the other tags are given their manifest");
}

/// A child whose FROM names a tag of its parent that the run does not make is refused before
/// anything builds.
#[test]
fn a_from_on_a_tag_the_run_does_not_make_is_refused() {
    let f = Fixture::new("cli");
    f.dir.write("Dockerfile-child", &format!("FROM {}/base:v0.9.0\nRUN true\n", f.reg()));
    let out = f.run(&["build", "child"], &[]).fails();
    assert!(
        out.stderr.contains("Dockerfile-child:1: names ")
            && out.stderr.contains("which this run does not produce"),
        "{}",
        out.stderr
    );
    assert!(f.docker.calls_of("build").is_empty());
}

#[test]
fn an_existing_unique_tag_stops_publish_before_any_build() {
    let f = Fixture::new("cli");
    f.registry.answer("/manifests/v1.0.0_1", 200, "", 0);
    let out = f.run(&["publish", "--build-id", "1"], &[]).fails();
    // Every unique tag that exists is named, not the first alone.
    let reg = f.reg();
    assert!(
        out.stderr.contains(&format!("2 unique tags already exist: {reg}/base:v1.0.0_1 (sha256:")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!("{reg}/child:v1.0.0_1 (sha256:")), "{}", out.stderr);
    assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
    let out = f.run(&["publish", "base", "--build-id", "1"], &[]).fails();
    assert!(out.stderr.contains(&format!("{reg}/base:v1.0.0_1 already exists (sha256:")), "{}", out.stderr);
}

#[test]
fn every_image_is_asked_about_not_only_the_first() {
    let f = Fixture::new("cli");
    f.registry.answer("child/manifests/v1.0.0_1", 200, "", 0);
    let out = f.run(&["publish", "--build-id", "1"], &[]).fails();
    assert!(out.stderr.contains(&format!("{}/child:v1.0.0_1 already exists", f.reg())), "{}", out.stderr);
    assert_eq!(f.registry.manifest_requests("v1.0.0_1"), 2);
    assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
}

#[test]
fn no_registry_access_names_the_login_command() {
    let f = Fixture::new("cli");
    f.registry.answer("/manifests/", 401, "UNAUTHORIZED", 0);
    let out = f.run(&["publish", "--build-id", "1"], &[]).fails();
    assert!(
        out.stderr.contains("none are stored for it") && out.stderr.contains("cargo xtask login"),
        "{}",
        out.stderr
    );
    assert!(f.docker.calls_of("build").is_empty());
}

/// "Could not tell" is never "absent": a 404 that is not the registry's MANIFEST_UNKNOWN (a
/// proxy's page, say) and a 400 stop the run before anything builds.
#[test]
fn an_answer_that_is_neither_present_nor_absent_stops_the_run() {
    for (status, code) in [(404, "PAGE_NOT_FOUND"), (400, "BAD_REQUEST")] {
        let f = Fixture::new("cli");
        f.registry.answer("/manifests/", status, code, 0);
        let out = f.run(&["publish", "--build-id", "1"], &[]).fails();
        assert!(
            out.stderr.contains("could not tell whether") && out.stderr.contains(&status.to_string()),
            "{}",
            out.stderr
        );
        assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty(), "{status}");
    }
}

#[test]
fn build_uses_local_tags_and_builds_parents_of_named_images() {
    let f = Fixture::new("cli");
    let reg = f.reg();
    f.run(&["build", "child", "--pull", "--no-cache"], &[]).ok();
    // --pull pulls the upstream base before anything builds, so that the digest its label
    // records is the one the build uses.
    let commands = f.commands();
    let first_build = commands.iter().position(|c| c.starts_with("build ")).unwrap();
    assert_eq!(commands.iter().position(|c| c == "pull base:1"), Some(0), "{commands:#?}");
    assert!(commands[first_build].contains("org.opencontainers.image.base.digest=sha256:"), "{commands:#?}");
    let builds = f.docker.calls_of("build");
    assert_eq!(builds.len(), 2);
    assert_eq!(&builds[0][..3], ["build", "--force-rm", "--no-cache"]);
    let mut tags: Vec<String> = f.docker.calls_of("tag").iter().map(|c| c[2].clone()).collect();
    tags.sort();
    assert_eq!(tags, [format!("{reg}/base:local-v1.0.0"), format!("{reg}/child:local-v1.0.0")]);
    assert!(
        builds[1].iter().any(|a| a.starts_with(&format!("BASE_IMAGE={reg}/base:run-"))),
        "{:?}",
        builds[1]
    );
    assert!(f.pushes().is_empty() && f.registry.requests().is_empty());
}

#[test]
fn dry_run_prints_exactly_the_steps_and_runs_none() {
    let f = Fixture::new("cli");
    let args = ["publish", "base", "--build-id", "3", "--dry-run", "--registry", "127.0.0.1:5000/x"];
    let out = f.run(&args, &[]).ok();
    // Only the read-only questions about the client (which builder it offers).
    assert!(f.docker.actions().is_empty(), "dry-run ran {:?}", f.docker.actions());
    assert!(f.registry.requests().is_empty());
    let lines: Vec<&str> = out.stdout.lines().collect();
    let program = f.docker.program().display().to_string();
    assert_eq!(lines.len(), 17, "{}", out.stdout);
    assert_eq!(lines[0], "# registry 127.0.0.1:5000: GET /v2/x/base/manifests/v1.0.0_3 (must be absent: a unique tag is never overwritten)");
    assert_eq!(
        lines[1],
        format!("# base base:1: {program} image inspect (pulled first when missing): its digest is a label")
    );
    assert!(
        lines[2].starts_with(&format!("DOCKER_BUILDKIT=0 {program} build --force-rm --file ")),
        "{}",
        lines[2]
    );
    assert!(
        lines[2].contains(
            " --label org.opencontainers.image.base.name=base:1 --label 'org.opencontainers.image.base.digest=<digest of base:1>' "
        ),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("# verify base (127.0.0.1:5000/x/base:run-"), "{}", lines[3]);
    assert!(
        lines[4].starts_with("# compare base with 127.0.0.1:5000/x/base:v1.0.0: ")
            && lines[4].ends_with("pushed only if it changed"),
        "{}",
        lines[4]
    );
    assert!(
        lines[5].starts_with(
            "# registry 127.0.0.1:5000: GET /v2/x/base/manifests/v1.0.0_3 (must still be absent"
        ),
        "{}",
        lines[5]
    );
    assert!(lines[6].starts_with(&format!("{program} tag 127.0.0.1:5000/x/base:run-")), "{}", lines[6]);
    assert!(lines[6].ends_with(" 127.0.0.1:5000/x/base:v1.0.0_3"), "{}", lines[6]);
    assert_eq!(lines[7], format!("{program} push 127.0.0.1:5000/x/base:v1.0.0_3"));
    assert!(lines[8].contains("GET /v2/x/base/manifests/v1.0.0_3 (read back"), "{}", lines[8]);
    // A later tag is given its manifest and read back before it is made locally.
    assert_eq!(
        lines[12],
        "# registry 127.0.0.1:5000: PUT /v2/x/base/manifests/latest (the manifest of v1.0.0_3: the same digest)"
    );
    assert!(lines[13].contains("GET /v2/x/base/manifests/latest (read back"), "{}", lines[13]);
    assert!(
        lines[14].starts_with(&format!("{program} tag ")) && lines[14].ends_with(":latest"),
        "{}",
        lines[14]
    );
    assert!(
        lines[15].starts_with(&format!("{program} image rm 127.0.0.1:5000/x/base:run-")),
        "{}",
        lines[15]
    );
    assert!(
        lines[16].starts_with("# write ") && lines[16].ends_with("base.spdx.json: the SPDX 2.3 SBOM of base"),
        "{}",
        lines[16]
    );
    // Notes go to stderr, never between the steps.
    assert!(out.stderr.contains("legacy builder"), "{}", out.stderr);
    assert!(
        out.stdout
            .lines()
            .all(|l| l.starts_with('#') || l.starts_with(&program) || l.starts_with("DOCKER_BUILDKIT=0 ")),
        "{}",
        out.stdout
    );
}

/// `--build-id --dry-run` once took `--dry-run` as the build id and published for real.
#[test]
fn an_option_is_never_taken_as_a_value() {
    let f = Fixture::new("cli");
    for args in [
        vec!["publish", "--build-id", "--dry-run"],
        vec!["publish", "--build-id", "--inventory", "x.toml"],
        vec!["publish", "base", "--registry", "--dry-run", "--build-id", "1"],
    ] {
        let out = f.run(&args, &[]).fails();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            out.stderr.contains("needs a value") && out.stderr.contains("is an option"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = f.run(&["publish", "--build-id=-x"], &[]).fails();
    assert!(out.stderr.contains("must start with a letter or digit"), "{}", out.stderr);
    assert!(f.docker.calls().is_empty() && f.registry.requests().is_empty());
}

/// A bare file name for --inventory means the file in the current folder, whose paths are
/// relative to that folder.
#[test]
fn an_inventory_named_by_its_bare_file_name_works() {
    let f = Fixture::new("cli");
    let mut cmd = support::xtask();
    cmd.current_dir(f.dir.path())
        .args(["build", "base", "--dry-run", "--inventory", "images.toml"])
        .env("DOCKER", f.docker.program());
    let out = run(&mut cmd).ok();
    let build = out.stdout.lines().find(|l| l.contains(" build ")).unwrap();
    assert!(build.contains("--file ./Dockerfile-base") && build.ends_with(" ."), "{build}");
    let mut cmd = support::xtask();
    cmd.current_dir(f.dir.path()).args(["check", "--inventory", "images.toml"]);
    run(&mut cmd).ok();
}

#[test]
fn a_registry_with_a_scheme_says_to_drop_it() {
    let f = Fixture::new("cli");
    let out = f.run(&["build", "--registry", "http://127.0.0.1:5000/x"], &[]).fails();
    assert!(out.stderr.contains("drop `http://` and write `127.0.0.1:5000/x`"), "{}", out.stderr);
    assert!(f.docker.calls().is_empty());
}

#[test]
fn a_bad_setting_in_the_environment_is_an_error_naming_it() {
    let f = Fixture::new("cli");
    for (variable, value) in
        [("XTASK_BUILD_TIMEOUT", "abc"), ("XTASK_RETRIES", "-1"), ("XTASK_PUSH_TIMEOUT", "1h")]
    {
        let out = f.run(&["build"], &[(variable, value)]).fails();
        assert!(
            out.stderr.contains(&format!("{variable}=`{value}` is not a whole number")),
            "{}",
            out.stderr
        );
    }
    assert!(f.docker.calls().is_empty());
}

#[test]
fn login_passes_the_token_on_stdin_only() {
    let f = Fixture::new("cli");
    let out = f.run(&["login", "--username", "octo"], &[("CR_PAT", TOKEN)]).ok();
    let host = f.registry.host();
    assert_eq!(f.docker.calls(), [["login", host.as_str(), "--username", "octo", "--password-stdin"]]);
    assert_eq!(f.docker.stdin(), TOKEN);
    assert!(!f.docker.raw_calls().contains(TOKEN));
    assert_eq!(f.docker.leaked(), "", "the token reached docker's environment");
    assert!(!out.all().contains(TOKEN));

    // The dry run shows the command, not the token.
    let out = f
        .run(&["login", "--dry-run"], &[("DOCKER", "docker"), ("GITHUB_ACTOR", "robot"), ("CR_PAT", TOKEN)])
        .ok();
    assert_eq!(out.stdout, format!("docker login {host} --username robot --password-stdin\n"));
}

#[test]
fn login_without_token_or_user_names_what_is_missing() {
    let f = Fixture::new("cli");
    let out = f.run(&["login", "--username", "octo"], &[]).fails();
    assert!(out.stderr.contains("CR_PAT is not set"), "{}", out.stderr);
    let out = f.run(&["login"], &[("CR_PAT", TOKEN)]).fails();
    assert!(out.stderr.contains("--username USER"), "{}", out.stderr);
    assert!(!out.all().contains(TOKEN));
    assert!(f.docker.calls().is_empty());
}

#[test]
fn publish_without_build_id_and_unknown_images_are_errors() {
    let f = Fixture::new("cli");
    let out = f.run(&["publish"], &[]).fails();
    assert!(out.stderr.contains("pass --build-id ID"), "{}", out.stderr);
    let out = f.run(&["build", "nope"], &[]).fails();
    assert!(
        out.stderr.contains("unknown image `nope`") && out.stderr.contains("base, child, quiet"),
        "{}",
        out.stderr
    );
    let out = f.run(&["tags", "base", "--build-id", "a b"], &[]).fails();
    assert!(out.stderr.contains("--build-id"), "{}", out.stderr);
    assert!(f.docker.calls().is_empty());
}

#[test]
fn build_id_comes_from_github_actions() {
    let f = Fixture::new("cli");
    let env = [("GITHUB_ACTIONS", "true"), ("GITHUB_RUN_NUMBER", "42"), ("GITHUB_RUN_ATTEMPT", "2")];
    let out = f.run(&["tags", "child"], &env).ok();
    let reg = f.reg();
    assert_eq!(out.stdout, format!("{reg}/child:v1.0.0_42.2\n{reg}/child:v1.0.0\n{reg}/child:latest\n"));
}

#[test]
fn missing_docker_is_a_clear_error() {
    let f = Fixture::new("cli");
    let out = f.run(&["build"], &[("DOCKER", "/nonexistent/docker")]).fails();
    assert!(out.stderr.contains("cannot run `/nonexistent/docker`: not found"), "{}", out.stderr);
}

#[test]
fn bad_inventory_is_one_error_naming_file_key_and_line() {
    let f = Fixture::new("cli");
    let text = std::fs::read_to_string(&f.inventory).unwrap().replacen(
        "version = \"1.0.0\"",
        "version = \"1.0\"",
        1,
    );
    std::fs::write(&f.inventory, text).unwrap();
    let out = f.run(&["check"], &[]).fails();
    assert!(
        out.stderr.contains(&format!("{}:9: images.base.version", f.inventory.display())),
        "{}",
        out.stderr
    );
    let out = run(xtask().args(["list", "--inventory"]).arg(f.dir.path().join("missing.toml"))).fails();
    assert!(out.stderr.contains("cannot read the inventory"), "{}", out.stderr);
}

/// The repository's own inventory, Dockerfiles and workflows pass `check` (and hadolint, where
/// it is installed, as in CI).
#[test]
fn the_repository_passes_check() {
    let out = run(xtask().arg("check")).ok();
    assert!(out.stdout.contains("5 images, all checks passed"), "{}", out.stdout);
    // In CI the Dockerfiles are linted too: check must not have skipped hadolint.
    let skipped = out.all().contains("hadolint is not installed");
    if std::env::var("CI").is_ok() {
        assert!(!skipped, "CI has no hadolint, so check did not lint the Dockerfiles:\n{}", out.all());
    } else if skipped {
        eprintln!("NOTE: hadolint is not installed here, so the Dockerfiles were not linted");
    }
}

#[test]
fn help_explains_every_command_and_option() {
    let out = run(xtask().arg("--help")).ok();
    for word in ["list", "check", "tags", "build", "publish", "login", "--inventory", "--registry"] {
        assert!(out.stdout.contains(word), "--help lacks {word}:\n{}", out.stdout);
    }
    let out = run(xtask().args(["publish", "--help"])).ok();
    for word in ["--build-id", "--pull", "--no-cache", "--dry-run"] {
        assert!(out.stdout.contains(word), "publish --help lacks {word}:\n{}", out.stdout);
    }
}

#[test]
fn list_json_is_valid_and_complete() {
    let f = Fixture::new("cli");
    let out = f.run(&["list", "--json"], &[]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = json.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["base", "child", "quiet"]);
    assert_eq!(json[1]["depends_on"][0], "base");
    assert_eq!(json[2]["push"], false);
    assert_eq!(json[0]["tags"][1], "v1.0.0");
}

/// `base_support_ends = <date>` added to the base image of the fixture's inventory.
fn with_support_end(f: &Fixture, days_from_now: i64) -> String {
    let now = std::time::SystemTime::now();
    let shift = std::time::Duration::from_secs(days_from_now.unsigned_abs() * 24 * 60 * 60);
    let day = if days_from_now < 0 { now - shift } else { now + shift };
    let date = humantime::format_rfc3339(day).to_string()[..10].to_string();
    let text = std::fs::read_to_string(&f.inventory).unwrap();
    let text = text.replace(
        "dockerfile = \"Dockerfile-base\"\n",
        &format!("dockerfile = \"Dockerfile-base\"\nbase_support_ends = {date}\n"),
    );
    std::fs::write(&f.inventory, text).unwrap();
    date
}

#[test]
fn a_base_near_its_end_of_support_warns_and_one_past_it_fails() {
    let f = Fixture::new("cli");
    let date = with_support_end(&f, 30);
    let out = f.run(&["list"], &[]).ok();
    assert!(out.stdout.contains("BASE SUPPORT ENDS") && out.stdout.contains(&date), "{}", out.stdout);
    let out = f.run(&["check"], &[]).ok();
    assert!(
        out.stderr.contains(&format!(
            "warning: images.base.base_support_ends: support for its base ends on {date} (in 30 days)"
        )),
        "{}",
        out.stderr
    );

    let f = Fixture::new("cli");
    let date = with_support_end(&f, -2);
    let out = f.run(&["check"], &[]).fails();
    assert!(
        out.stderr.contains(&format!("support for its base ended on {date} (2 days ago)")),
        "{}",
        out.stderr
    );
    let out = f.run(&["ci-main", "--build-id", "1"], &[]).fails();
    assert!(
        out.stderr.contains("ended on") && out.stderr.contains("Nothing was built or pushed"),
        "{}",
        out.stderr
    );
    assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
}

#[test]
fn a_support_end_that_is_not_a_date_names_its_key() {
    for (written, said) in [
        ("\"soon\"", "\"soon\" (a string) is not a date"),
        ("2027-11-01T00:00:00Z", "`2027-11-01T00:00:00Z` is not a date"),
    ] {
        let f = Fixture::new("cli");
        let text = std::fs::read_to_string(&f.inventory).unwrap();
        let text = text.replace(
            "dockerfile = \"Dockerfile-base\"\n",
            &format!("dockerfile = \"Dockerfile-base\"\nbase_support_ends = {written}\n"),
        );
        std::fs::write(&f.inventory, text).unwrap();
        let out = f.run(&["list"], &[]).fails();
        assert!(
            out.stderr.contains(&format!("images.toml:11: images.base.base_support_ends: {said}")),
            "{}",
            out.stderr
        );
    }
}

/// `packages` reads the image's files; a database the tool cannot read is an error that names
/// the file, and an RPM database is read by the image's own rpm when this machine has none
/// (said, with why).
#[test]
fn packages_lists_what_the_image_holds_and_names_a_damaged_database() {
    let f = Fixture::new("cli");
    f.run(&["build", "base"], &[]).ok();
    let out = f.run(&["packages", "base"], &[]).ok();
    assert_eq!(out.stdout.trim(), "apk    musl 1.2.5-r10 MIT");
    let out = f.run(&["packages", "base", "--json"], &[]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["distro"], "alpine");
    assert_eq!(json["packages"][0]["name"], "musl");

    let out = f.run(&["packages", "base"], &[("FAKE_APK_DATABASE", "P:musl\nV:1.2.5-r10\nA:x86_")]).fails();
    assert!(
        out.stderr
            .contains("/lib/apk/db/installed: the file ends in the middle of a line: it looks truncated"),
        "{}",
        out.stderr
    );

    // A PATH without rpm: what the fake docker and the tool run, and nothing else.
    let bin = f.dir.path().join("bin-without-rpm");
    std::fs::create_dir_all(&bin).unwrap();
    let tools =
        ["sh", "dirname", "awk", "sha256sum", "cut", "date", "mkdir", "tar", "cat", "sleep", "curl", "git"];
    for tool in tools {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file());
        if let Some(path) = found {
            std::os::unix::fs::symlink(path, bin.join(tool)).unwrap();
        }
    }
    let query = "bash\t0\t4.4.20\t4.el8_6\tx86_64\tGPLv3+\tbash-4.4.20-4.el8_6.src.rpm\n";
    let env = [
        ("FAKE_RPMDB", "not a database this test can make"),
        ("FAKE_RPM_QUERY", query),
        ("PATH", bin.to_str().unwrap()),
    ];
    let out = f.run(&["packages", "base"], &env).ok();
    assert!(out.stdout.contains("rpm    bash 4.4.20-4.el8_6 GPLv3+"), "{}", out.stdout);
    assert!(
        out.stderr.contains("read by the image's own rpm (`docker run`): this machine has no rpm program"),
        "{}",
        out.stderr
    );
    let run = f.docker.calls_of("run");
    assert_eq!(&run[0][..8], ["run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "rpm"]);
    let mut env = env.to_vec();
    env.push(("FAKE_RPM_MISSING", "1"));
    let out = f.run(&["packages", "base"], &env).fails();
    assert!(
        out.stderr.contains("the image's own rpm failed: docker: Error response from daemon:")
            && out.stderr.contains(r#"exec: "rpm": executable file not found"#),
        "{}",
        out.stderr
    );
}

/// A folder the SBOMs cannot be written to stops the run before anything builds.
#[test]
fn an_sbom_folder_that_cannot_be_written_stops_the_run_first() {
    let f = Fixture::new("cli");
    let file = f.dir.write("not-a-folder", "");
    let out =
        f.run(&["publish", "--build-id", "1", "--sbom-dir", &format!("{}/sub", file.display())], &[]).fails();
    assert!(
        out.stderr.contains("--sbom-dir: cannot write SBOMs to ") && out.stderr.contains("/not-a-folder/sub"),
        "{}",
        out.stderr
    );
    assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
    // An empty folder name is a mistake, not the current folder; in a dry run too.
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["publish", "--build-id", "1", "--sbom-dir", ""];
        args.extend(extra);
        let out = f.run(&args, &[]).fails();
        assert!(out.stderr.contains("--sbom-dir is empty: name the folder"), "{}", out.stderr);
    }
    assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
}

/// `check` of an inventory outside any repository's images/ folder names the folder it looked
/// for workflows in as it is, without `./..`.
#[test]
fn check_names_the_workflow_folder_it_looked_in() {
    let f = Fixture::new("cli");
    let out = f.run(&["check"], &[]).ok();
    let parent = f.dir.path().parent().unwrap().display().to_string();
    assert!(
        out.stdout.contains(&format!("no workflows at {parent}/.github/workflows: not checked")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("/.."), "{}", out.stdout);
}

/// A pushed image built on one that is never pushed is published every run; check says so.
#[test]
fn check_warns_about_a_pushed_image_on_an_unpushed_parent() {
    let f = Fixture::new("cli");
    let text = std::fs::read_to_string(&f.inventory).unwrap();
    let text = text.replacen("push = true", "push = false", 1);
    std::fs::write(&f.inventory, text).unwrap();
    let out = f.run(&["check"], &[]).ok();
    assert!(
        out.stderr.contains("warning: images.child: built on base, which has push = false, so it is published again on every run"),
        "{}",
        out.stderr
    );
}

/// publish (a hand-run, unlike ci-main) goes on with an end-of-life base, but says so.
#[test]
fn publish_warns_about_a_base_out_of_support() {
    let f = Fixture::new("cli");
    let date = with_support_end(&f, -10);
    let out = f.run(&["publish", "--build-id", "1"], &[]).ok();
    assert!(
        out.stderr.contains(&format!(
            "warning: images.base.base_support_ends: support for its base ended on {date}"
        )),
        "{}",
        out.stderr
    );
}

/// Outside Actions the revision label is git's HEAD, except for an image whose inputs have
/// uncommitted changes: a later publish must not take HEAD for what it was built from.
#[test]
fn an_image_built_from_uncommitted_changes_gets_no_revision_label() {
    let f = Fixture::new("cli");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(f.dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "fixture"]);
    let head = git(&["rev-parse", "HEAD"]);
    let dockerfile = f.dir.path().join("Dockerfile-quiet");
    let text = std::fs::read_to_string(&dockerfile).unwrap() + "RUN echo experiment\n";
    std::fs::write(&dockerfile, text).unwrap();
    let out = f.run(&["publish", "--build-id", "1"], &[]).ok();
    assert!(
        out.stderr.contains("uncommitted changes (or files git ignores) touch the inputs of quiet: they get no revision label"),
        "{}",
        out.stderr
    );
    let revision = format!("org.opencontainers.image.revision={head}");
    for build in f.docker.calls_of("build") {
        let quiet = build.iter().any(|a| a.ends_with("/Dockerfile-quiet"));
        assert_eq!(build.contains(&revision), !quiet, "{build:?}");
    }

    // In Actions too the label is what git has checked out, and a GITHUB_SHA that says
    // otherwise is warned about.
    git(&["checkout", "-q", "--", "Dockerfile-quiet"]);
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let before = f.docker.calls_of("build").len();
    let out = f.run(&["publish", "--build-id", "2"], &[("GITHUB_SHA", sha)]).ok();
    assert!(
        out.stderr.contains(&format!("GITHUB_SHA is {sha} but git has {head} checked out")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("uncommitted"), "{}", out.stderr);
    assert!(f.docker.calls_of("build")[before..].iter().all(|b| b.contains(&revision)));
}

/// Package names, versions and licenses are the image's text: a name that carries a newline and
/// a workflow command stays one line of the `packages` table, and in GitHub Actions neither the
/// log nor the job summary lets it start a line of its own.
#[test]
fn text_from_an_image_cannot_steer_the_output() {
    let f = Fixture::new("cli");
    let evil =
        r#"{"name":"dep\n::error title=X::pwned","version":"1.0.0\n::add-mask::x","license":"MIT|<b>`x`"}"#;
    let env = [("FAKE_NPM_PACKAGE", evil)];
    f.run(&["build", "base"], &env).ok();
    let out = f.run(&["packages", "base"], &env).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one package a line:\n{}", out.stdout);
    assert_eq!(lines[1], "npm    dep\\n::error title=X::pwned 1.0.0\\n::add-mask::x MIT|<b>`x`");

    // In GitHub Actions, the same table: the name cannot start a line, so no workflow command.
    let out = f.run(&["packages", "base"], &[env[0], ("GITHUB_ACTIONS", "true")]).ok();
    assert!(!out.all().lines().any(|l| l.trim_start().starts_with("::error")), "{}", out.all());
}

/// A Dockerfile that cannot be read (here: not UTF-8, which root cannot be kept from by file
/// modes) stops only what needs it: listing works, and so does building the other images.
#[test]
fn an_unreadable_dockerfile_stops_only_what_needs_it() {
    let f = Fixture::new("cli");
    std::fs::write(f.dir.path().join("Dockerfile-child"), b"FROM scratch\n# caf\xe9\n").unwrap();
    let listed = f.run(&["list"], &[]).ok();
    assert!(listed.stdout.contains("child"), "{}", listed.stdout);
    f.run(&["build", "base", "--dry-run"], &[]).ok();
    let out = f.run(&["build", "child", "--dry-run"], &[]).fails();
    assert!(
        out.stderr.contains("Dockerfile-child: cannot read: stream did not contain valid UTF-8"),
        "{}",
        out.stderr
    );
    let checked = f.run(&["check"], &[]).fails();
    assert!(checked.stderr.contains("Dockerfile-child: cannot read"), "{}", checked.stderr);
    assert!(f.docker.calls_of("build").is_empty());
}

/// `check` plans as build would: a child asking for a platform its parent is not built for is
/// a problem there too, and a platform OCI does not name gets the name to write.
#[test]
fn check_refuses_what_build_would_refuse_for_platforms() {
    let f = Fixture::new("cli");
    let text = std::fs::read_to_string(&f.inventory).unwrap();
    let child = text.replacen(
        "[images.child]\n",
        "[images.child]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
        1,
    );
    assert_ne!(child, text, "the fixture has a child");
    std::fs::write(&f.inventory, &child).unwrap();
    let out = f.run(&["check"], &[]).fails();
    assert!(
        out.stderr.contains("child is built for linux/amd64, which its parent base is not built for"),
        "{}",
        out.stderr
    );
    std::fs::write(
        &f.inventory,
        text.replacen("[images.child]\n", "[images.child]\nplatforms = [\"linux/aarch64\"]\n", 1),
    )
    .unwrap();
    let out = f.run(&["check"], &[]).fails();
    assert!(
        out.stderr.contains("`linux/aarch64` is not an architecture OCI names: write linux/arm64"),
        "{}",
        out.stderr
    );
}
