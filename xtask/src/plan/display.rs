//! The dry run: every step of a plan, one line each, exactly as it would run. Docker commands
//! appear as typed (the words `model::step` makes for execution too); the steps that are not
//! docker commands (registry questions, Dockerfile copies, checks) as comment lines in their
//! place.

use super::{order, Build, Plan, Target};
use crate::model::oci::{api_name, base_location, describe_query, split_reference};

impl Plan {
    /// One line per step, in the order one job runs them.
    pub fn display(&self, program: &str) -> String {
        let mut out = String::new();
        for reference in &self.must_be_absent {
            out.push_str(&query(reference, "must be absent: a unique tag is never overwritten"));
        }
        for pull in &self.pulls {
            line(&mut out, pull.command().display(program));
        }
        let mut outside: Vec<&String> = self.builds.iter().flat_map(Build::outside_images).collect();
        outside.sort();
        outside.dedup();
        for name in outside.into_iter().filter(|n| !self.pins.iter().any(|p| &&p.base == n)) {
            line(
                &mut out,
                format!("# base {name}: {program} image inspect (pulled first when missing): its digest is a label"),
            );
        }
        for pin in &self.pins {
            let (host, path, tag) = base_location(&pin.base);
            line(
                &mut out,
                format!(
                    "# base {} for {}: registry {host}: GET /v2/{path}/manifests/{tag}, the {} manifest's digest; \
                     {program} pull --platform {} <it by digest>; {program} tag <it> {}",
                    pin.base, pin.platform, pin.platform, pin.platform, pin.local
                ),
            );
        }
        // Each build, then its check and its comparison, in the order one job runs them.
        for b in order::one_at_a_time(&self.builds).into_iter().map(|i| &self.builds[i]) {
            self.show_build(&mut out, b, program);
        }
        for t in self.publications.iter().flat_map(|p| &p.targets) {
            show_target(&mut out, t, program);
        }
        for c in &self.cleanup {
            line(&mut out, c.command().display(program));
        }
        out
    }

    fn show_build(&self, out: &mut String, b: &Build, program: &str) {
        for (path, _) in &b.copies {
            line(
                out,
                format!("# write {}: a copy for {} that names this run's parent", path.display(), b.image),
            );
        }
        line(out, b.with_origins(&b.origins_placeholder()).command().display(program));
        for v in self.verifications.iter().filter(|v| v.image == b.image) {
            let rules = if v.spec.is_some() { "the inventory's rules and " } else { "" };
            line(
                out,
                format!(
                    "# verify {} ({}): image inspect, create, export, rm; then {rules}its packages",
                    v.image, v.reference
                ),
            );
            if v.spec.is_some() {
                line(out, format!("# if it breaks a rule: kept as {} for a look", v.kept_as));
            }
        }
        for c in self.comparisons.iter().filter(|c| c.image == b.image) {
            let what = if self.force {
                "published whatever it finds (--force)"
            } else {
                "pushed only if it changed"
            };
            line(
                out,
                format!(
                    "# compare {} with {}: registry GET, pull by digest, labels, packages, git diff since its revision; {what}",
                    c.image, c.published
                ),
            );
            let children: Vec<&str> =
                self.builds.iter().filter(|x| x.needs.contains(&b.image)).map(|x| x.image.as_str()).collect();
            if !self.force && !children.is_empty() {
                line(
                    out,
                    format!(
                        "# if {} is unchanged: {program} tag <{} by its digest> {}, so that {} builds on the published one",
                        c.image,
                        c.published,
                        b.reference,
                        children.join(", ")
                    ),
                );
            }
        }
    }
}

fn show_target(out: &mut String, t: &Target, program: &str) {
    if t.immutable && t.push.is_some() {
        out.push_str(&query(&t.reference, "must still be absent, asked again right before the push"));
    }
    // A later tag is made locally only once the registry holds it (run/live.rs).
    let tag_after = t.push.is_some() && t.retag_of.is_some();
    if let (false, Some(tag)) = (tag_after, &t.tag) {
        line(out, tag.command().display(program));
    }
    if let Some(members) = &t.index {
        let (host, path, tag) = api_name(&t.reference);
        let platforms: Vec<String> = members
            .iter()
            .map(|(p, r)| format!("{p} ({})", split_reference(r).1.unwrap_or_default()))
            .collect();
        line(
            out,
            format!(
                "# registry {host}: PUT /v2/{path}/manifests/{tag} (an OCI image index of {})",
                platforms.join(", ")
            ),
        );
        out.push_str(&query(
            &t.reference,
            "read back: must hold that index, each platform's manifest as pushed",
        ));
        return;
    }
    match (&t.push, &t.retag_of) {
        (Some(_), Some(source)) => {
            let (host, path, tag) = api_name(&t.reference);
            let from = split_reference(source).1.unwrap_or_default();
            line(
                out,
                format!("# registry {host}: PUT /v2/{path}/manifests/{tag} (the manifest of {from}: the same digest)"),
            );
        }
        (Some(push), None) => line(out, push.command().display(program)),
        (None, _) => {}
    }
    if t.push.is_some() {
        out.push_str(&query(&t.reference, "read back: must hold the image this run built"));
    }
    if let (true, Some(tag)) = (tag_after, &t.tag) {
        line(out, tag.command().display(program));
    }
}

fn query(reference: &str, expectation: &str) -> String {
    let (host, path, tag) = api_name(reference);
    describe_query(&host, &path, &tag, expectation) + "\n"
}

fn line(out: &mut String, text: String) {
    out.push_str(&text);
    out.push('\n');
}
