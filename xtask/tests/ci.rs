//! ci-pr, ci-main and cleanup-test-package against a fake docker (exact argv, stdin, GitHub
//! Actions reporting) and a local HTTP server standing in for GitHub's API.

mod support;

use support::{run, xtask, Fixture, OneShotHttp, Run};

const TOKEN: &str = "ghs_workflow_T0KEN";

/// Runs xtask as GitHub Actions would, with summary and output files in the fixture folder.
fn run_in_actions(f: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = f.xtask(args);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_RUN_NUMBER", "12")
        .env("GITHUB_RUN_ATTEMPT", "3")
        .env("GITHUB_ACTOR", "octo")
        .env("GITHUB_STEP_SUMMARY", f.dir.path().join("summary.md"))
        .env("GITHUB_OUTPUT", f.dir.path().join("output.txt"))
        .envs(env.iter().copied());
    run(&mut cmd)
}

#[test]
fn ci_pr_logs_in_pushes_only_the_test_package_and_logs_out() {
    let f = Fixture::new("ci");
    let out = run_in_actions(&f, &["ci-pr"], &[("GITHUB_TOKEN", TOKEN)]).ok();
    let (reg, host) = (f.reg(), f.registry.host());
    let commands = f.commands();
    assert_eq!(commands[0], format!("login {host} --username octo --password-stdin"));
    assert_eq!(f.docker.stdin(), TOKEN);
    assert_eq!(commands.last().unwrap(), &format!("logout {host}"));
    let pushes: Vec<&String> = commands.iter().filter(|c| c.starts_with("push")).collect();
    assert_eq!(pushes, [&format!("push {reg}/test:do_not_use")]);
    assert!(
        commands.iter().any(|c| c.starts_with(&format!("tag {reg}/base:run-"))
            && c.ends_with(&format!(" {reg}/test:do_not_use"))),
        "{commands:#?}"
    );
    // The probe goes out before the other images build.
    let push_at = commands.iter().position(|c| c.starts_with("push")).unwrap();
    let child_at = commands.iter().position(|c| c.contains("Dockerfile-child")).unwrap();
    assert!(push_at < child_at, "{commands:#?}");
    assert_eq!(f.docker.calls_of("build").len(), 3);
    assert!(out.stdout.contains("::group::build base (1/1)"), "{}", out.stdout);
    assert!(!f.docker.raw_calls().contains(TOKEN) && !out.all().contains(TOKEN));
    assert_eq!(f.docker.leaked(), "", "the token reached docker's environment");
    let summary = f.file("summary.md");
    assert!(summary.contains(&format!("| test | `{reg}/test:do_not_use` | `sha256:")), "{summary}");
    assert!(
        summary.contains(&format!(
            "| child | `{reg}/child:local-v1.0.0` | - | built, not pushed (pull request)"
        )),
        "{summary}"
    );
    // Every run-private name is gone at the end, after the second plan built on the first's.
    let removed = commands.iter().filter(|c| c.starts_with("image rm ")).count();
    assert_eq!(removed, 3, "{commands:#?}");
}

#[test]
fn ci_pr_without_a_token_warns_and_still_builds() {
    let f = Fixture::new("ci");
    let out = run_in_actions(&f, &["ci-pr"], &[]).ok();
    assert!(out.all().contains("::warning::GITHUB_TOKEN is not set"), "{}", out.stdout);
    assert!(out.all().contains("building every image anyway"), "{}", out.all());
    assert_eq!(f.docker.calls_of("build").len(), 3);
    assert!(f.docker.calls_of("push").is_empty() && f.docker.calls_of("login").is_empty());
}

/// Pull requests from forks and from Dependabot get a GITHUB_TOKEN that may only read: ci-pr
/// does not try to push with it (that would fail the check), says why, and builds.
#[test]
fn ci_pr_with_a_read_only_token_skips_the_probe() {
    let f = Fixture::new("ci");
    let event = f.dir.write(
        "event.json",
        r#"{"pull_request":{"head":{"repo":{"full_name":"someone/base-images"}},"base":{"repo":{"full_name":"team/base-images"}}}}"#,
    );
    let event = event.display().to_string();
    let out = run_in_actions(&f, &["ci-pr"], &[("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_PATH", &event)]).ok();
    assert!(
        out.all().contains("::warning::this pull request comes from the fork someone/base-images"),
        "{}",
        out.all()
    );
    assert_eq!(f.docker.calls_of("build").len(), 3);
    assert!(f.docker.calls_of("push").is_empty() && f.docker.calls_of("login").is_empty());

    let f = Fixture::new("ci");
    let out =
        run_in_actions(&f, &["ci-pr"], &[("GITHUB_TOKEN", TOKEN), ("GITHUB_ACTOR", "dependabot[bot]")]).ok();
    assert!(out.all().contains("comes from Dependabot"), "{}", out.all());
    assert!(f.docker.calls_of("push").is_empty() && f.docker.calls_of("login").is_empty());
}

