//! What `check` requires of the three workflows: they stay thin wrappers around one command.
//! A line-level reading of our own YAML, enough for these rules without a YAML parser. Pure.

mod entries;
mod jobs;
/// One workflow file's contract.
pub struct Contract {
    pub file: &'static str,
    /// The only command a `run:` step may hold.
    pub command: &'static str,
    /// Keys that must appear under `on:`.
    pub triggers: &'static [&'static str],
    /// Other text the file must hold, with the reason shown when it does not.
    pub required: &'static [(&'static str, &'static str)],
    /// Whether its job pushes packages: it needs `packages: write`, and any other must not have it.
    pub pushes: bool,
    /// Whether it attests what it published (build provenance and the SBOM of each image).
    pub attests: bool,
    /// Triggers it must not have.
    pub forbidden_triggers: &'static [&'static str],
}

pub const CONTRACTS: [Contract; 3] = [
    Contract {
        file: "build_images.yml",
        command: "cargo xtask ci-pr",
        triggers: &["pull_request", "workflow_dispatch"],
        required: &[("branches: [main]", "pull requests to main must trigger it")],
        pushes: true,
        attests: false,
        forbidden_triggers: &[],
    },
    Contract {
        file: "build_and_publish_images.yml",
        command: "cargo xtask ci-main",
        triggers: &["push", "schedule", "workflow_dispatch"],
        required: &[
            ("cron: '0 5 * * 0'", "the weekly rebuild runs Sundays at 05:00 UTC"),
            ("concurrency:", "two publishes must never race"),
            ("cancel-in-progress: false", "a publish must not be cancelled half-way through pushing"),
            ("fetch-depth: 0", "an image's inputs are compared with the revision it was published from"),
            ("force:", "a manual run can force publishing what did not change (input `force`)"),
            ("steps.publish.outputs.sbom-dir", "the SBOMs ci-main writes are kept as an artifact"),
            (
                "attest: ${{ steps.publish.outputs.attest }}",
                "the publish job hands on what ci-main says it pushed",
            ),
            (
                "image: ${{ fromJSON(needs.publish.outputs.attest) }}",
                "the attest job attests exactly what ci-main pushed, one image per matrix entry",
            ),
            ("push-to-registry: true", "the attestations are stored beside the image in the registry"),
            ("sbom-path: sbom/${{ matrix.image.sbom }}", "each image's SBOM is attested"),
        ],
        pushes: true,
        attests: true,
        forbidden_triggers: &["pull_request", "pull_request_target", "workflow_call", "workflow_run"],
    },
    Contract {
        file: "tool.yml",
        command: "bash .ci/run",
        triggers: &["pull_request", "push"],
        required: &[(
            "branches: [main]",
            "pull requests to main and pushes to main must run the tool's checks",
        )],
        pushes: false,
        attests: false,
        forbidden_triggers: &[],
    },
];

/// The workflow files a repository may hold: the three of the contracts.
pub fn unknown_workflows(files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            (f.ends_with(".yml") || f.ends_with(".yaml")) && !CONTRACTS.iter().any(|c| c.file == f.as_str())
        })
        .map(|f| {
            let known: Vec<&str> = CONTRACTS.iter().map(|c| c.file).collect();
            format!(
                "{f}: a workflow outside the contract (the workflows are {}): fold it into the tool",
                known.join(", ")
            )
        })
        .collect()
}

/// Problems of the Dependabot configuration: update pull requests for the actions' pinned
/// SHAs and for Cargo.lock.
pub fn dependabot_problems(text: Option<&str>) -> Vec<String> {
    let Some(text) = text else {
        return vec![
            "dependabot.yml is missing: it keeps the actions' pinned SHAs and Cargo.lock updated".into()
        ];
    };
    ["github-actions", "cargo"]
        .iter()
        .filter(|e| !text.contains(&format!("package-ecosystem: {e}")))
        .map(|e| format!("dependabot.yml: no `package-ecosystem: {e}` update"))
        .collect()
}

