//! ci-pr and ci-main: the two workflows, composed from the inventory, the planner, the
//! executor and the GitHub Actions reporting.

use anyhow::{bail, Context};

use crate::cmd::common::{chosen_images, require_base_support, run_or_show, Ctx, Prepared};
use crate::cmd::publish::publish_plan;
use crate::cmd::sboms::sbom_name;
use crate::flags;
use crate::flags::BuildArgs;
use crate::model::inventory::{Image, Inventory};
use crate::model::oci::registry_host;
use crate::model::platform::Platform;
use crate::model::step::Step;
use crate::model::tags::{published_references, repository, BuildId};
use crate::model::text;
use crate::plan::{self, Plan};
use crate::run::{ExecOptions, Pushed, Report};
use crate::sys::docker::Secret;
use crate::sys::gha;

impl flags::CiPr {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let inventory = ctx.inventory()?;
        if inventory.test_package.is_none() {
            bail!(
                "{}: there is no [test_package]: ci-pr pushes it to prove the workflow may write packages",
                inventory.path.display()
            );
        }
        // A pull request from a fork or from Dependabot gets a workflow token that may only read:
        // it cannot prove write access, so it does not try.
        let read_only = read_only_pull_request(&ctx.env)?;
        let login = match read_only {
            Some(_) => None,
            None => WorkflowLogin::from_env(ctx, &inventory)?,
        };
        let (images, scope) = pull_request_images(ctx, &inventory, self.changed_since.as_deref())?;
        require_base_support(ctx, &images)?;
        let prepared = Prepared::new(ctx, &inventory, images, &self.build)?;
        let exec = prepared.exec;
        let plans = plan::pull_request_plans(&inventory, &prepared.inputs(), login.is_some())?;
        if self.build.dry_run {
            print_dry_run(ctx, &inventory, login.as_ref(), &plans, exec, &self.build);
            return Ok(());
        }
        ctx.docker.check_engine()?;
        if login.is_none() {
            let why = read_only.unwrap_or_else(|| "GITHUB_TOKEN is not set".to_string());
            ctx.log.warning(&format!(
                "{why}: the test-package push that proves write access was skipped; building {scope} anyway"
            ));
        }
        let (reports, result) =
            with_login(ctx, login.as_ref(), || run_or_show(ctx, &inventory, &plans, exec, &self.build));
        let mut rows = Vec::new();
        for (plan, report) in plans.iter().zip(&reports) {
            let seconds = |image: &str| report.seconds(image);
            rows.extend(plan.builds.iter().map(|b| {
                Row {
                    image: b.image.clone(),
                    tags: plan
                        .publications
                        .iter()
                        .filter(|p| p.image == b.image)
                        .flat_map(|p| &p.targets)
                        .filter(|t| t.push.is_none())
                        .map(|t| t.reference.clone())
                        .collect(),
                    digest: None,
                    platforms: Vec::new(),
                    status: "built, not pushed (pull request)".into(),
                    seconds: seconds(&b.image),
                }
            }));
            let package = inventory.test_package.as_ref().map_or("", |p| p.name.as_str());
            rows.extend(report.pushed.iter().map(|p| Row {
                image: package.to_string(),
                tags: vec![p.reference.clone()],
                digest: Some(p.digest.clone()),
                platforms: Vec::new(),
                status: "pushed (write-permission probe)".into(),
                seconds: seconds(&p.image),
            }));
        }
        finish(ctx, "ci-pr", &rows, "", result)
    }
}

