//! What `check` requires of the three workflows: they stay thin wrappers around one command.
//! A line-level reading of our own YAML, enough for these rules without a YAML parser. Pure.

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
}

pub const CONTRACTS: [Contract; 3] = [
    Contract {
        file: "build_images.yml",
        command: "cargo xtask ci-pr",
        triggers: &["pull_request", "workflow_dispatch"],
        required: &[("branches: [main]", "pull requests to main must trigger it")],
        pushes: true,
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
        ],
        pushes: true,
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
    let mut problems = Vec::new();
    let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    let mut runs = 0;
    for (n, line) in &lines {
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
            let value = value.trim();
            let pinned = value
                .split_once('@')
                .is_some_and(|(_, rev)| rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()));
            if !pinned && !value.starts_with("./") {
                problems
                    .push(format!("{file}:{n}: `{value}` must be pinned to a full 40-character commit SHA"));
            }
        }
    }
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
    for (needle, why) in contract.required {
        if !text.contains(needle) {
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
    problems
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
}
