//! What a run says when it stops short: every image's state after the builds, and what the
//! registry holds of each image after a failed publication.

use anyhow::bail;

use super::{Report, State};
use crate::plan::{Build, Plan};
use crate::sys::interrupt::Interrupted;

/// Ok when every image was built and passed its check; otherwise one message with every
/// image's state.
pub(super) fn build_result(
    plan: &Plan,
    state: &[State],
    interrupted: bool,
    program: &str,
) -> anyhow::Result<()> {
    let steps = &plan.builds;
    if state.iter().all(|s| *s == State::Built) {
        return Ok(());
    }
    let each = |pick: &dyn Fn(&Build, &State) -> Option<String>| -> Vec<String> {
        steps.iter().zip(state).filter_map(|(b, s)| pick(b, s)).collect()
    };
    let failed = each(&|b, s| match s {
        State::Failed(reason) if !interrupted => Some(format!("build of {} failed: {reason}", b.image)),
        State::Unchecked(reason) if !interrupted => Some(format!("{} was built, but {reason}", b.image)),
        _ => None,
    });
    let rejected = each(&|b, s| match s {
        State::Rejected(list) => {
            let kept =
                plan.verifications.iter().find(|v| v.image == b.image).map_or(&b.reference, |v| &v.kept_as);
            Some(format!("{list}\n  (kept as {kept} for a look: `{} run -it {kept}`)", program))
        }
        _ => None,
    });
    let built = each(&|b, s| matches!(s, State::Built | State::Unchecked(_)).then(|| b.image.clone()));
    let not_built = each(&|b, s| match s {
        State::Skipped(parent) => Some(format!("{} (needs {parent})", b.image)),
        State::Failed(_) if interrupted => Some(format!("{} (interrupted)", b.image)),
        State::Waiting | State::Running(_) | State::Checking => {
            Some(format!("{} (stopped after the failure)", b.image))
        }
        _ => None,
    });
    let mut message = if interrupted {
        Interrupted.to_string()
    } else if let [one] = failed.as_slice() {
        one.clone()
    } else if !failed.is_empty() {
        format!("{} of {} images failed: {}", failed.len(), steps.len(), failed.join("; "))
    } else if !rejected.is_empty() {
        "the hardening baseline is not met".to_string()
    } else {
        // Unreachable while every parent is either in the plan or built before it.
        "internal error: some builds never became ready".to_string()
    };
    if !rejected.is_empty() {
        if !message.starts_with("the hardening baseline") {
            message.push_str("\nAlso, the hardening baseline is not met");
        }
        message.push_str(&format!(":\n{}", rejected.join("\n")));
    }
    message.push_str("\nNothing was pushed");
    if !built.is_empty() {
        message.push_str(&format!(". Built: {}", built.join(", ")));
    }
    if !not_built.is_empty() {
        message.push_str(&format!(". Not built: {}", not_built.join(", ")));
    }
    bail!("{message}")
}

/// Which images hold all their tags in the registry and which do not, after a failure.
pub(super) fn push_state(plan: &Plan, report: &Report) -> String {
    let mut full = Vec::new();
    let mut partial = Vec::new();
    for p in plan.publications.iter().filter(|p| !report.unchanged(&p.image)) {
        let wanted = p.targets.iter().filter(|t| t.push.is_some()).count();
        if wanted == 0 {
            continue;
        }
        let done = report.pushed.iter().filter(|x| x.image == p.image).count();
        match done {
            _ if done == wanted => full.push(p.image.clone()),
            0 => partial.push(p.image.clone()),
            _ => partial.push(format!("{} ({done} of {wanted} tags)", p.image)),
        }
    }
    if full.is_empty() && partial.is_empty() {
        return "Nothing was pushed".to_string();
    }
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    format!("Fully pushed: {}; not fully pushed: {}", list(&full), list(&partial))
}
