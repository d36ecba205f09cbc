//! Questions asked of the registry before anything builds, so that a run that cannot push
//! fails in seconds instead of after every build.

use anyhow::bail;

use crate::docker::{Docker, Manifest};
use crate::oci::{is_loopback_host, registry_host};

/// Ensures every unique reference is absent (unique tags are immutable) and that the registry
/// answers with the credentials the engine holds. Up to `jobs` questions are asked at once.
pub fn check_unique_tags_free(
    docker: &Docker,
    registry: &str,
    unique_refs: &[String],
    jobs: usize,
) -> anyhow::Result<()> {
    let host = registry_host(registry);
    let insecure = is_loopback_host(host);
    let Some((first, rest)) = unique_refs.split_first() else { return Ok(()) };
    // The first answer says whether the registry is reachable and lets us in. Asked alone, a
    // registry that is down or refuses us costs one question (and its retries), not one per image.
    judge(host, first, docker.manifest(first, insecure)?)?;
    for chunk in rest.chunks(jobs.max(1)) {
        let answers: Vec<anyhow::Result<Manifest>> = std::thread::scope(|scope| {
            let asking: Vec<_> =
                chunk.iter().map(|r| scope.spawn(move || docker.manifest(r, insecure))).collect();
            asking
                .into_iter()
                .map(|a| a.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        });
        for (reference, answer) in chunk.iter().zip(answers) {
            judge(host, reference, answer?)?;
        }
    }
    Ok(())
}

fn judge(host: &str, reference: &str, answer: Manifest) -> anyhow::Result<()> {
    match answer {
        Manifest::Absent => Ok(()),
        Manifest::Present => bail!(
            "{reference} already exists: a unique build tag is never overwritten. Nothing was built \
             or pushed; publish with a new build id"
        ),
        Manifest::Unauthorized(said) => bail!(
            "{host} refused access to {reference} ({said}). Run `cargo xtask login` with a token in \
             CR_PAT, or in GitHub Actions give the workflow `packages: write` and log in with \
             GITHUB_TOKEN. Nothing was built or pushed"
        ),
        Manifest::Unreachable(said) => bail!(
            "cannot reach the registry {host} ({said}). Check the registry address and the network. \
             Nothing was built or pushed"
        ),
    }
}
