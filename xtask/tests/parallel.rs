//! Concurrent, dependency-ordered builds and the choice of builder, against a fake docker.

mod support;

use support::Fixture;

/// The build line of `dockerfile` in a dry run.
fn build_line(stdout: &str, dockerfile: &str) -> String {
    stdout
        .lines()
        .find(|l| l.contains(dockerfile))
        .unwrap_or_else(|| panic!("no {dockerfile} in:\n{stdout}"))
        .to_string()
}

#[test]
fn builds_use_buildkit_whenever_the_client_offers_it() {
    let f = Fixture::new("par");
    let docker = f.docker.program().display().to_string();

    // A Docker 23+ client without buildx: the legacy builder, said once.
    let out = f.run(&["build", "base", "--dry-run"], &[]).ok();
    let line = build_line(&out.stdout, "Dockerfile-base");
    assert!(line.starts_with(&format!("DOCKER_BUILDKIT=0 {docker} build --force-rm --file")), "{line}");
    assert_eq!(out.stderr.matches("building with the legacy builder").count(), 1, "{}", out.stderr);
    // DOCKER_BUILDKIT=1 in the user's environment does not turn the legacy builder's runs into
    // BuildKit ones the client cannot make.
    Fixture::new("par").run(&["build", "base"], &[("DOCKER_BUILDKIT", "1")]).ok();

    // A client with BuildKit built in (before 23).
    let out = f.run(&["build", "base", "--dry-run"], &[("FAKE_CLIENT_VERSION", "20.10.24")]).ok();
    let line = build_line(&out.stdout, "Dockerfile-base");
    assert!(line.starts_with(&format!("DOCKER_BUILDKIT=1 {docker} build --progress=plain --file")), "{line}");
    assert!(!out.stderr.contains("legacy"), "{}", out.stderr);

    // buildx, on a named builder.
    let out = f.run(&["build", "base", "--builder", "remote", "--dry-run"], &[("FAKE_BUILDX", "1")]).ok();
    let line = build_line(&out.stdout, "Dockerfile-base");
    assert!(
        line.starts_with(&format!("{docker} buildx build --builder remote --load --progress=plain --file")),
        "{line}"
    );

    // DOCKER_BUILDKIT=0 asks for the legacy builder, as it does of docker, also where buildx
    // is installed (GitHub's runners have it system-wide).
    let out = f.run(&["build", "base", "--dry-run"], &[("FAKE_BUILDX", "1"), ("DOCKER_BUILDKIT", "0")]).ok();
    let line = build_line(&out.stdout, "Dockerfile-base");
    assert!(line.starts_with(&format!("DOCKER_BUILDKIT=0 {docker} build --force-rm --file")), "{line}");
    assert!(
        out.stderr.contains("DOCKER_BUILDKIT=0 asks for it: building with the legacy builder"),
        "{}",
        out.stderr
    );
    for (value, builder, expected) in [
        (
            "false",
            "remote",
            "--builder remote needs BuildKit, and DOCKER_BUILDKIT=0 asks for the legacy builder",
        ),
        ("--no", "", "DOCKER_BUILDKIT is `--no`: docker reads it as a boolean (0 or 1)"),
    ] {
        let mut args = vec!["build", "base"];
        if !builder.is_empty() {
            args.extend(["--builder", builder]);
        }
        let out = f.run(&args, &[("FAKE_BUILDX", "1"), ("DOCKER_BUILDKIT", value)]).fails();
        assert!(out.stderr.contains(expected), "{}", out.stderr);
    }

    // --builder without buildx is an error that says what is missing.
    let out = f.run(&["build", "base", "--builder", "remote"], &[]).fails();
    assert!(out.stderr.contains("--builder remote needs docker buildx"), "{}", out.stderr);
    assert!(f.docker.calls_of("build").is_empty());
}

/// Every builder builds every platform, one build each: the dry run shows both, each with its
/// platform and (the legacy builder) the TARGET* arguments BuildKit would set, on the base
/// pinned for that platform.
#[test]
fn platforms_give_one_build_per_platform_with_every_builder() {
    let f = Fixture::new("par");
    let text = std::fs::read_to_string(&f.inventory).unwrap().replacen(
        "push = true\n",
        "push = true\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
        1,
    );
    std::fs::write(&f.inventory, text).unwrap();
    for buildx in ["", "1"] {
        let out = f.run(&["build", "base", "--dry-run"], &[("FAKE_BUILDX", buildx)]).ok();
        let builds: Vec<&str> =
            out.stdout.lines().filter(|l| l.contains(" build ") && l.contains("Dockerfile-base")).collect();
        assert_eq!(builds.len(), 2, "{}", out.stdout);
        assert!(
            builds[0].contains("--platform linux/amd64") && builds[1].contains("--platform linux/arm64"),
            "{builds:?}"
        );
        assert_eq!(builds[1].contains("--build-arg TARGETARCH=arm64"), buildx.is_empty(), "{builds:?}");
        assert!(
            out.stdout.contains("# base base:1 for linux/arm64: registry registry-1.docker.io"),
            "{}",
            out.stdout
        );
    }
    assert!(f.docker.calls_of("build").is_empty());
}

#[test]
fn jobs_must_be_positive() {
    let f = Fixture::new("par");
    let out = f.run(&["build", "--jobs", "0"], &[]).fails();
    assert!(out.stderr.contains("--jobs: must be at least 1"), "{}", out.stderr);
}

