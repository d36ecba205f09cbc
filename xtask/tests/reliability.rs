//! Faults injected through a fake docker: transient and permanent push failures, a registry
//! that does not answer, failed builds with --keep-going, interrupts, timeouts; and a corpus of
//! bad inventories and arguments that must each fail clearly without building or pushing.

mod support;

use std::time::{Duration, Instant};

use support::{run, xtask, Fixture, Run};

/// Fast retries so the tests do not wait for the production backoff.
const FAST: [(&str, &str); 1] = [("XTASK_RETRY_BASE_MS", "10")];

fn publish(f: &Fixture, env: &[(&str, &str)]) -> Run {
    let env: Vec<(&str, &str)> = FAST.iter().chain(env).copied().collect();
    f.run(&["publish", "--build-id", "1"], &env)
}

fn attempts(f: &Fixture, reference: &str) -> usize {
    f.pushes().iter().filter(|p| p.as_str() == format!("push {reference}")).count()
}

#[test]
fn transient_push_failures_are_retried_and_logged() {
    let f = Fixture::new("rel");
    let out = publish(&f, &[("FAKE_PUSH_FAIL", "child:v1.0.0_1"), ("FAKE_PUSH_FAIL_TIMES", "2")]).ok();
    assert_eq!(attempts(&f, "reg.example/ns/child:v1.0.0_1"), 3);
    assert!(out.stderr.contains("retry 1 of 4") && out.stderr.contains("retry 2 of 4"), "{}", out.stderr);
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
    assert_eq!(f.pushes().len(), 8, "6 pushes and 2 retries");
}

