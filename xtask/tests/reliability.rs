//! Faults injected through a fake docker: transient and permanent push failures, a registry
//! that does not answer, failed builds with --keep-going, interrupts, timeouts; and a corpus of
//! bad inventories and arguments that must each fail clearly without building or pushing.

mod support;

use std::time::Duration;

use support::{run, xtask, Fixture, Run};

/// Fast retries so the tests do not wait for the production backoff.
const FAST: [(&str, &str); 1] = [("XTASK_RETRY_BASE_MS", "10")];

fn publish(f: &Fixture, env: &[(&str, &str)]) -> Run {
    let env: Vec<(&str, &str)> = FAST.iter().chain(env).copied().collect();
    f.run(&["publish", "--build-id", "1"], &env)
}

/// How many times `ns/<reference>` (e.g. `child:v1.0.0_1`) was pushed.
fn attempts(f: &Fixture, reference: &str) -> usize {
    f.pushes().iter().filter(|p| p.as_str() == format!("push {}/{reference}", f.reg())).count()
}

/// Runs `args` with `env`, and sends `signal` once the fake docker has started sleeping.
fn interrupted(f: &Fixture, args: &[&str], env: (&str, &str), signal: &str) -> Run {
    let mut cmd = f.xtask(args);
    cmd.env(env.0, env.1).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    while f.docker.naps().1 == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    Run::of(child.wait_with_output().unwrap()).fails()
}

