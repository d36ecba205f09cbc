//! Questions asked of the registry before anything builds, so that a run that cannot push
//! fails in seconds instead of after every build, and asked again right before a unique tag
//! is pushed.

use anyhow::bail;

use crate::model::oci::api_name;
use crate::sys::registry::{Registry, Tag, Unanswered};

/// Ensures every unique reference is absent (unique tags are immutable) and that the registry
/// answers with the credentials the CLI stored. Up to `jobs` questions are asked at once. A
/// rerun refused because unique tags exist names every one of them.
pub fn check_unique_tags_free(
    registry: &Registry,
    unique_refs: &[String],
    jobs: usize,
) -> anyhow::Result<()> {
    let Some((first, rest)) = unique_refs.split_first() else { return Ok(()) };
    let outcome = "Nothing was built or pushed";
    let ask = |reference: &String| {
        let (_, path, tag) = api_name(reference);
        (reference.clone(), registry.tag(&path, &tag))
    };
    // The first answer says whether the registry is reachable and lets us in. Asked alone, a
    // registry that is down or refuses us costs one question (and its retries), not one per image.
    let mut answers = vec![ask(first)];
    if answers[0].1.is_ok() {
        for chunk in rest.chunks(jobs.max(1)) {
            std::thread::scope(|scope| {
                let asking: Vec<_> = chunk.iter().map(|r| scope.spawn(move || ask(r))).collect();
                for a in asking {
                    answers.push(a.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
                }
            });
        }
    }
    let mut existing = Vec::new();
    for (reference, answer) in answers {
        match answer {
            Ok(Tag::Present { digest, .. }) => existing.push((reference, digest)),
            other => judge(registry.host(), &reference, other, outcome)?,
        }
    }
    match existing.as_slice() {
        [] => Ok(()),
        [(reference, digest)] => Err(already_exists(reference, digest, outcome)),
        all => {
            let named: Vec<String> = all.iter().map(|(r, d)| format!("{r} ({d})")).collect();
            bail!(
                "{} unique tags already exist: {}. A unique build tag is never overwritten. {outcome}; publish \
                 with a new build id",
                all.len(),
                named.join(", ")
            )
        }
    }
}

/// Ok when the registry says `reference` does not exist; otherwise an error that says why and
/// ends with `outcome` (what the run did and did not do).
pub fn must_be_absent(registry: &Registry, reference: &str, outcome: &str) -> anyhow::Result<()> {
    let (_, path, tag) = api_name(reference);
    let answer = registry.tag(&path, &tag);
    judge(registry.host(), reference, answer, outcome)
}

/// The error for a unique tag the registry holds already.
fn already_exists(reference: &str, digest: &str, outcome: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{reference} already exists ({digest}): a unique build tag is never overwritten. {outcome}; publish with \
         a new build id"
    )
}

fn judge(host: &str, reference: &str, answer: Result<Tag, Unanswered>, outcome: &str) -> anyhow::Result<()> {
    match answer {
        Ok(Tag::Absent) => Ok(()),
        Ok(Tag::Present { digest, .. }) => Err(already_exists(reference, &digest, outcome)),
        Err(Unanswered::Unauthorized { stored: false, said }) => bail!(
            "{host} wants credentials and none are stored for it ({said}). Run `cargo xtask login` with a token \
             in CR_PAT, or in GitHub Actions give the workflow `packages: write` and log in with GITHUB_TOKEN. \
             {outcome}"
        ),
        Err(Unanswered::Unauthorized { stored: true, said }) => bail!(
            "{host} refused the credentials stored for it ({said}): log in again with `cargo xtask login` (a \
             token with read:packages and write:packages). {outcome}"
        ),
        Err(Unanswered::Denied(said)) => bail!(
            "{host} denied access to {reference} ({said}): the stored credentials may not read this repository. \
             {outcome}"
        ),
        Err(Unanswered::Unreachable(said)) => bail!(
            "cannot reach the registry {host} ({said}). Check the registry address and the network. {outcome}"
        ),
        Err(Unanswered::Unexpected(said)) => {
            bail!("could not tell whether {reference} exists: {said}. {outcome}")
        }
    }
}
