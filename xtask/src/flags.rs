//! The command line, declared in one place.

use std::path::PathBuf;

xflags::xflags! {
    /// Build, tag, test and publish the base images listed in images/images.toml.
    ///
    /// Options go after the command name, e.g. `cargo xtask build alpine --dry-run`.
    cmd xtask {
        /// The image inventory (default: images/images.toml at the workspace root).
        optional --inventory path: PathBuf
        /// Registry host and namespace every image lives under, e.g. 127.0.0.1:5000/sbl
        /// (overrides the inventory's `registry`).
        optional --registry registry: String

        /// List images, versions, tags, push flag and dependencies.
        cmd list {
            /// Print JSON instead of a table.
            optional --json
            /// Only the images affected by changes since this git reference (their Dockerfile,
            /// the context files they copy, the inventory, the tool), and what is built on them.
            optional --changed-since reference: String
        }

        /// Validate the inventory, the Dockerfiles and the workflows, and lint the Dockerfiles
        /// when hadolint is installed; exit 1 on any problem.
        cmd check {}

        /// Lint every Dockerfile with hadolint (rules the team ignores are in .hadolint.yaml
        /// beside the inventory, each with its reason).
        cmd lint {}

        /// Print the full references IMAGE would be pushed as, one per line, in push order.
        cmd tags {
            /// An image name from the inventory.
            required image: String
            /// Build id for the unique tag (default in GitHub Actions: RUN_NUMBER.RUN_ATTEMPT).
            optional --build-id id: String
        }

        /// Build images (all when none are named) and what they depend on, in dependency order,
        /// with local-only tags that are never pushed.
        cmd build {
            /// Image names from the inventory.
            repeated images: String
            /// Only the images affected by changes since this git reference (their Dockerfile,
            /// the context files they copy, the inventory, the tool), and what is built on them.
            optional --changed-since reference: String
            /// Always try to pull a newer version of base images.
            optional --pull
            /// Do not use the build cache.
            optional --no-cache
            /// After a failed build, build what does not depend on it, to report every failure.
            optional --keep-going
            /// How many images build at once (default: the number of CPUs).
            optional -j, --jobs n: usize
            /// The buildx builder to build on (needs docker buildx; may be remote or multi-node).
            optional --builder name: String
            /// Print each docker command exactly as it would run; run nothing.
            optional --dry-run
        }

        /// Build every selected image, then tag and push each one's three tags
        /// (unique, version, latest). Nothing is pushed unless every selected image built.
        cmd publish {
            /// Image names from the inventory (default: all).
            repeated images: String
            /// Build id for the unique tag (default in GitHub Actions: RUN_NUMBER.RUN_ATTEMPT).
            optional --build-id id: String
            /// Always try to pull a newer version of base images.
            optional --pull
            /// Do not use the build cache.
            optional --no-cache
            /// After a failed build, build what does not depend on it, to report every failure
            /// (still pushes nothing).
            optional --keep-going
            /// How many images build, and push, at once (default: the number of CPUs).
            optional -j, --jobs n: usize
            /// The buildx builder to build on (needs docker buildx; may be remote or multi-node).
            optional --builder name: String
            /// Print each docker command exactly as it would run; run nothing.
            optional --dry-run
        }

        /// Check a built image against its hardening rules (`[verify]` and `[images.IMAGE.verify]`
        /// in the inventory): its user, setuid files, world-writable files, /tmp, banner,
        /// removed tools and accounts. Exits 1 naming each broken rule and path.
        cmd verify {
            /// An image name from the inventory.
            required image: String
            /// The image reference to check (default: the local build, <registry>/IMAGE:local-vVERSION).
            optional --reference reference: String
        }

        /// Log in to the registry with a personal access token read from $CR_PAT
        /// (passed to docker on stdin, never in arguments).
        cmd login {
            /// Registry user name (default: $GITHUB_ACTOR).
            optional --username user: String
            /// Print the docker command that would run (without the token); run nothing.
            optional --dry-run
        }

        /// What the pull-request workflow runs: log in with $GITHUB_TOKEN when present, build and
        /// push the test package (proof the token may write packages), build every image
        /// with local-only tags and push none of them.
        cmd ci-pr {
            /// Build only the images affected by changes since this git reference (default in a
            /// pull request: origin/$GITHUB_BASE_REF; everything when that cannot be compared).
            optional --changed-since reference: String
            /// After a failed build, build what does not depend on it, to report every failure.
            optional --keep-going
            /// How many images build at once (default: the number of CPUs).
            optional -j, --jobs n: usize
            /// The buildx builder to build on (needs docker buildx; may be remote or multi-node).
            optional --builder name: String
            /// Print each docker command exactly as it would run; run nothing.
            optional --dry-run
        }

        /// What the main / schedule / dispatch workflow runs: log in, build every image in
        /// dependency order, push the three tags of each image with push = true, report digests,
        /// log out. A scheduled run (GITHUB_EVENT_NAME=schedule) adds --pull --no-cache.
        cmd ci-main {
            /// Build id for the unique tags (default in GitHub Actions: RUN_NUMBER.RUN_ATTEMPT).
            optional --build-id id: String
            /// Always try to pull a newer version of base images.
            optional --pull
            /// Do not use the build cache.
            optional --no-cache
            /// After a failed build, build what does not depend on it, to report every failure
            /// (still pushes nothing).
            optional --keep-going
            /// How many images build, and push, at once (default: the number of CPUs).
            optional -j, --jobs n: usize
            /// The buildx builder to build on (needs docker buildx; may be remote or multi-node).
            optional --builder name: String
            /// Print each docker command exactly as it would run; run nothing.
            optional --dry-run
        }

        /// Print the JSON for a GitHub Actions `strategy.matrix`: one entry per group of images
        /// that can build on its own runner (images joined by depends_on share a group).
        /// Inside GitHub Actions it is also written to the step output `matrix`.
        cmd matrix {
            /// Only the images affected by changes since this git reference (their Dockerfile,
            /// the context files they copy, the inventory, the tool), and what is built on them.
            optional --changed-since reference: String
        }

        /// Print the benchmark figures: publish against a fake docker (N = 5, 20, 100 images,
        /// --jobs 1 and 4), a real-engine publish against the old serial workflow, and the
        /// cold build against a crate with only the six named dependencies.
        cmd bench {
            /// Image counts for the fake-docker runs, e.g. 5,20,100.
            optional --sizes sizes: String
            /// How long a fake build takes, in milliseconds (pushes take a third); default 60.
            optional --sleep-ms ms: u64
            /// Leave out the real-engine comparison.
            optional --no-engine
            /// Leave out the cold-build comparison.
            optional --no-cold
        }

        /// Delete the test package through the GitHub REST API with an org-admin token from
        /// $GH_ADMIN_TOKEN (the workflow token cannot). API base: $GITHUB_API_URL.
        cmd cleanup-test-package {
            /// Print the request that would be sent (without the token); send nothing.
            optional --dry-run
        }
    }
}
