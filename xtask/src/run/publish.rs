//! The publishing phase of a plan: every image's targets (tag, push, read back), up to `jobs`
//! images at once, each image's in order, and a child only once its parents are fully out.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::schedule::guard;
use super::summary::push_state;
use super::{Pushed, Report, Transcript, World};
use crate::plan::{Plan, Publication};
use crate::sys::gha::Log;
use crate::sys::interrupt::{self, Interrupted};

/// Tags (and pushes, and reads back) every image's targets, up to `jobs` images at once.
pub(super) fn publish_all(
    world: &dyn World,
    plan: &Plan,
    log: &Log,
    jobs: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let ids = report.ids.clone();
    // One image at a time: each step is printed as it starts, inside the image's group.
    let live = jobs.max(1) == 1;
    let work = |p: &Publication| {
        let title = format!("{} {}", verb_of(plan, &p.image), p.image);
        if live {
            log.group(&title, || publish_one(world, p, &ids, Transcript::live(log.clone())))
        } else {
            publish_one(world, p, &ids, Transcript::kept())
        }
    };
    // An image found unchanged is not published again: the registry already holds it. Only
    // what passed is tagged (all of it, unless a local build failed in part).
    let mut waiting: Vec<&Publication> = plan
        .publications
        .iter()
        .filter(|p| !report.unchanged(&p.image) && report.passed.contains(&p.image))
        .collect();
    let publishing: Vec<&str> = waiting.iter().map(|p| p.image.as_str()).collect();
    let mut first_failure = None;
    let mut finished: Vec<String> = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<ImageDone>();
        let mut running = 0;
        loop {
            while running < jobs.max(1) && first_failure.is_none() {
                let ready = waiting.iter().position(|p| parents_out(plan, &publishing, &finished, p));
                let Some(p) = ready.map(|i| waiting.remove(i)) else { break };
                running += 1;
                let (tx, work) = (tx.clone(), &work);
                scope.spawn(move || {
                    let done = guard(&format!("publishing {}", p.image), || Ok(work(p)))
                        .unwrap_or_else(|e| ImageDone::failed(&p.image, e));
                    let _ = tx.send(done);
                });
            }
            if running == 0 {
                break;
            }
            let Ok(mut done) = rx.recv() else { break };
            running -= 1;
            report.add_time(&done.image, done.elapsed);
            report.pushed.append(&mut done.pushed);
            if !live {
                log.group(&format!("{} {}", verb_of(plan, &done.image), done.image), || {
                    log.passthrough(&done.transcript)
                });
            }
            match done.failure {
                None => finished.push(done.image),
                Some(e) if first_failure.is_none() => first_failure = Some(e),
                Some(_) => {}
            }
        }
    });
    match first_failure {
        Some(e) => bail!("{e:#}. {}", push_state(plan, report)),
        None => Ok(()),
    }
}

/// `push` for an image any of whose targets goes to a registry, else `tag`.
fn verb_of(plan: &Plan, image: &str) -> &'static str {
    let pushes =
        plan.publications.iter().any(|p| p.image == image && p.targets.iter().any(|t| t.push.is_some()));
    if pushes {
        "push"
    } else {
        "tag"
    }
}

/// Whether every parent of `image` this run publishes is fully out: a child's published tags
/// never stand on a parent the registry does not hold.
fn parents_out(plan: &Plan, publishing: &[&str], finished: &[String], p: &Publication) -> bool {
    let needs =
        plan.builds.iter().find(|b| b.image == p.image).map(|b| b.needs.as_slice()).unwrap_or_default();
    // An index waits for its platforms' builds (and its parents' indexes) to be out.
    needs.iter().chain(&p.after).filter(|n| publishing.contains(&n.as_str())).all(|n| finished.contains(n))
}

/// Makes every target of `p`, in order, stopping at the first failure.
fn publish_one(
    world: &dyn World,
    p: &Publication,
    ids: &BTreeMap<String, String>,
    mut transcript: Transcript,
) -> ImageDone {
    let start = Instant::now();
    let mut done = ImageDone::new(&p.image);
    // An index is made of what its platforms pushed; it has no image of its own.
    let index = p.targets.iter().any(|t| t.index.is_some());
    let none = String::new();
    let Some(id) = ids.get(&p.image).or(index.then_some(&none)) else {
        done.failure = Some(anyhow::anyhow!("{} was not built in this run", p.image));
        return done;
    };
    for t in &p.targets {
        // After Ctrl-C no further tag goes out (a send already under way is let finish).
        if interrupt::requested() {
            done.failure = Some(Interrupted.into());
            break;
        }
        match world.publish(p, t, id, &mut transcript) {
            Ok(pushed) => done.pushed.extend(pushed),
            Err(e) => {
                let what = if t.push.is_some() { "push" } else { "tag" };
                done.failure = Some(e.context(format!("{what} of {} ({}) failed", p.image, t.reference)));
                break;
            }
        }
    }
    done.elapsed = start.elapsed();
    done.transcript = transcript.text;
    done
}

/// What one image's targets send back: the pushes that went out, the output, the failure.
struct ImageDone {
    image: String,
    elapsed: Duration,
    pushed: Vec<Pushed>,
    transcript: String,
    failure: Option<anyhow::Error>,
}

impl ImageDone {
    fn new(image: &str) -> ImageDone {
        ImageDone {
            image: image.to_string(),
            elapsed: Duration::ZERO,
            pushed: Vec::new(),
            transcript: String::new(),
            failure: None,
        }
    }

    fn failed(image: &str, e: anyhow::Error) -> ImageDone {
        ImageDone { failure: Some(e), ..ImageDone::new(image) }
    }
}
