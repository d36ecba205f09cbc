//! The rules on who may do what: nothing granted to the whole workflow, each job only what it
//! needs, and attestations made only by the publishing workflow's attest job, of what ci-main
//! reported pushing, failing the run when they fail.

use super::entries::Entry;
use super::Contract;

/// The actions that make attestations (the last two are wrappers over the first).
const ATTEST_ACTIONS: [&str; 3] =
    ["actions/attest@", "actions/attest-build-provenance@", "actions/attest-sbom@"];

/// Grants no job needs here.
const NEVER: [(&str, &str); 2] = [("contents", "write"), ("actions", "write")];

/// What the attest job may hold, and nothing else: signing, storing, pushing the attestations
/// beside the image, and reading the SBOMs the publish job kept (also on a re-run).
const ATTEST_GRANTS: [(&str, &str); 5] = [
    ("id-token", "write"),
    ("attestations", "write"),
    ("packages", "write"),
    ("actions", "read"),
    ("contents", "read"),
];

/// One job: its name, first line, indentation and entries.
struct Job<'a> {
    name: &'a str,
    line: usize,
    indent: usize,
    entries: &'a [Entry],
}

impl Job<'_> {
    /// Its `permissions:` grants: (key, value) each.
    fn grants(&self) -> Vec<(&str, &str)> {
        let Some(at) =
            self.entries.iter().position(|e| e.key == "permissions" && e.indent == self.indent + 2)
        else {
            return Vec::new();
        };
        let block = self.entries[at].indent;
        self.entries[at + 1..]
            .iter()
            .take_while(|e| e.indent > block)
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect()
    }

    fn attest_steps(&self) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.key == "uses" && is_attest(&e.value)).collect()
    }
}

fn is_attest(uses: &str) -> bool {
    let uses = uses.to_ascii_lowercase();
    ATTEST_ACTIONS.iter().any(|a| uses.starts_with(a)) || uses.contains("/attest")
}

/// The top-level entries under `key` (one level down).
fn top_level<'a>(entries: &'a [Entry], key: &str) -> Option<&'a [Entry]> {
    let at = entries.iter().position(|e| e.indent == 0 && e.key == key)?;
    let end = entries[at + 1..].iter().position(|e| e.indent == 0).map_or(entries.len(), |p| at + 1 + p);
    Some(&entries[at..end])
}

fn jobs(entries: &[Entry]) -> Vec<Job<'_>> {
    let Some(block) = top_level(entries, "jobs") else { return Vec::new() };
    let body = &block[1..];
    let Some(indent) = body.iter().map(|e| e.indent).min() else { return Vec::new() };
    let starts: Vec<usize> =
        body.iter().enumerate().filter(|(_, e)| e.indent == indent).map(|(i, _)| i).collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(body.len());
            Job { name: &body[start].key, line: body[start].line, indent, entries: &body[start + 1..end] }
        })
        .collect()
}

/// Permissions granted to every job at once: the top-level `permissions:` grants nothing.
pub fn top_level_grants(file: &str, entries: &[Entry]) -> Vec<String> {
    let Some(block) = top_level(entries, "permissions") else { return Vec::new() };
    let mut found = Vec::new();
    let head = &block[0];
    if !head.value.is_empty() && head.compact() != "{}" {
        found.push(format!(
            "{file}:{}: the whole workflow is granted `{}`: grant it per job",
            head.line, head.value
        ));
    }
    for e in &block[1..] {
        if e.value == "write" || e.value.ends_with("-all") {
            found.push(format!(
                "{file}:{}: the whole workflow is granted `{}: {}`: keep `permissions: {{}}` at the top and grant it \
                 to the job that needs it",
                e.line, e.key, e.value
            ));
        }
    }
    found
}