impl flags::CiMain {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        // ci-main publishes and its workflow attests: never for a pull request's code.
        if let Some(event @ ("pull_request" | "pull_request_target")) = ctx.env.get("GITHUB_EVENT_NAME") {
            bail!(
                "ci-main publishes, and does not run for a {event} event: pull requests run `cargo xtask ci-pr` \
                 (build_images.yml)"
            );
        }
        let inventory = ctx.inventory()?;
        let build_id = BuildId::require(self.build_id.as_deref(), ctx.actions_run().as_ref())?;
        let scheduled = ctx.env.get("GITHUB_EVENT_NAME") == Some("schedule");
        let forced = self.build.force || dispatched_with_force(&ctx.env)?;
        let flags = BuildArgs {
            pull: self.build.pull || scheduled,
            no_cache: self.build.no_cache || scheduled,
            force: forced,
            ..self.build.clone()
        };
        let selected = plan::select(&inventory, &[])?;
        require_base_support(ctx, &selected)?;
        let prepared = Prepared::new(ctx, &inventory, selected, &flags)?;
        let (images, exec) = (&prepared.images, prepared.exec);
        let plan = publish_plan(ctx, &prepared.inputs(), &build_id, forced)?;
        let login = WorkflowLogin::from_env(ctx, &inventory)?;
        if self.build.dry_run {
            print_dry_run(ctx, &inventory, login.as_ref(), std::slice::from_ref(&plan), exec, &flags);
            return Ok(());
        }
        ctx.docker.check_engine()?;
        if scheduled {
            ctx.log.notice(
                "scheduled run: building with --pull --no-cache so security patches land; images equal to the published ones are not pushed again",
            );
        }
        if forced && !self.build.force {
            ctx.log.notice("manual run with force: every image is published, changed or not");
        }
        for image in images.iter().filter(|i| !i.push) {
            ctx.log.notice(&format!(
                "{}: push = false in images.toml, so it is built and tagged but not pushed",
                image.name
            ));
        }
        let (reports, result) = with_login(ctx, login.as_ref(), || {
            run_or_show(ctx, &inventory, std::slice::from_ref(&plan), exec, &flags)
        });
        let empty = Report::default();
        let report = reports.first().unwrap_or(&empty);
        let mut rows = Vec::new();
        for image in images {
            // An unchanged image keeps what the registry holds: that tag and digest.
            let kept = report.verdicts.get(&image.name).filter(|v| !v.publish);
            let tags = match kept.and_then(|v| v.since.as_ref()) {
                Some(since) => vec![format!("{}:{since}", repository(&inventory.registry, &image.name))],
                None => published_references(&inventory.registry, image, &build_id)?.to_vec(),
            };
            rows.push(Row {
                image: image.name.clone(),
                tags,
                digest: report
                    .digest(&image.name)
                    .map(String::from)
                    .or_else(|| kept.and_then(|v| v.published.clone())),
                platforms: platform_digests(image, report),
                status: push_status(image, report),
                seconds: report.seconds(&image.name),
            });
        }
        let changes = what_changed(images, report);
        write_outputs(ctx, &inventory, images, report, &result)?;
        finish(ctx, "ci-main", &rows, &changes, result)
    }
}