#[test]
fn ci_main_publishes_reports_digests_and_logs_out() {
    let f = Fixture::new("ci");
    let env = [("GITHUB_TOKEN", TOKEN), ("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", "feed")];
    let out = run_in_actions(&f, &["ci-main"], &env).ok();
    let (reg, host) = (f.reg(), f.registry.host());
    let commands = f.commands();
    assert_eq!(commands[0], format!("login {host} --username octo --password-stdin"));
    assert_eq!(commands.last().unwrap(), &format!("logout {host}"));
    let pushes: Vec<&String> = commands.iter().filter(|c| c.starts_with("push")).collect();
    // Images push concurrently; each pushes its unique tag, then the registry is given that
    // manifest under the version tag and latest.
    let requests = f.registry.requests();
    for image in ["base", "child"] {
        let own: Vec<String> =
            pushes.iter().filter(|p| p.contains(&format!("/{image}:"))).map(|p| p.to_string()).collect();
        assert_eq!(own, [format!("push {reg}/{image}:v1.0.0_12.3")]);
        let puts: Vec<String> =
            requests.iter().filter(|r| r.starts_with(&format!("PUT /v2/ns/{image}/"))).cloned().collect();
        assert_eq!(puts, ["v1.0.0", "latest"].map(|t| format!("PUT /v2/ns/{image}/manifests/{t}")));
    }
    assert_eq!(pushes.len(), 2);
    assert!(!f.docker.calls_of("build")[0].contains(&"--pull".to_string()));
    assert!(out.all().contains("::notice::quiet: push = false"), "{}", out.stdout);

    let output = f.file("output.txt");
    let json = output.lines().find_map(|l| l.strip_prefix("published=")).expect(&output);
    let published: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(published.as_array().unwrap().len(), 2);
    assert_eq!(published[0]["image"], "base");
    assert_eq!(published[0]["references"][2], format!("{reg}/base:latest"));
    let digest = published[0]["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:") && out.stdout.contains(digest));
    // What the attest job fans out over: the pushed images (not the push = false one), by
    // repository without a tag, the digest pushed and its SBOM in the sbom-dir folder.
    let json = output.lines().find_map(|l| l.strip_prefix("attest=")).expect(&output);
    let attest: serde_json::Value = serde_json::from_str(json).unwrap();
    let names: Vec<&str> = attest.as_array().unwrap().iter().map(|a| a["image"].as_str().unwrap()).collect();
    let pushed: Vec<&str> =
        published.as_array().unwrap().iter().map(|p| p["image"].as_str().unwrap()).collect();
    assert_eq!(names, pushed, "{output}");
    assert_eq!(attest[0]["repository"], format!("{reg}/base"));
    assert_eq!(attest[0]["digest"], digest);
    assert_eq!(attest[0]["sbom"], "base.spdx.json");
    assert_eq!(attest[0]["registry"], reg.split('/').next().unwrap());
    // The digest is the one the registry holds (the fake docker's push put it there).
    let held = std::fs::read_to_string(f.docker.registry_file()).unwrap();
    assert!(
        held.lines().any(|l| l.starts_with(&format!("{reg}/base:latest ")) && l.ends_with(digest)),
        "{held}"
    );
    let summary = f.file("summary.md");
    assert!(summary.contains(&format!("| base | `{reg}/base:v1.0.0_12.3`<br>`{reg}/base:v1.0.0`<br>`{reg}/base:latest` | `{digest}` | pushed |")), "{summary}");
    assert!(
        summary.contains("| quiet |") && summary.contains("not pushed: push = false in images.toml"),
        "{summary}"
    );
}

#[test]
fn ci_main_on_schedule_pulls_without_cache() {
    let f = Fixture::new("ci");
    let out = run_in_actions(&f, &["ci-main"], &[("GITHUB_EVENT_NAME", "schedule")]).ok();
    let builds = f.docker.calls_of("build");
    let of = |name: &str| builds.iter().find(|b| b.iter().any(|a| a.ends_with(name))).unwrap().clone();
    // The base is pulled before anything builds; no build pulls by itself, and the child
    // builds on this run's base.
    assert_eq!(f.docker.calls_of("pull"), [["pull", "base:1"]]);
    assert_eq!(&of("Dockerfile-base")[..3], ["build", "--force-rm", "--no-cache"]);
    assert_eq!(&of("Dockerfile-child")[..3], ["build", "--force-rm", "--no-cache"]);
    assert!(out.all().contains("::notice::scheduled run"), "{}", out.stdout);
}

