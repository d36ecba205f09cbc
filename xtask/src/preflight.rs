//! Questions asked of the registry before anything builds, so that a run that cannot push
//! fails in seconds instead of after every build.

use anyhow::bail;

use crate::docker::{Docker, Manifest};
use crate::oci::{is_loopback_host, registry_host};

/// Ensures every unique reference is absent (unique tags are immutable) and that the registry
/// answers with the credentials the engine holds.
pub fn check_unique_tags_free(docker: &Docker, registry: &str, unique_refs: &[String]) -> anyhow::Result<()> {
    let host = registry_host(registry);
    let insecure = is_loopback_host(host);
    for reference in unique_refs {
        match docker.manifest(reference, insecure)? {
            Manifest::Absent => {}
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
    Ok(())
}
