//! The built binary against a fake docker that records argv and stdin: exact commands, order,
//! and that a token never shows anywhere but on docker's stdin.

mod support;

use support::{run, xtask, Fixture};

const TOKEN: &str = "ghp_s3cr3t_TOKEN_value";

#[test]
fn publish_builds_all_then_tags_then_pushes_unique_version_latest() {
    let f = Fixture::new("cli");
    f.run(&["publish", "--build-id", "42.2", "--jobs", "1"], &[]).ok();
    let calls = f.docker.actions();
    let kinds: Vec<&str> = calls.iter().map(|c| c[0].as_str()).collect();
    // Preflight (the two pushed images' unique tags), builds, tags, pushes.
    let expected = ["manifest", "manifest", "build", "build", "build"]
        .into_iter()
        .chain(["tag"; 6])
        .chain(["push"; 6])
        .collect::<Vec<_>>();
    assert_eq!(kinds, expected);
    let d = f.dir.path().display();
    let builds = f.docker.calls_of("build");
    assert_eq!(
        &builds[1][..5],
        ["build", "--file", &format!("{d}/Dockerfile-child"), "--tag", "reg.example/ns/child:v1.0.0_42.2"]
    );
    assert!(builds[1].contains(&"BASE_IMAGE=reg.example/ns/base:v1.0.0_42.2".to_string()), "{:?}", builds[1]);
    assert!(builds[1].contains(&"org.opencontainers.image.version=1.0.0".to_string()));
    assert_eq!(builds[1].last().unwrap(), &d.to_string());
    assert_eq!(f.docker.calls_of("manifest")[0], ["manifest", "inspect", "reg.example/ns/base:v1.0.0_42.2"]);
    assert_eq!(
        f.pushes(),
        [
            "push reg.example/ns/base:v1.0.0_42.2",
            "push reg.example/ns/base:v1.0.0",
            "push reg.example/ns/base:latest",
            "push reg.example/ns/child:v1.0.0_42.2",
            "push reg.example/ns/child:v1.0.0",
            "push reg.example/ns/child:latest",
        ]
    );
    assert!(!f.docker.raw_calls().contains("--all-tags"));
}

#[test]
fn a_failed_build_pushes_nothing_and_says_so() {
    let f = Fixture::new("cli");
    let args = ["publish", "--build-id", "1", "--jobs", "1"];
    let out = f.run(&args, &[("FAKE_FAIL_BUILD", "Dockerfile-child")]).fails();
    assert!(f.pushes().is_empty() && f.docker.calls_of("tag").is_empty());
    assert!(
        out.stderr.contains(
            "build of child (reg.example/ns/child:v1.0.0_1) failed: docker build exited with exit status: 1. \
             Nothing was pushed. Built: base. Not built: quiet (stopped after the failure)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn an_existing_unique_tag_stops_publish_before_any_build() {
    let f = Fixture::new("cli");
    let out = f.run(&["publish", "--build-id", "1"], &[("FAKE_MANIFEST", "present")]).fails();
    assert!(out.stderr.contains("reg.example/ns/base:v1.0.0_1 already exists"), "{}", out.stderr);
    assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
}

#[test]
fn every_image_is_asked_about_not_only_the_first() {
    let f = Fixture::new("cli");
    let out = f.run(&["publish", "--build-id", "1"], &[("FAKE_MANIFEST_PRESENT", "child:v1.0.0_1")]).fails();
    assert!(out.stderr.contains("reg.example/ns/child:v1.0.0_1 already exists"), "{}", out.stderr);
    assert_eq!(f.docker.calls_of("manifest").len(), 2);
    assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
}

#[test]
fn no_registry_access_names_the_login_command() {
    let f = Fixture::new("cli");
    let out = f.run(&["publish", "--build-id", "1"], &[("FAKE_MANIFEST", "unauthorized")]).fails();
    assert!(out.stderr.contains("cargo xtask login"), "{}", out.stderr);
    assert!(f.docker.calls_of("build").is_empty());
}

#[test]
fn build_uses_local_tags_and_builds_parents_of_named_images() {
    let f = Fixture::new("cli");
    f.run(&["build", "child", "--pull", "--no-cache"], &[]).ok();
    let builds = f.docker.calls_of("build");
    assert_eq!(builds.len(), 2);
    assert_eq!(&builds[0][..3], ["build", "--pull", "--no-cache"]);
    assert!(builds[0].contains(&"reg.example/ns/base:local-v1.0.0".to_string()));
    assert!(builds[1].contains(&"BASE_IMAGE=reg.example/ns/base:local-v1.0.0".to_string()));
    assert!(f.pushes().is_empty() && f.docker.calls_of("manifest").is_empty());
}

#[test]
fn dry_run_prints_the_commands_and_runs_none() {
    let f = Fixture::new("cli");
    let args = ["publish", "base", "--build-id", "3", "--dry-run", "--registry", "127.0.0.1:5000/x"];
    let out = f.run(&args, &[]).ok();
    // Only the read-only questions about the client (which builder it offers).
    assert!(f.docker.actions().is_empty(), "dry-run ran {:?}", f.docker.actions());
    let lines: Vec<&str> = out.stdout.lines().collect();
    let program = f.docker.program().display().to_string();
    assert_eq!(lines.len(), 6, "{}", out.stdout);
    assert!(lines[0].starts_with(&format!("{program} build --file ")), "{}", lines[0]);
    assert_eq!(
        lines[1],
        format!("{program} tag 127.0.0.1:5000/x/base:v1.0.0_3 127.0.0.1:5000/x/base:v1.0.0")
    );
    assert_eq!(lines[5], format!("{program} push 127.0.0.1:5000/x/base:latest"));
}

#[test]
fn login_passes_the_token_on_stdin_only() {
    let f = Fixture::new("cli");
    let out = f.run(&["login", "--username", "octo"], &[("CR_PAT", TOKEN)]).ok();
    assert_eq!(f.docker.calls(), [["login", "reg.example", "--username", "octo", "--password-stdin"]]);
    assert_eq!(f.docker.stdin(), TOKEN);
    assert!(!f.docker.raw_calls().contains(TOKEN));
    assert!(!out.all().contains(TOKEN));

    // The dry run shows the command, not the token.
    let out = f
        .run(&["login", "--dry-run"], &[("DOCKER", "docker"), ("GITHUB_ACTOR", "robot"), ("CR_PAT", TOKEN)])
        .ok();
    assert_eq!(out.stdout, "docker login reg.example --username robot --password-stdin\n");
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
    assert_eq!(
        out.stdout,
        "reg.example/ns/child:v1.0.0_42.2\nreg.example/ns/child:v1.0.0\nreg.example/ns/child:latest\n"
    );
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