/// The step outputs: what was published, and what the workflow attests. One that cannot be
/// written must not hide why the run failed.
fn write_outputs(
    ctx: &Ctx,
    inventory: &Inventory,
    images: &[&Image],
    report: &Report,
    result: &anyhow::Result<()>,
) -> anyhow::Result<()> {
    let outputs =
        [("published", published_json(images, report)), ("attest", attest_json(inventory, images, report))];
    for (name, value) in outputs {
        match gha::set_output(&ctx.env, name, &value) {
            Err(e) if result.is_err() => ctx.log.warning(&format!("{e:#}")),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// Whether a manual run (workflow_dispatch) asked for `force`: its input, read from the event.
fn dispatched_with_force(env: &crate::sys::env::Env) -> anyhow::Result<bool> {
    if env.get("GITHUB_EVENT_NAME") != Some("workflow_dispatch") {
        return Ok(false);
    }
    let Some(event) = workflow_event(env)? else { return Ok(false) };
    // The event carries a boolean input as a boolean or, in older payloads, as "true".
    Ok(matches!(&event["inputs"]["force"], serde_json::Value::Bool(true))
        || event["inputs"]["force"].as_str() == Some("true"))
}

/// The job summary's section on what each rebuild brought: one short section per image
/// compared with its published image (none when nothing was compared).
fn what_changed(images: &[&Image], report: &Report) -> String {
    if report.verdicts.is_empty() {
        return String::new();
    }
    let mut md = String::from("\n### What changed\n");
    for image in images {
        let Some(verdict) = report.verdicts.get(&image.name) else { continue };
        md.push_str(&format!("\n#### {}\n", image.name));
        for line in &verdict.why {
            md.push_str(&format!("- {}\n", text::markdown(line)));
        }
        // The why line names the first package change; the rest are listed when there are more.
        let diff = &verdict.packages;
        if diff.upgraded.len() + diff.added.len() + diff.removed.len() > 1 {
            let mut all: Vec<String> = diff.upgraded.clone();
            all.extend(diff.added.iter().map(|a| format!("added {a}")));
            all.extend(diff.removed.iter().map(|r| format!("removed {r}")));
            let shown: Vec<String> = all.iter().take(20).map(|l| text::markdown(l)).collect();
            md.push_str(&format!("- package changes: {}", shown.join(", ")));
            if all.len() > 20 {
                md.push_str(&format!(" and {} more", all.len() - 20));
            }
            md.push('\n');
        }
    }
    md
}

/// The images a pull request builds, and how to say which: those affected by its changes,
/// compared with `--changed-since` or else the pull request's base branch. When the base cannot
/// be compared (a shallow checkout, say), every image, with a warning.
fn pull_request_images<'a>(
    ctx: &Ctx,
    inventory: &'a Inventory,
    flag: Option<&str>,
) -> anyhow::Result<(Vec<&'a Image>, &'static str)> {
    let every = "every image";
    let from_base = ctx.env.get("GITHUB_BASE_REF").map(|base| format!("origin/{base}"));
    let Some(reference) = flag.map(String::from).or(from_base) else {
        return Ok((plan::select(inventory, &[])?, every));
    };
    match chosen_images(ctx, inventory, &[], Some(&reference)) {
        Ok(images) => Ok((images.unwrap_or_default(), "the images the change touches")),
        Err(e) if flag.is_none() => {
            ctx.log.warning(&format!("{e:#}; building every image instead"));
            Ok((plan::select(inventory, &[])?, every))
        }
        Err(e) => Err(e),
    }
}

fn push_status(image: &Image, report: &Report) -> String {
    let pushed = report.pushed.iter().filter(|p| p.image == image.name).count();
    if let Some(verdict) = report.verdicts.get(&image.name).filter(|v| !v.publish) {
        return format!("not pushed: {}", verdict.line());
    }
    match (image.push, pushed) {
        (false, _) => "not pushed: push = false in images.toml".into(),
        (true, 3) => "pushed".into(),
        (true, 0) => "not pushed: the run failed".into(),
        (true, n) => format!("partly pushed ({n} of 3 tags): the run failed"),
    }
}

/// `[{"image": ..., "references": [...], "digest": ...}]` for every image whose three tags were
/// all pushed; the digest is the one the registry answered when each tag was read back.
fn published_json(images: &[&Image], report: &Report) -> String {
    let items: Vec<serde_json::Value> = images
        .iter()
        .filter_map(|image| {
            let pushed: Vec<&Pushed> = report.pushed.iter().filter(|p| p.image == image.name).collect();
            (pushed.len() == 3).then(|| {
                let mut item = serde_json::json!({
                    "image": image.name,
                    "references": pushed.iter().map(|p| p.reference.as_str()).collect::<Vec<_>>(),
                    "digest": report.digest(&image.name),
                });
                // An index: each platform's manifest digest beside the index's.
                if !image.platforms.is_empty() {
                    item["platforms"] = serde_json::Value::Object(
                        platform_digests(image, report)
                            .into_iter()
                            .map(|(p, d)| (p.to_string(), d.into()))
                            .collect(),
                    );
                }
                item
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// What the workflow attests (build provenance and the SBOM, .github/workflows): each image
/// this run pushed (all three tags), by its repository without a tag, the digest users pin
/// (the unique tag's, which the version tag and `latest` share; an index's for an image with
/// several platforms) and its SBOM's path in the `sbom-dir` folder, which describes that
/// digest (each platform's manifest, for an index). Also when the run failed after pushing
/// it: it is published. Unchanged images and push = false ones were not pushed.
fn attest_json(inventory: &Inventory, images: &[&Image], report: &Report) -> String {
    let mut items: Vec<serde_json::Value> = Vec::new();
    let fully_pushed = |image: &Image| report.pushed.iter().filter(|p| p.image == image.name).count() == 3;
    for image in images.iter().filter(|i| fully_pushed(i)) {
        let Some(digest) = report.digest(&image.name) else { continue };
        let item = |name: String, digest: &str, sbom: String| {
            serde_json::json!({
                "image": name,
                "registry": registry_host(&inventory.registry),
                "repository": repository(&inventory.registry, &image.name),
                "digest": digest,
                "sbom": sbom,
            })
        };
        if image.platforms.is_empty() {
            if report.sboms.contains(&image.name) {
                items.push(item(image.name.clone(), digest, sbom_name(&image.name, None)));
            }
            continue;
        }
        // The index users pin, attested for its provenance; each platform's manifest with the
        // SBOM that describes it.
        items.push(item(image.name.clone(), digest, String::new()));
        for (platform, digest) in platform_digests(image, report) {
            let key = crate::plan::platforms::key(&image.name, Some(&platform));
            if !report.sboms.contains(&key) {
                continue;
            }
            items.push(item(key, &digest, sbom_name(&image.name, Some(&platform))));
        }
    }
    serde_json::Value::Array(items).to_string()
}

/// The manifest digest each platform of `image` was pushed with.
fn platform_digests(image: &Image, report: &Report) -> Vec<(Platform, String)> {
    image
        .platforms
        .iter()
        .filter_map(|p| Platform::parse(p))
        .filter_map(|p| {
            let digest = report.digest(&crate::plan::platforms::key(&image.name, Some(&p)))?.to_string();
            Some((p, digest))
        })
        .collect()
}

/// Why this run's workflow token may only read, when it is a pull request from a fork or one
/// Dependabot opened (GitHub gives both a read-only GITHUB_TOKEN); read from the event.
fn read_only_pull_request(env: &crate::sys::env::Env) -> anyhow::Result<Option<String>> {
    if env.get("GITHUB_ACTOR") == Some("dependabot[bot]") {
        return Ok(Some(
            "this pull request comes from Dependabot, whose workflow token may only read".into(),
        ));
    }
    let Some(event) = workflow_event(env)? else { return Ok(None) };
    let pull = &event["pull_request"];
    let head = pull["head"]["repo"]["full_name"].as_str();
    let base = pull["base"]["repo"]["full_name"].as_str();
    Ok(match (head, base) {
        (Some(head), Some(base)) if head != base => {
            Some(format!("this pull request comes from the fork {head}, whose workflow token may only read"))
        }
        _ => None,
    })
}

/// The event that started the workflow ($GITHUB_EVENT_PATH), when there is one.
fn workflow_event(env: &crate::sys::env::Env) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(path) = env.get("GITHUB_EVENT_PATH") else { return Ok(None) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the workflow event {path}"))?;
    let event =
        serde_json::from_str(&text).with_context(|| format!("the workflow event {path} is not JSON"))?;
    Ok(Some(event))
}

/// `docker login` with the workflow token, when the job has one.
struct WorkflowLogin {
    host: String,
    user: String,
    token: Secret,
}

impl WorkflowLogin {
    fn from_env(ctx: &Ctx, inventory: &Inventory) -> anyhow::Result<Option<WorkflowLogin>> {
        let Some(token) = ctx.env.get("GITHUB_TOKEN") else { return Ok(None) };
        let user = ctx.env.get("GITHUB_ACTOR").context(
            "GITHUB_TOKEN is set but GITHUB_ACTOR is not: set it to the user the token belongs to",
        )?;
        Ok(Some(WorkflowLogin {
            host: registry_host(&inventory.registry).to_string(),
            user: user.to_string(),
            token: Secret::new(token.to_string()),
        }))
    }
}

/// Runs `work` after logging in (when there is a token) and logs out afterwards, also when the
/// work failed, so credentials never outlive the job on a reused runner.
fn with_login<R: Default>(
    ctx: &Ctx,
    login: Option<&WorkflowLogin>,
    work: impl FnOnce() -> (R, anyhow::Result<()>),
) -> (R, anyhow::Result<()>) {
    if let Some(l) = login {
        if let Err(e) = ctx.docker.login(&l.host, &l.user, &l.token) {
            return (R::default(), Err(e));
        }
        ctx.log.info(&format!("logged in to {} as {}", l.host, l.user));
    }
    let outcome = work();
    if let Some(l) = login {
        if let Err(e) = ctx.docker.logout(&l.host) {
            ctx.log.warning(&format!("docker logout {} failed: {e:#}", l.host));
        }
    }
    outcome
}

fn print_dry_run(
    ctx: &Ctx,
    inventory: &Inventory,
    login: Option<&WorkflowLogin>,
    plans: &[Plan],
    exec: ExecOptions,
    flags: &BuildArgs,
) {
    let program = ctx.docker.program();
    if let Some(l) = login {
        let login = Step::Login { host: l.host.clone(), username: l.user.clone() };
        ctx.log.say(&login.command().display(program));
    }
    let _ = run_or_show(ctx, inventory, plans, exec, flags);
    if let Some(l) = login {
        ctx.log.say(&Step::Logout { host: l.host.clone() }.command().display(program));
    }
}

/// One line of the job summary.
struct Row {
    image: String,
    tags: Vec<String>,
    digest: Option<String>,
    /// For an index: each platform's manifest digest, shown under the index's.
    platforms: Vec<(Platform, String)>,
    status: String,
    seconds: Option<f64>,
}

/// Writes the job summary (in GitHub Actions): the table, then `more`; and hands back the run's
/// result.
fn finish(
    ctx: &Ctx,
    title: &str,
    rows: &[Row],
    more: &str,
    result: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut md =
        format!("### {title}\n\n| Image | Tags | Digest | Pushed | Seconds |\n|---|---|---|---|---|\n");
    for row in rows {
        let tags: Vec<String> = row.tags.iter().map(|t| format!("`{t}`")).collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            row.image,
            tags.join("<br>"),
            row.digest.as_deref().map_or("-".to_string(), |d| {
                let platforms = row.platforms.iter().map(|(p, d)| format!("<br>{p}: `{d}`"));
                format!("`{d}`{}", platforms.collect::<String>())
            }),
            text::markdown(&row.status),
            row.seconds.map_or("-".to_string(), |s| format!("{s:.1}")),
        ));
    }
    if let Err(e) = &result {
        md.push_str(&format!("\n**Failed:** {}\n", text::markdown(&format!("{e:#}").replace('\n', " "))));
    }
    md.push_str(more);
    match gha::append_summary(&ctx.env, &md) {
        Err(e) if result.is_err() => ctx.log.warning(&format!("{e:#}")),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    result
}