#[test]
fn a_push_that_keeps_failing_stops_before_latest_and_says_what_was_pushed() {
    let f = Fixture::new("rel");
    // The version tag of child never goes through.
    let out = publish(&f, &[("FAKE_PUSH_FAIL", "child:v1.0.0")]).fails();
    assert_eq!(attempts(&f, "reg.example/ns/child:v1.0.0"), 5, "1 try and 4 retries");
    assert_eq!(attempts(&f, "reg.example/ns/child:latest"), 0, "latest never gets ahead of the pinned tags");
    assert!(out.stderr.contains("after 4 retries"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Fully pushed: base; not fully pushed: child (1 of 3 tags)"),
        "{}",
        out.stderr
    );
}

#[test]
fn permanent_push_failures_are_not_retried() {
    let f = Fixture::new("rel");
    let message = "denied: permission_denied: write_package";
    let out = publish(&f, &[("FAKE_PUSH_FAIL", "base:v1.0.0_1"), ("FAKE_PUSH_MESSAGE", message)]).fails();
    assert_eq!(attempts(&f, "reg.example/ns/base:v1.0.0_1"), 1);
    assert!(!out.all().contains("retry"), "{}", out.all());
    assert!(out.stderr.contains("permission_denied"), "{}", out.stderr);
    assert!(out.stderr.contains("not fully pushed: base"), "{}", out.stderr);
}

#[test]
fn an_unreachable_registry_is_retried_then_reported_before_any_build() {
    let f = Fixture::new("rel");
    let out = publish(&f, &[("FAKE_MANIFEST", "down"), ("XTASK_RETRIES", "2")]).fails();
    assert_eq!(f.docker.calls_of("manifest").len(), 3);
    assert!(
        out.stderr.contains("cannot reach the registry reg.example (after 2 retries: "),
        "{}",
        out.stderr
    );
    assert!(f.docker.calls_of("build").is_empty());
}

#[test]
fn keep_going_builds_what_it_can_reports_every_failure_and_pushes_nothing() {
    let f = Fixture::new("rel");
    let out = f
        .run(&["publish", "--build-id", "1", "--keep-going"], &[("FAKE_FAIL_BUILD", "Dockerfile-base")])
        .fails();
    let mut built: Vec<String> =
        f.docker.calls_of("build").iter().map(|c| c[2].rsplit('/').next().unwrap().to_string()).collect();
    built.sort();
    assert_eq!(built, ["Dockerfile-base", "Dockerfile-quiet"], "child needs base and is skipped");
    assert!(f.pushes().is_empty() && f.docker.calls_of("tag").is_empty());
    assert!(
        out.stderr.contains("build of base (reg.example/ns/base:v1.0.0_1) failed: docker build exited with exit status: 1. Nothing was pushed. Built: quiet. Not built: child (needs base)"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_interrupt_stops_the_running_build_and_reports() {
    let f = Fixture::new("rel");
    let mut cmd = f.xtask(&["publish", "--build-id", "1"]);
    cmd.env("FAKE_BUILD_SLEEP", "30")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    let kill = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = Run::of(child.wait_with_output().unwrap()).fails();
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert!(out.stderr.contains("interrupted by a signal"), "{}", out.stderr);
    assert!(out.stderr.contains("Nothing was pushed. Not built: child (needs base)"), "{}", out.stderr);
    assert!(f.pushes().is_empty());
}

#[test]
fn a_build_that_outlives_its_timeout_is_stopped_and_reported() {
    let f = Fixture::new("rel");
    let start = Instant::now();
    let out = publish(&f, &[("FAKE_BUILD_SLEEP", "20"), ("XTASK_BUILD_TIMEOUT", "1")]).fails();
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert!(out.stderr.contains("docker build did not finish within 1s and was stopped"), "{}", out.stderr);
    assert!(f.pushes().is_empty());
}

/// Each case edits the fixture (or the command line) once; each must fail with a message that
/// names the problem, and docker must not have been asked to build, tag or push anything.
#[test]
fn bad_inventories_and_arguments_fail_clearly_and_touch_nothing() {
    type Edit = (&'static str, &'static str);
    let inventory_cases: &[(&str, Edit, &str)] = &[
        ("malformed TOML", ("registry = \"", "registry = [\""), "TOML"),
        ("wrong type", ("push = false", "push = \"no\""), "invalid type"),
        ("unknown top-level key", ("registry =", "regsitry = \"x\"\nregistry ="), "unknown field `regsitry`"),
        ("unknown image key", ("push = true", "psuh = true"), "unknown field `psuh`"),
        (
            "missing version",
            ("version = \"1.0.0\"\ndockerfile = \"Dockerfile-base\"", "dockerfile = \"Dockerfile-base\""),
            "missing field `version`",
        ),
        ("two-part version", ("version = \"1.0.0\"", "version = \"1.0\""), "not a semantic version"),
        ("v-prefixed version", ("version = \"1.0.0\"", "version = \"v1.0.0\""), "not a semantic version"),
        ("build metadata", ("version = \"1.0.0\"", "version = \"1.0.0+git\""), "build metadata"),
        ("upper-case name", ("[images.quiet]", "[images.Quiet]"), "lowercase"),
        (
            "name with a space",
            ("[images.quiet]", "[images.\"qu iet\"]"),
            "not a valid repository name component",
        ),
        (
            "name ending in a dash",
            ("[images.quiet]", "[images.quiet-]"),
            "not a valid repository name component",
        ),
        (
            "unknown parent",
            ("depends_on = [\"base\"]", "depends_on = [\"ghost\"]"),
            "`ghost` is not an image",
        ),
        (
            "self dependency",
            ("depends_on = [\"base\"]", "depends_on = [\"child\"]"),
            "cannot depend on itself",
        ),
        (
            "missing Dockerfile",
            ("dockerfile = \"Dockerfile-quiet\"", "dockerfile = \"Dockerfile-gone\""),
            "no file at",
        ),
        (
            "missing context",
            ("dockerfile = \"Dockerfile-quiet\"", "dockerfile = \"Dockerfile-quiet\"\ncontext = \"gone\""),
            "no folder at",
        ),
        (
            "test package from an unknown image",
            ("image = \"base\"", "image = \"ghost\""),
            "test_package.image",
        ),
        (
            "test package tag with a space",
            ("tag = \"do_not_use\"", "tag = \"do not use\""),
            "test_package.tag",
        ),
        (
            "registry without a host",
            ("registry = \"reg.example/ns\"", "registry = \"ns/sbl\""),
            "must start with a registry host",
        ),
        (
            "upper-case registry namespace",
            ("registry = \"reg.example/ns\"", "registry = \"reg.example/NS\""),
            "`NS` is not a valid",
        ),
        (
            "bad build argument name",
            ("push = false", "push = false\nbuild_args = { \"A-B\" = \"1\" }"),
            "build argument name",
        ),
        ("bad platform", ("push = false", "push = false\nplatforms = [\"amd64\"]"), "OS/ARCH"),
        ("empty inventory", ("", ""), "missing field `registry`"),
    ];
    let mut tried = 0;
    for (name, (from, to), expected) in inventory_cases {
        let f = Fixture::new("bad");
        let text = std::fs::read_to_string(&f.inventory).unwrap();
        let edited = if from.is_empty() { String::new() } else { text.replacen(from, to, 1) };
        assert!(from.is_empty() || edited != text, "{name}: the edit did not apply");
        std::fs::write(&f.inventory, edited).unwrap();
        let out = f.run(&["publish", "--build-id", "1"], &[]).fails();
        assert!(out.stderr.contains(expected), "{name}: expected `{expected}` in:\n{}", out.stderr);
        assert!(
            out.stderr.contains(&f.inventory.display().to_string()),
            "{name}: the file is not named:\n{}",
            out.stderr
        );
        assert!(f.docker.calls().is_empty(), "{name}: docker was run: {:?}", f.docker.calls());
        tried += 1;
    }

    let long_id = "1".repeat(200);
    let argument_cases: &[(&str, Vec<&str>, &str)] = &[
        ("build id with a path", vec!["publish", "--build-id", "../x"], "--build-id"),
        ("build id with a space", vec!["publish", "--build-id", "a b"], "--build-id"),
        ("200-character build id", vec!["publish", "--build-id", &long_id], "too long"),
        ("empty build id", vec!["publish", "--build-id", ""], "cannot be empty"),
        ("build id with a newline", vec!["publish", "--build-id", "1\n2"], "--build-id"),
        ("no build id", vec!["publish"], "pass --build-id ID"),
        ("unknown image", vec!["publish", "nope", "--build-id", "1"], "unknown image `nope`"),
        ("bad --registry", vec!["publish", "--build-id", "1", "--registry", "NOPE/x"], "--registry"),
        ("unknown flag", vec!["publish", "--build-id", "1", "--frobnicate"], "--frobnicate"),
        ("unknown command", vec!["pubish"], "pubish"),
        ("ci-main without a build id", vec!["ci-main"], "pass --build-id ID"),
    ];
    for (name, args, expected) in argument_cases {
        let f = Fixture::new("bad");
        let out = f.run(args, &[]).fails();
        assert!(out.stderr.contains(expected), "{name}: expected `{expected}` in:\n{}", out.stderr);
        assert!(f.docker.calls().is_empty(), "{name}: docker was run");
        tried += 1;
    }

    // A missing inventory, and one in a folder whose name is not UTF-8.
    let f = Fixture::new("bad");
    let elsewhere = |inventory: &std::path::Path| {
        let mut cmd = xtask();
        cmd.args(["publish", "--build-id", "1", "--inventory"])
            .arg(inventory)
            .env("DOCKER", f.docker.program());
        run(&mut cmd)
    };
    let out = elsewhere(&f.dir.path().join("nope.toml")).fails();
    assert!(out.stderr.contains("cannot read the inventory"), "{}", out.stderr);
    tried += 1;
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = f.dir.path().join(std::ffi::OsStr::from_bytes(b"images-\xff"));
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::copy(&f.inventory, odd.join("images.toml")).unwrap();
        let out = elsewhere(&odd.join("images.toml")).fails();
        assert!(out.stderr.contains("not valid UTF-8"), "{}", out.stderr);
        tried += 1;
    }
    assert!(f.docker.calls().is_empty());
    eprintln!("bad inputs tried: {tried}");
    assert!(tried >= 20);
}