#[test]
fn independent_images_build_at_once_and_logs_stay_whole() {
    let f = Fixture::new("par");
    // base and quiet are independent and start together; child waits for base.
    let out = f.run(&["build", "--jobs", "3"], &[("FAKE_BUILD_SLEEP", "0.3")]).ok();
    let started: Vec<String> =
        f.docker.calls_of("build").iter().map(|c| c[3].rsplit('-').next().unwrap().to_string()).collect();
    assert_eq!(started[2], "child", "{started:?}");
    // Each image's log is one block: its header, its command, its output.
    for name in ["base", "child", "quiet"] {
        let at = out.stdout.find(&format!("==> build {name} (")).unwrap_or_else(|| panic!("{}", out.stdout));
        let block: Vec<&str> = out.stdout[at..].lines().take(3).collect();
        assert!(
            block[1]
                .contains(&format!("build --force-rm --file {}/Dockerfile-{name} ", f.dir.path().display())),
            "{block:?}"
        );
        assert_eq!(block[2], "Sending build context to Docker daemon  2.048kB", "{block:?}");
    }
}

#[test]
fn with_one_job_images_build_one_at_a_time_in_dependency_order() {
    let f = Fixture::new("par");
    f.run(&["build", "--jobs", "1"], &[]).ok();
    let order: Vec<String> =
        f.docker.calls_of("build").iter().map(|c| c[3].rsplit('-').next().unwrap().to_string()).collect();
    assert_eq!(order, ["base", "child", "quiet"]);
}

/// Images are published side by side; within one image the unique tag is pushed first, then
/// the registry is given its manifest under the version tag, then under latest.
#[test]
fn each_tag_is_made_right_before_its_push_in_order() {
    let f = Fixture::new("par");
    f.run(&["publish", "--build-id", "5", "--jobs", "3"], &[]).ok();
    let reg = f.reg();
    let requests = f.registry.requests();
    for image in ["base", "child"] {
        let own: Vec<String> = f
            .commands()
            .into_iter()
            .filter(|c| {
                (c.starts_with("tag ") || c.starts_with("push ")) && c.contains(&format!("/{image}:"))
            })
            .map(|c| {
                c.split(' ').next_back().unwrap().rsplit(':').next().unwrap().to_string()
                    + " "
                    + c.split(' ').next().unwrap()
            })
            .collect();
        assert_eq!(own, ["v1.0.0_5 tag", "v1.0.0_5 push", "v1.0.0 tag", "latest tag"], "{image}");
        let puts: Vec<String> =
            requests.iter().filter(|r| r.starts_with(&format!("PUT /v2/ns/{image}/"))).cloned().collect();
        assert_eq!(
            puts,
            [format!("PUT /v2/ns/{image}/manifests/v1.0.0"), format!("PUT /v2/ns/{image}/manifests/latest")],
            "{requests:?}"
        );
    }
    assert!(!requests.iter().any(|r| r.starts_with("PUT /v2/ns/quiet/")), "{requests:?}");
    let quiet: Vec<String> =
        f.commands().into_iter().filter(|c| c.contains(&format!("{reg}/quiet:v"))).collect();
    assert!(quiet.iter().all(|c| c.starts_with("tag ")), "{quiet:?}");
}

#[test]
fn a_failed_tag_stops_that_image_and_says_what_was_pushed() {
    let f = Fixture::new("par");
    // The unique tag's local name is made for its push: failing, it stops the image.
    let out =
        f.run(&["publish", "--build-id", "5", "--jobs", "1"], &[("FAKE_FAIL_TAG", "child:v1.0.0_5")]).fails();
    assert!(out.stderr.contains("child:v1.0.0_5"), "{}", out.stderr);
    assert!(out.stderr.contains("no space left on device"), "{}", out.stderr);
    assert!(out.stderr.contains("Fully pushed: base; not fully pushed: child"), "{}", out.stderr);
    assert!(!f.pushes().iter().any(|p| p.contains("/child:")), "{:?}", f.pushes());

    // `latest` is made locally once the registry holds it: a local failure then is a warning,
    // since what was published is published.
    let f = Fixture::new("par");
    let out =
        f.run(&["publish", "--build-id", "5", "--jobs", "1"], &[("FAKE_FAIL_TAG", "child:latest")]).ok();
    assert!(
        out.stderr.contains(&format!("{}/child:latest is pushed, but not tagged locally", f.reg())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("no space left on device"), "{}", out.stderr);
}

#[test]
fn the_image_with_the_longest_chain_behind_it_builds_first() {
    let dir = support::TempDir::new("par-chain");
    let images: &[(&str, &[&str], bool)] =
        &[("a", &[], true), ("b", &[], true), ("c", &[], true), ("d", &["c"], true), ("e", &["d"], true)];
    let docker = support::FakeDocker::new();
    let registry = support::FakeRegistry::start(docker.registry_file());
    let inventory = support::fixture_inventory(&dir, &format!("{}/ns", registry.host()), "base:1", images);
    let f = Fixture { dir, inventory, docker, registry };
    // Two jobs. In plan order (a, b first) the chain c -> d -> e would start a round late:
    // four rounds of builds instead of three.
    f.run(&["build", "--jobs", "2"], &[("FAKE_BUILD_SLEEP", "0.4")]).ok();
    let started: Vec<String> =
        f.docker.calls_of("build").iter().map(|c| c[3].rsplit('-').next().unwrap().to_string()).collect();
    let round = |r: usize| {
        let mut pair: Vec<&str> =
            started[2 * r..(2 * r + 2).min(started.len())].iter().map(String::as_str).collect();
        pair.sort();
        pair
    };
    assert_eq!((round(0), round(1), round(2)), (vec!["a", "c"], vec!["b", "d"], vec!["e"]), "{started:?}");
}