#[test]
fn ci_main_logs_out_after_a_failure_and_reports_it() {
    let f = Fixture::new("ci");
    let env = [("GITHUB_TOKEN", TOKEN), ("FAKE_FAIL_BUILD", "Dockerfile-child")];
    let out = run_in_actions(&f, &["ci-main"], &env).fails();
    assert!(f.docker.calls_of("push").is_empty());
    assert_eq!(f.commands().last().unwrap(), &format!("logout {}", f.registry.host()));
    assert!(out.all().contains("::error::build of child"), "{}", out.stdout);
    // The annotation carries docker's cause, not only an exit status.
    assert!(
        out.stderr.contains("::error::build of child failed")
            && out.stderr.contains("returned a non-zero code: 1"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.all().matches("::error::").count(),
        1,
        "one annotation, not one per log line:\n{}",
        out.all()
    );
    let summary = f.file("summary.md");
    assert!(summary.contains("**Failed:** build of child"), "{summary}");
    assert!(summary.contains("| base |") && summary.contains("not pushed: the run failed"), "{summary}");
    // What was built is described (its SBOM); nothing was pushed, so nothing is attested.
    let output = f.file("output.txt");
    assert!(output.ends_with("published=[]\nattest=[]\n"), "a failed run attests nothing: {output}");
}

/// What a build prints reaches the runner as text: a Dockerfile that echoes `::error::` or
/// `::endgroup::` cannot make annotations or close the log group, live or captured.
#[test]
fn build_output_cannot_issue_workflow_commands() {
    for jobs in ["1", "3"] {
        let f = Fixture::new("ci");
        let injected = "::error::injected by a Dockerfile\n::endgroup::\n::add-mask::x";
        let out = run_in_actions(&f, &["ci-pr", "--jobs", jobs], &[("FAKE_BUILD_OUTPUT", injected)]).ok();
        // Walk the output as the runner does: commands are off between `::stop-commands::T`
        // and `::T::`.
        let (mut off, mut groups, mut ends, mut shown) = (None::<String>, 0, 0, 0);
        for line in out.stdout.lines() {
            if let Some(end) = &off {
                if line == end {
                    off = None;
                } else if line == "::error::injected by a Dockerfile" {
                    shown += 1;
                }
                continue;
            }
            if let Some(token) = line.strip_prefix("::stop-commands::") {
                off = Some(format!("::{token}::"));
            }
            assert!(
                !line.contains("injected") && !line.starts_with("::add-mask::"),
                "jobs {jobs}: `{line}` reached the runner as a command:\n{}",
                out.stdout
            );
            groups += usize::from(line.starts_with("::group::"));
            ends += usize::from(line == "::endgroup::");
        }
        assert_eq!(shown, 3, "jobs {jobs}: each of the 3 builds' output is shown, as text:\n{}", out.stdout);
        assert_eq!(groups, ends, "jobs {jobs}: a group was closed by the build's output:\n{}", out.stdout);
        assert!(off.is_none(), "jobs {jobs}: commands were never turned back on");
    }
}

/// A build stopped mid-line (its time limit, a progress bar) still hands the runner its
/// commands back: the resume token starts a line.
#[test]
fn a_build_cut_off_mid_line_turns_workflow_commands_back_on() {
    let f = Fixture::new("ci");
    let env =
        [("FAKE_BUILD_PARTIAL", "downloading 42%"), ("FAKE_BUILD_SLEEP", "10"), ("XTASK_BUILD_TIMEOUT", "1")];
    let out = run_in_actions(&f, &["ci-pr", "--jobs", "1"], &env).fails();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines.iter().position(|l| l.contains("downloading 42%")).expect("the partial line is shown");
    let token = lines[..at]
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("::stop-commands::"))
        .expect("commands are turned off");
    assert_eq!(lines[at], "downloading 42%", "{}", out.stdout);
    assert_eq!(lines[at + 1], format!("::{token}::"), "{}", out.stdout);
}

#[test]
fn ci_main_outside_actions_needs_a_build_id() {
    let f = Fixture::new("ci");
    let mut cmd = xtask();
    cmd.args(["ci-main", "--inventory"]).arg(&f.inventory).env("DOCKER", f.docker.program());
    let out = run(&mut cmd).fails();
    assert!(out.stderr.contains("pass --build-id ID"), "{}", out.stderr);
    let mut cmd = xtask();
    cmd.args(["ci-main", "--build-id", "5", "--dry-run", "--inventory"]).arg(&f.inventory);
    let out = run(&mut cmd).ok();
    assert!(
        out.stdout.lines().any(|l| l == format!("docker push {}/child:v1.0.0_5", f.reg())),
        "{}",
        out.stdout
    );
    assert!(f.docker.calls().is_empty());
}