#[test]
fn transient_push_failures_are_retried_and_logged() {
    let f = Fixture::new("rel");
    let out = publish(&f, &[("FAKE_PUSH_FAIL", "child:v1.0.0_1"), ("FAKE_PUSH_FAIL_TIMES", "2")]).ok();
    assert_eq!(attempts(&f, "child:v1.0.0_1"), 3);
    assert!(out.stderr.contains("retry 1 of 4") && out.stderr.contains("retry 2 of 4"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "docker push {}/child:v1.0.0_1 (registry {}) failed",
            f.reg(),
            f.registry.host()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
    assert_eq!(f.pushes().len(), 4, "a push per published image and 2 retries");
}

#[test]
fn a_registry_that_briefly_refuses_a_new_tag_is_asked_again() {
    let f = Fixture::new("rel");
    f.registry.answer("PUT /v2/ns/child/manifests/v1.0.0", 503, "UNAVAILABLE", 2);
    let out = publish(&f, &[]).ok();
    let puts = f.registry.requests().iter().filter(|r| *r == "PUT /v2/ns/child/manifests/v1.0.0").count();
    assert_eq!(puts, 3, "1 try and 2 retries");
    assert!(out.stderr.contains("retry 2 of 4"), "{}", out.stderr);
    let held = std::fs::read_to_string(f.docker.registry_file()).unwrap();
    let digest_of = |tag: &str| {
        held.lines()
            .rfind(|l| l.starts_with(&format!("{}/child:{tag} ", f.reg())))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert!(digest_of("v1.0.0").is_some() && digest_of("v1.0.0") == digest_of("v1.0.0_1"), "{held}");
}

#[test]
fn a_push_that_keeps_failing_stops_before_latest_and_says_what_was_pushed() {
    let f = Fixture::new("rel");
    // The registry never takes the version tag of child.
    f.registry.answer("PUT /v2/ns/child/manifests/v1.0.0", 503, "UNAVAILABLE", 0);
    let out = publish(&f, &[]).fails();
    let requests = f.registry.requests();
    let puts =
        |tag: &str| requests.iter().filter(|r| **r == format!("PUT /v2/ns/child/manifests/{tag}")).count();
    assert_eq!(puts("v1.0.0"), 5, "1 try and 4 retries");
    assert_eq!(puts("latest"), 0, "latest never gets ahead of the pinned tags");
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
    assert_eq!(attempts(&f, "base:v1.0.0_1"), 1);
    assert!(!out.all().contains("retry"), "{}", out.all());
    assert!(out.stderr.contains("permission_denied"), "{}", out.stderr);
    assert!(
        out.stderr.contains("The registry refuses this push: log in with `cargo xtask login`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not fully pushed: base"), "{}", out.stderr);
}

#[test]
fn an_unreachable_registry_is_retried_then_reported_before_any_build() {
    let f = Fixture::new("rel");
    f.registry.set_down(true);
    let out = publish(&f, &[("XTASK_RETRIES", "2")]).fails();
    let host = f.registry.host();
    assert!(out.stderr.contains(&format!("cannot reach the registry {host} (GET /v2/ns/base/manifests/v1.0.0_1 on {host} after 2 retries: curl: (7)")), "{}", out.stderr);
    assert_eq!(out.stderr.matches("; retry ").count(), 2, "{}", out.stderr);
    assert!(f.docker.calls_of("build").is_empty());
}

/// A build id such as 1429.1 (a GitHub run number) holds the digits of a status code; it
/// must not make any question look like a rate limit, nor any failure like a refusal.
#[test]
fn status_code_digits_in_references_decide_nothing() {
    let f = Fixture::new("rel");
    let out = f.run(&["publish", "--build-id", "1429.1"], &FAST).ok();
    assert!(!out.stderr.contains("retry"), "{}", out.stderr);
    // A transient push failure of a reference holding 401 and 403 is still retried...
    let f = Fixture::new("rel");
    let message = "Put \"http://r/v2/ns/child/blobs/uploads/403\": read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer";
    let env = [
        ("FAKE_PUSH_FAIL", "child:v1.0.0_401.403"),
        ("FAKE_PUSH_FAIL_TIMES", "1"),
        ("FAKE_PUSH_MESSAGE", message),
        FAST[0],
    ];
    let out = f.run(&["publish", "--build-id", "401.403"], &env).ok();
    assert!(out.stderr.contains("retry 1 of 4"), "{}", out.stderr);
    assert_eq!(attempts(&f, "child:v1.0.0_401.403"), 2);
    // ...and a registry that says 429 is a rate limit: asked again, with a warning.
    let f = Fixture::new("rel");
    f.registry.answer("/manifests/v1.0.0_7.1", 429, "TOOMANYREQUESTS", 1);
    let out = f.run(&["publish", "--build-id", "7.1"], &FAST).ok();
    assert_eq!(out.stderr.matches("; retry 1 of 4").count(), 1, "{}", out.stderr);
}

/// A registry question stopped by its time limit is retried like any transient failure.
#[test]
fn a_push_that_outlives_its_time_limit_is_retried_and_stopped_quickly() {
    let f = Fixture::new("rel");
    let env = [("FAKE_PUSH_SLEEP", "30"), ("XTASK_PUSH_TIMEOUT", "1"), ("XTASK_RETRIES", "1"), FAST[0]];
    let out = f.run(&["publish", "base", "--build-id", "1"], &env).fails();
    // Two attempts, each stopped with everything it started: no push slept its 30 s through.
    assert_eq!(attempts(&f, "base:v1.0.0_1"), 2);
    assert_eq!(f.docker.naps(), (0, 0), "a stopped push ran on or left a process");
    assert!(
        out.stderr.contains("failed (did not finish within 1s and was stopped); retry 1 of 1"),
        "{}",
        out.stderr
    );
    let reg = f.reg();
    assert!(
        out.stderr.contains(&format!(
            "docker push {reg}/base:v1.0.0_1 (registry {}) failed after 1 retry",
            f.registry.host()
        )),
        "{}",
        out.stderr
    );
}

/// A push stopped by its time limit may have reached the registry anyway: the registry's
/// word decides, and this run's image there counts as pushed.
#[test]
fn a_stopped_push_the_registry_took_anyway_counts_as_pushed() {
    let f = Fixture::new("rel");
    let env = [("FAKE_PUSH_LANDS_THEN_SLEEP", "30"), ("XTASK_PUSH_TIMEOUT", "1"), ("XTASK_RETRIES", "0")];
    let out = f.run(&["publish", "base", "--build-id", "1"], &env).ok();
    let reg = f.reg();
    assert!(
        out.stderr.contains(&format!("{reg}/base:v1.0.0_1 holds this run's image (sha256:"))
            && out.stderr.contains("counted as pushed"),
        "{}",
        out.stderr
    );
    assert_eq!(f.registry.manifest_requests("latest"), 2, "latest was given the manifest and read back");
    assert_eq!(f.docker.naps(), (0, 0));
}

/// Ctrl-C during a push: no further tag goes out, and the report says what the registry holds,
/// including the tag whose push was stopped after the engine had sent it.
#[test]
fn an_interrupted_push_reports_what_the_registry_holds() {
    let f = Fixture::new("rel");
    let out = interrupted(
        &f,
        &["publish", "base", "--build-id", "1"],
        ("FAKE_PUSH_LANDS_THEN_SLEEP", "30"),
        "-INT",
    );
    assert!(out.stderr.contains("interrupted by a signal"), "{}", out.stderr);
    assert!(out.stderr.contains("not fully pushed: base (1 of 3 tags)"), "{}", out.stderr);
    let puts = f.registry.requests().iter().filter(|r| r.starts_with("PUT ")).count();
    assert_eq!(puts, 0, "no tag went out after the interrupt");
}

/// Ctrl-C during a push the engine had not finished: the error says the tag may still appear.
#[test]
fn an_interrupted_push_says_the_tag_may_still_appear() {
    let f = Fixture::new("rel");
    let mut cmd = f.xtask(&["publish", "base", "--build-id", "1"]);
    cmd.env("FAKE_PUSH_SLEEP", "30")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    while f.docker.naps().1 == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = Run::of(child.wait_with_output().unwrap()).fails();
    let reference = format!("{}/base:v1.0.0_1", f.reg());
    assert!(
        out.stderr.contains(&format!("{reference} was stopped midway and the engine may still finish it: if {reference} shows up in the registry, it holds this run's image and this build id is used up")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Fully pushed: none; not fully pushed: base"), "{}", out.stderr);
}

#[test]
fn keep_going_builds_what_it_can_reports_every_failure_and_pushes_nothing() {
    let f = Fixture::new("rel");
    let out = f
        .run(&["publish", "--build-id", "1", "--keep-going"], &[("FAKE_FAIL_BUILD", "Dockerfile-base")])
        .fails();
    let mut built: Vec<String> =
        f.docker.calls_of("build").iter().map(|c| c[3].rsplit('/').next().unwrap().to_string()).collect();
    built.sort();
    assert_eq!(built, ["Dockerfile-base", "Dockerfile-quiet"], "child needs base and is skipped");
    assert!(f.pushes().is_empty() && f.docker.calls_of("tag").is_empty());
    assert!(
        out.stderr.contains("build of base failed: ")
            && out.stderr.contains("Nothing was pushed. Built: quiet. Not built: child (needs base)"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_interrupt_stops_the_running_build_and_reports() {
    let f = Fixture::new("rel");
    // Once the first build is asleep, interrupt.
    let out = interrupted(&f, &["publish", "--build-id", "1"], ("FAKE_BUILD_SLEEP", "30"), "-TERM");
    assert_eq!(f.docker.naps(), (0, 0), "the running build was not stopped with what it started");
    assert!(out.stderr.contains("interrupted by a signal"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "Nothing was pushed. Not built: base (interrupted), child (needs base), quiet (interrupted)"
        ),
        "{}",
        out.stderr
    );
    assert!(f.pushes().is_empty());
}

#[test]
fn a_build_that_outlives_its_timeout_is_stopped_and_reported() {
    let f = Fixture::new("rel");
    let out = publish(&f, &[("FAKE_BUILD_SLEEP", "20"), ("XTASK_BUILD_TIMEOUT", "1")]).fails();
    assert_eq!(f.docker.naps(), (0, 0), "the build outlived its time limit");
    assert!(
        out.stderr.contains(
            "build did not finish within 1s and was stopped (XTASK_BUILD_TIMEOUT raises the limit)"
        ),
        "{}",
        out.stderr
    );
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
            ("registry = \"127.0.0.1:", "registry = \"ns/sbl"),
            "must start with a registry host",
        ),
        ("upper-case registry namespace", ("/ns\"\n", "/NS\"\n"), "`NS` is not a valid"),
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