/// Problems of one workflow's text against its contract, each naming the line where it can.
pub fn problems(contract: &Contract, text: &str) -> Vec<String> {
    let file = contract.file;
    let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    let (mut problems, runs) = line_problems(contract, &lines);
    if runs == 0 {
        problems.push(format!("{file}: no run step; it must run `{}`", contract.command));
    }
    let on_block = block(&lines, "on:");
    for trigger in contract.triggers {
        let found = on_block.iter().any(|l| l.trim().trim_end_matches(':') == *trigger);
        if !found {
            problems.push(format!("{file}: `on:` lacks the `{trigger}` trigger"));
        }
    }
    // Required text counts only where it is not a comment.
    let code: String = text.lines().map(|l| entries::without_comment(l).to_string() + "\n").collect();
    for (needle, why) in contract.required {
        if !code.contains(needle) {
            problems.push(format!("{file}: `{needle}` is missing: {why}"));
        }
    }
    if !lines.iter().any(|(_, l)| l.trim_start().starts_with("RUSTUP_TOOLCHAIN:")) {
        problems.push(format!(
            "{file}: no `RUSTUP_TOOLCHAIN:` in `env:`; pin the Rust toolchain so a new release cannot change what passes"
        ));
    }
    if !lines.iter().any(|(_, l)| l.starts_with("permissions:")) {
        problems.push(format!(
            "{file}: no top-level `permissions:`; grant nothing by default (`permissions: {{}}`)"
        ));
    }
    match (contract.pushes, text.contains("packages: write")) {
        (true, false) => problems.push(format!("{file}: the job needs `packages: write` to push")),
        (false, true) => problems.push(format!("{file}: the job pushes nothing: drop `packages: write`")),
        _ => {}
    }
    let entries = entries::entries(text);
    problems.extend(jobs::top_level_grants(file, &entries));
    problems.extend(jobs::trigger_problems(contract, &entries));
    problems.extend(jobs::job_problems(contract, &entries));
    problems
}

/// The rules each line is held to (runner, permissions, triggers, run steps, pinned actions),
/// and how many run steps there are.
fn line_problems(contract: &Contract, lines: &[(usize, &str)]) -> (Vec<String>, usize) {
    let file = contract.file;
    let mut problems = Vec::new();
    let mut runs = 0;
    for (n, line) in lines {
        if let Some(label) = line.trim().strip_prefix("runs-on:") {
            if label.trim().trim_matches(['"', '\'']).ends_with("-latest") {
                problems.push(format!(
                    "{file}:{n}: `runs-on:{label}` moves to a new runner image under the workflow: pin one (ubuntu-24.04)"
                ));
            }
        }
        if line.contains("write-all") {
            problems.push(format!(
                "{file}:{n}: `write-all` grants every permission: grant only what the job needs"
            ));
        }
        if line.trim_start().starts_with("pull_request_target") {
            problems.push(format!(
                "{file}:{n}: `pull_request_target` runs a pull request's workflow with the base repository's \
                 secrets and a write token: use `pull_request`"
            ));
        }
        let code = line.split(" #").next().unwrap_or("").trim();
        let code = code.strip_prefix("- ").unwrap_or(code);
        if let Some(value) = code.strip_prefix("run:") {
            runs += 1;
            if value.trim() != contract.command {
                problems.push(format!(
                    "{file}:{n}: a run step may only be `{}` (found `{}`): put the logic in the tool",
                    contract.command,
                    value.trim()
                ));
            }
        }
        if let Some(value) = code.strip_prefix("uses:") {
            let value = value.trim().trim_matches(['"', '\'']);
            let pinned = value
                .split_once('@')
                .is_some_and(|(_, rev)| rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()));
            if !pinned && !value.starts_with("./") {
                problems
                    .push(format!("{file}:{n}: `{value}` must be pinned to a full 40-character commit SHA"));
            }
        }
    }
    (problems, runs)
}

/// The action that registers QEMU's emulators on a runner.
const SETUP_QEMU: &str = "docker/setup-qemu-action@";

