//! An image with several platforms is decided as one: it is published (every platform's build
//! and the index of them) when any platform changed, and kept when none did; it passed when
//! every platform passed.

use super::Report;
use crate::model::rebuild::Verdict;
use crate::plan::Plan;

/// Joins the platforms' verdicts and checks into the image's own, under the image's name.
pub(super) fn decide_as_one(plan: &Plan, report: &mut Report) {
    for index in plan.publications.iter().filter(|p| p.targets.iter().any(|t| t.index.is_some())) {
        let members: Vec<&str> = plan
            .builds
            .iter()
            .filter(|b| b.of == index.image && b.platform.is_some())
            .map(|b| b.image.as_str())
            .collect();
        if !members.is_empty() && members.iter().all(|m| report.passed.iter().any(|p| p == m)) {
            report.passed.push(index.image.clone());
        }
        let verdicts: Vec<(&str, Option<&Verdict>)> =
            members.iter().map(|m| (*m, report.verdicts.get(*m))).collect();
        if verdicts.iter().all(|(_, v)| v.is_none()) {
            continue;
        }
        // A platform dropped from what is published republishes the index, not the others.
        let dropped = verdicts.iter().find_map(|(_, v)| v.and_then(|v| v.platforms_changed.clone()));
        let publish = dropped.is_some() || verdicts.iter().any(|(_, v)| v.is_none_or(|v| v.publish));
        let mut why: Vec<String> = verdicts
            .iter()
            .map(|(m, v)| {
                let platform = m.split_once('@').map_or(*m, |(_, p)| p);
                format!("{platform}: {}", v.map_or("not compared".to_string(), Verdict::line))
            })
            .collect();
        why.extend(dropped.map(|d| format!("platforms: {d}")));
        let first = verdicts.iter().find_map(|(_, v)| *v);
        let joined = Verdict {
            publish,
            why,
            packages: Default::default(),
            published: first.and_then(|v| v.index.clone()),
            since: first.and_then(|v| v.since.clone()),
            index: first.and_then(|v| v.index.clone()),
            platforms_changed: None,
        };
        for m in &members {
            if let Some(v) = report.verdicts.get_mut(*m) {
                v.publish = publish;
            }
        }
        report.verdicts.insert(index.image.clone(), joined);
    }
}