/// Triggers the publishing workflow must not have: a pull request (or another workflow that
/// pull requests run) would publish and attest; and pushes only to main.
pub fn trigger_problems(contract: &Contract, entries: &[Entry]) -> Vec<String> {
    let file = contract.file;
    let Some(block) = top_level(entries, "on") else { return Vec::new() };
    let mut found = Vec::new();
    let triggers: Vec<&Entry> =
        block[1..].iter().filter(|e| e.indent == block.get(1).map_or(2, |f| f.indent)).collect();
    for t in triggers.iter().filter(|t| contract.forbidden_triggers.contains(&t.key.as_str())) {
        found.push(format!(
            "{file}:{}: `{}` would run the publishing workflow for what is not main: it publishes and attests; \
             pull requests run build_images.yml",
            t.line, t.key
        ));
    }
    if contract.attests {
        let branches = block.iter().filter(|e| e.key == "branches").map(|e| e.compact()).collect::<Vec<_>>();
        if branches.iter().any(|b| b != "[main]") {
            found.push(format!("{file}: `push:` publishes from main only: write `branches: [main]`"));
        }
    }
    found
}

/// The rules for jobs and attestations: none in a workflow that pull requests run; in the
/// publishing workflow, each one of a digest ci-main reported pushing, from a job that alone
/// holds the right to sign, and whose failure fails the run.
pub fn job_problems(contract: &Contract, entries: &[Entry]) -> Vec<String> {
    let file = contract.file;
    let mut problems = Vec::new();
    let jobs = jobs(entries);
    if contract.attests && !jobs.iter().any(|j| !j.attest_steps().is_empty()) {
        problems.push(format!(
            "{file}: nothing is attested: each image published needs its build provenance and SBOM attested \
             (actions/attest, by the digest ci-main reports)"
        ));
    }
    for job in &jobs {
        let grants = job.grants();
        for (key, value) in grants.iter().filter(|g| NEVER.contains(g)) {
            problems.push(format!(
                "{file}:{}: job `{}` is granted `{key}: {value}`, which nothing here needs",
                job.line, job.name
            ));
        }
        let steps = job.attest_steps();
        if steps.is_empty() {
            for what in ["id-token", "attestations"] {
                if grants.iter().any(|(k, v)| *k == what && *v == "write") {
                    problems.push(format!(
                        "{file}:{}: job `{}` attests nothing: drop `{what}: write`",
                        job.line, job.name
                    ));
                }
            }
            continue;
        }
        if !contract.attests {
            problems.push(format!(
                "{file}:{}: an attestation in a workflow that pull requests run: only what main publishes is attested",
                steps[0].line
            ));
            continue;
        }
        problems.extend(attest_job_problems(file, job, &grants, steps.len()));
    }
    problems
}

fn attest_job_problems(file: &str, job: &Job<'_>, grants: &[(&str, &str)], steps: usize) -> Vec<String> {
    let mut problems = Vec::new();
    for what in ["id-token", "attestations"] {
        if !grants.iter().any(|(k, v)| *k == what && *v == "write") {
            problems
                .push(format!("{file}:{}: job `{}` attests, and needs `{what}: write`", job.line, job.name));
        }
    }
    for (key, value) in grants.iter().filter(|g| !ATTEST_GRANTS.contains(g)) {
        problems.push(format!(
            "{file}:{}: job `{}` is granted `{key}: {value}`, more than attesting needs",
            job.line, job.name
        ));
    }
    let mut pushed = 0;
    for e in job.entries {
        let wanted = match e.key.as_str() {
            "subject-digest" => "${{ matrix.image.digest }}",
            "subject-name" => "${{ matrix.image.repository }}",
            "sbom-path" => "sbom/${{ matrix.image.sbom }}",
            "image" if e.indent > job.indent + 2 => "${{ fromJSON(needs.publish.outputs.attest) }}",
            "subject-path" | "subject-checksums" | "include" => "(none: attest by name and digest)",
            "continue-on-error" if e.value != "false" => "(none: a failed attestation fails the run)",
            "if" if matches!(e.compact().as_str(), "false" | "${{false}}") => "(a condition that can hold)",
            "push-to-registry" => {
                pushed += usize::from(e.value == "true");
                continue;
            }
            _ => continue,
        };
        if e.compact() != wanted.replace(' ', "") {
            problems.push(format!(
                "{file}:{}: `{}: {}` must be `{wanted}`: attest exactly what ci-main reports it pushed (its `attest` \
                 output), and let a failure fail the run",
                e.line, e.key, e.value
            ));
        }
    }
    if pushed < steps {
        problems.push(format!(
            "{file}:{}: job `{}`: every attestation needs `push-to-registry: true`, so that it is stored beside the image",
            job.line, job.name
        ));
    }
    problems
}