fn cleanup(server: &OneShotHttp, token: Option<&str>) -> (Run, Fixture) {
    let f = Fixture::new("ci");
    let text = std::fs::read_to_string(&f.inventory).unwrap().replace(&f.reg(), "ghcr.io/cfpb/regtech/sbl");
    std::fs::write(&f.inventory, text).unwrap();
    let mut cmd = xtask();
    cmd.args(["cleanup-test-package", "--inventory"]).arg(&f.inventory).env("GITHUB_API_URL", &server.url);
    if let Some(token) = token {
        cmd.env("GH_ADMIN_TOKEN", token);
    }
    (run(&mut cmd), f)
}

#[test]
fn cleanup_deletes_the_package_with_the_token_on_stdin() {
    let server = OneShotHttp::start(204, "");
    let (out, _f) = cleanup(&server, Some("admin-T0KEN"));
    let out = out.ok();
    let request = server.request();
    assert!(
        request.starts_with("DELETE /orgs/cfpb/packages/container/regtech%2Fsbl%2Ftest HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("Authorization: Bearer admin-T0KEN\r\n"), "{request}");
    assert!(request.contains("X-GitHub-Api-Version: 2022-11-28"), "{request}");
    assert!(out.stdout.contains("deleted container package regtech/sbl/test of cfpb"), "{}", out.stdout);
    assert!(!out.all().contains("admin-T0KEN"));
}

#[test]
fn cleanup_explains_401_403_and_404() {
    for (status, expected) in
        [(401, "invalid or expired"), (403, "delete:packages scope"), (404, "already deleted")]
    {
        let server = OneShotHttp::start(status, "{\"message\":\"no\"}");
        let (out, _f) = cleanup(&server, Some("admin-T0KEN"));
        let out = out.fails();
        assert!(out.stderr.contains(expected), "{status}: {}", out.stderr);
        assert!(!out.all().contains("admin-T0KEN"));
        server.request();
    }
}

#[test]
fn cleanup_without_a_token_sends_nothing() {
    let f = Fixture::new("ci");
    let text = std::fs::read_to_string(&f.inventory).unwrap().replace(&f.reg(), "ghcr.io/cfpb/regtech/sbl");
    std::fs::write(&f.inventory, text).unwrap();
    let mut cmd = xtask();
    cmd.args(["cleanup-test-package", "--inventory"])
        .arg(&f.inventory)
        .env("GITHUB_API_URL", "http://127.0.0.1:9");
    let out = run(&mut cmd).fails();
    assert!(out.stderr.contains("GH_ADMIN_TOKEN is not set"), "{}", out.stderr);
    let mut cmd = xtask();
    cmd.args(["cleanup-test-package", "--dry-run", "--inventory"])
        .arg(&f.inventory)
        .env("GITHUB_API_URL", "http://127.0.0.1:9");
    let out = run(&mut cmd).ok();
    assert_eq!(out.stdout, "DELETE http://127.0.0.1:9/orgs/cfpb/packages/container/regtech%2Fsbl%2Ftest\n");
}

/// An image pushed before the run fails is published: it gets its SBOM and is in the `attest`
/// output (the workflow attests it), while the image whose push failed is not.
#[test]
fn a_run_that_fails_after_pushing_an_image_still_attests_it() {
    let f = Fixture::new("ci");
    let out = run_in_actions(
        &f,
        &["ci-main"],
        &[("FAKE_PUSH_FAIL", "child:v1.0.0_12.3"), ("FAKE_PUSH_MESSAGE", "denied")],
    )
    .fails();
    assert!(out.stderr.contains("child"), "{}", out.stderr);
    let output = f.file("output.txt");
    let json = output.lines().find_map(|l| l.strip_prefix("attest=")).expect(&output);
    let attest: serde_json::Value = serde_json::from_str(json).unwrap();
    let names: Vec<&str> = attest.as_array().unwrap().iter().map(|a| a["image"].as_str().unwrap()).collect();
    assert_eq!(names, ["base"], "{output}\n{}", out.stdout);
    assert!(output.contains("sbom-dir="), "the SBOM of what was pushed is kept: {output}");
}

/// ci-main publishes: a pull request's event never gets it to run.
#[test]
fn ci_main_refuses_to_run_for_a_pull_request() {
    let f = Fixture::new("ci");
    for event in ["pull_request", "pull_request_target"] {
        let out = run_in_actions(&f, &["ci-main"], &[("GITHUB_EVENT_NAME", event)]).fails();
        assert!(out.stderr.contains(&format!("does not run for a {event} event")), "{}", out.stderr);
        assert!(f.docker.calls_of("build").is_empty() && f.pushes().is_empty());
    }
}