/// An image workflow must let the runner (GitHub's ubuntu-24.04, amd64) build the `foreign`
/// platforms the inventory asks for: QEMU set up before the tool runs.
pub fn emulation_problems(contract: &Contract, text: &str, foreign: &[String]) -> Vec<String> {
    let builds = contract.command.starts_with("cargo xtask ci-");
    if !builds || foreign.is_empty() {
        return Vec::new();
    }
    let found = entries::entries(text);
    let setup =
        found.iter().position(|e| e.key == "uses" && e.value.to_ascii_lowercase().starts_with(SETUP_QEMU));
    let run = found.iter().position(|e| e.key == "run" && e.value == contract.command);
    match (setup, run) {
        (Some(s), Some(r)) if s < r => Vec::new(),
        _ => vec![format!(
            "{}: images.toml builds for {}, which GitHub's amd64 runner can only emulate: run `{SETUP_QEMU}<sha>` \
             before `{}`",
            contract.file,
            foreign.join(", "),
            contract.command
        )],
    }
}

/// The indented lines under a top-level key.
fn block<'a>(lines: &[(usize, &'a str)], key: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for (_, line) in lines {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            inside = line.trim() == key;
            continue;
        }
        if inside && line.len() - line.trim_start().len() == 2 {
            out.push(*line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_workflow(name: &str) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        std::fs::read_to_string(root.join(".github/workflows").join(name)).unwrap()
    }

    #[test]
    fn only_the_contracts_workflows_and_a_complete_dependabot() {
        let files = ["build_images.yml".to_string(), "extra.yml".to_string(), "README.md".to_string()];
        assert_eq!(unknown_workflows(&files).len(), 1);
        assert!(unknown_workflows(&files)[0].starts_with("extra.yml: a workflow outside the contract"));
        assert_eq!(dependabot_problems(None).len(), 1);
        let p = dependabot_problems(Some("updates:\n  - package-ecosystem: cargo\n"));
        assert_eq!(p, ["dependabot.yml: no `package-ecosystem: github-actions` update"]);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let ours = std::fs::read_to_string(root.join(".github/dependabot.yml")).unwrap();
        assert!(dependabot_problems(Some(&ours)).is_empty());
    }

    /// The repository's own workflows keep their contract.
    #[test]
    fn the_repository_workflows_pass() {
        for contract in &CONTRACTS {
            assert_eq!(problems(contract, &repo_workflow(contract.file)), Vec::<String>::new());
        }
    }

    #[test]
    fn each_rule_can_fail() {
        let pr = &CONTRACTS[0];
        let good = repo_workflow(pr.file);
        let p = problems(pr, &good.replace("run: cargo xtask ci-pr", "run: docker build ."));
        assert!(p.iter().any(|p| p.contains("a run step may only be `cargo xtask ci-pr`")), "{p:?}");
        let p = problems(pr, &good.replace("@34e114876b0b11c390a56381ad16ebd13914f8d5", "@v4"));
        assert!(p.iter().any(|p| p.contains("must be pinned")), "{p:?}");
        let p = problems(pr, &good.replace("  workflow_dispatch:\n", ""));
        assert!(p.iter().any(|p| p.contains("lacks the `workflow_dispatch` trigger")), "{p:?}");
        let p = problems(pr, &good.replace("permissions: {}\n", ""));
        assert!(p.iter().any(|p| p.contains("top-level `permissions:`")), "{p:?}");

        let main = &CONTRACTS[1];
        let good = repo_workflow(main.file);
        let p = problems(main, &good.replace("'0 5 * * 0'", "'0 5 * * 1'"));
        assert!(p.iter().any(|p| p.contains("Sundays at 05:00")), "{p:?}");
        let p = problems(main, &good.replace("  schedule:\n", "  scheduled:\n"));
        assert!(p.iter().any(|p| p.contains("`schedule` trigger")), "{p:?}");
        let p = problems(main, &good.replace("cancel-in-progress: false", "cancel-in-progress: true"));
        assert!(p.iter().any(|p| p.contains("half-way")), "{p:?}");
        let p = problems(
            main,
            &good.replace(
                "        run: cargo xtask ci-main\n",
                "        run: |\n          cargo xtask ci-main\n",
            ),
        );
        assert!(p.iter().any(|p| p.contains("found `|`")), "{p:?}");

        let tool = &CONTRACTS[2];
        let good = repo_workflow(tool.file);
        let p = problems(tool, &good.replace("run: bash .ci/run", "run: cargo test"));
        assert!(p.iter().any(|p| p.contains("a run step may only be `bash .ci/run`")), "{p:?}");
        let p = problems(tool, &good.replace("contents: read", "contents: read\n      packages: write"));
        assert!(p.iter().any(|p| p.contains("drop `packages: write`")), "{p:?}");
        let p = problems(tool, &good.replace("contents: read", "write-all"));
        assert!(p.iter().any(|p| p.contains("`write-all` grants every permission")), "{p:?}");
        let p = problems(tool, &good.replace("  pull_request:\n", "  pull_request_target:\n"));
        assert!(p.iter().any(|p| p.contains("use `pull_request`")), "{p:?}");
        let p = problems(tool, &good.replace("  push:\n", "  release:\n"));
        assert!(p.iter().any(|p| p.contains("lacks the `push` trigger")), "{p:?}");
        let p = problems(tool, &good.replace("runs-on: ubuntu-24.04", "runs-on: 'ubuntu-latest'"));
        assert!(p.iter().any(|p| p.contains("moves to a new runner image under the workflow")), "{p:?}");
        let p = problems(tool, &good.replace("  RUSTUP_TOOLCHAIN: \"1.95.0\"\n", ""));
        assert!(p.iter().any(|p| p.contains("pin the Rust toolchain")), "{p:?}");
    }

    /// Attestations: only the publishing workflow makes them, of what ci-main pushed, from a
    /// job that alone may sign; nothing is granted to the whole workflow.
    #[test]
    fn each_attestation_rule_can_fail() {
        let main = &CONTRACTS[1];
        let good = repo_workflow(main.file);
        let found = |text: &str, what: &str| {
            let p = problems(main, text);
            assert!(p.iter().any(|p| p.contains(what)), "no `{what}` in {p:?}");
        };
        found(
            &good.replace("permissions: {}\n", "permissions:\n  contents: write\n"),
            "the whole workflow is granted",
        );
        found(
            &good.replace("permissions: {}\n", "permissions: write-all\n"),
            "the whole workflow is granted",
        );
        found(&good.replace("@1e69f48acb82d1966a394da916b4c1698aa569d6 # v4.2.2", "@v4"), "must be pinned");
        found(
            &good.replacen(
                "subject-digest: ${{ matrix.image.digest }}",
                "subject-digest: ${{ steps.build.outputs.digest }}",
                1,
            ),
            "must be `${{ matrix.image.digest }}`",
        );
        found(
            &good.replacen("subject-name: ${{ matrix.image.repository }}", "subject-name: ghcr.io/x/y", 1),
            "subject-name",
        );
        found(
            &good.replace(
                "image: ${{ fromJSON(needs.publish.outputs.attest) }}",
                "image: ${{ fromJSON(inputs.images) }}",
            ),
            "attests exactly what ci-main pushed",
        );
        found(
            &good.replace("      id-token: write # the OIDC token Sigstore signs with\n", ""),
            "needs `id-token: write`",
        );
        found(
            &good.replace("      attestations: write # stores the attestations in GitHub's API\n", ""),
            "needs `attestations: write`",
        );
        found(
            &good.replace("      contents: read\n", "      contents: read\n      id-token: write\n"),
            "attests nothing: drop `id-token: write`",
        );
        let without: String = good.split("\n  attest:\n").next().unwrap().to_string();
        found(&without, "nothing is attested");
        let pr = &CONTRACTS[0];
        let attesting_pr = repo_workflow(pr.file)
            + "  attest:\n    runs-on: ubuntu-24.04\n    permissions:\n      id-token: write\n      attestations: write\n    \
               steps:\n      - uses: actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32 # v4.1.0\n";
        let p = problems(pr, &attesting_pr);
        assert!(p.iter().any(|p| p.contains("an attestation in a workflow that pull requests run")), "{p:?}");
    }

    /// A rule holds however the YAML spells it: quotes, comments, blanks, flow mappings.
    #[test]
    fn spellings_that_mean_the_same_are_judged_the_same() {
        let main = &CONTRACTS[1];
        let good = repo_workflow(main.file);
        let refused = |text: String, what: &str| {
            let p = problems(main, &text);
            assert!(p.iter().any(|p| p.contains(what)), "no `{what}` in {p:?}");
        };
        let top = |grant: &str| good.replace("permissions: {}\n", &format!("permissions:\n  {grant}\n"));
        refused(top("id-token: \"write\""), "the whole workflow is granted");
        refused(top("'id-token':  write   # later"), "the whole workflow is granted");
        refused(
            good.replace(
                "      contents: read\n      packages: write\n",
                "      contents: read\n      packages: write\n      id-token: write # later\n",
            ),
            "attests nothing",
        );
        refused(
            good.replacen(
                "    permissions:\n      contents: read\n      packages: write\n",
                "    permissions: { contents: read, packages: write, attestations: \"write\" }\n",
                1,
            ),
            "attests nothing: drop `attestations: write`",
        );
        refused(
            good.replacen("subject-digest: ${{ matrix.image.digest }}", "\"subject-digest\": sha256:0123", 1),
            "must be `${{ matrix.image.digest }}`",
        );
        refused(
            good.replacen("          push-to-registry: true\n", "          push-to-registry: false\n", 1),
            "push-to-registry: true",
        );
        refused(
            good.replace(
                "    timeout-minutes: 30\n",
                "    timeout-minutes: 30\n    continue-on-error: true\n",
            ),
            "let a failure fail the run",
        );
        refused(
            good.replace(
                "image: ${{ fromJSON(needs.publish.outputs.attest) }}",
                "image: ${{ fromJSON('[]') }} # image: ${{ fromJSON(needs.publish.outputs.attest) }}",
            ),
            "fromJSON(needs.publish.outputs.attest)",
        );
        refused(
            good.replace("  workflow_dispatch:\n", "  workflow_dispatch:\n  pull_request:\n"),
            "`pull_request` would run the publishing workflow",
        );
        refused(
            good.replace("  workflow_dispatch:\n", "  workflow_dispatch:\n  workflow_call:\n"),
            "`workflow_call`",
        );
        refused(good.replacen("branches: [main]", "branches: [\"**\"]", 1), "publishes from main only");
        refused(
            good.replace(
                "      actions: read # the SBOMs",
                "      contents: write\n      actions: read # the SBOMs",
            ),
            "`contents: write`",
        );
        let pr = &CONTRACTS[0];
        let attesting = repo_workflow(pr.file)
            + "  sneak:\n    runs-on: ubuntu-24.04\n    permissions: { id-token: write, attestations: write }\n    steps:\n      \
               - { uses: 'Actions/Attest@1e69f48acb82d1966a394da916b4c1698aa569d6' }\n";
        let p = problems(pr, &attesting);
        assert!(p.iter().any(|p| p.contains("an attestation in a workflow that pull requests run")), "{p:?}");

        // The same rules, spelled otherwise, pass.
        let respelled = good
            .replace(
                "subject-digest: ${{ matrix.image.digest }}",
                "subject-digest: ${{matrix.image.digest}} # from ci-main",
            )
            .replace(
                "uses: actions/attest@1e69f48acb82d1966a394da916b4c1698aa569d6",
                "uses: 'actions/attest@1e69f48acb82d1966a394da916b4c1698aa569d6'",
            )
            .replace(
                "      id-token: write # the OIDC token Sigstore signs with\n",
                "      id-token: 'write'\n",
            );
        assert_eq!(problems(main, &respelled), Vec::<String>::new());
    }

    /// Images built for arm64 need QEMU on GitHub's amd64 runner, set up before the tool runs.
    #[test]
    fn a_foreign_platform_needs_qemu_before_the_tool() {
        let arm = ["linux/arm64".to_string()];
        for contract in &CONTRACTS[..2] {
            let good = repo_workflow(contract.file);
            assert_eq!(emulation_problems(contract, &good, &arm), Vec::<String>::new(), "{}", contract.file);
            let without: String = good
                .lines()
                .filter(|l| !l.contains("setup-qemu-action") && !l.contains("platforms: arm64"))
                .map(|l| format!("{l}\n"))
                .collect();
            let p = emulation_problems(contract, &without, &arm);
            assert!(p.iter().any(|p| p.contains("builds for linux/arm64")), "{p:?}");
            assert!(emulation_problems(contract, &without, &[]).is_empty(), "amd64 only needs nothing");
        }
        assert!(emulation_problems(&CONTRACTS[2], &repo_workflow(CONTRACTS[2].file), &arm).is_empty());
    }
}
