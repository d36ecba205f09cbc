//! Every command with its arguments, their help, and how they are typed: declared once.

use super::{
    Build, Check, CiMain, CiPr, CleanupTestPackage, Lint, List, Login, Matrix, Packages, Parsed, Publish,
    Stop, Tags, Test, Verify, XtaskCmd,
};

/// An option (`--name`, maybe taking a VALUE) or a positional argument (`IMAGE`, `IMAGE...`).
pub struct Arg {
    pub name: &'static str,
    pub value: Option<&'static str>,
    pub help: &'static str,
}

pub struct Command {
    pub name: &'static str,
    pub help: &'static str,
    pub args: &'static [Arg],
    /// Types the arguments read for it.
    pub build: fn(&Parsed) -> Result<XtaskCmd, Stop>,
}

const fn opt(name: &'static str, value: Option<&'static str>, help: &'static str) -> Arg {
    Arg { name, value, help }
}

/// Accepted by every command.
pub const GLOBAL: &[Arg] = &[
    opt(
        "--inventory",
        Some("PATH"),
        "The image inventory (default: images/images.toml at the workspace root).",
    ),
    opt(
        "--registry",
        Some("HOST[/NAMESPACE]"),
        "Registry every image lives under, e.g. 127.0.0.1:5000/sbl (overrides the inventory's `registry`).",
    ),
];

const DRY_RUN: Arg =
    opt("--dry-run", None, "Print each docker command exactly as it would run; run nothing.");
const PULL: Arg = opt("--pull", None, "Always try to pull a newer version of base images.");
const NO_CACHE: Arg = opt("--no-cache", None, "Do not use the build cache.");
const KEEP_GOING: Arg = opt(
    "--keep-going",
    None,
    "After a failed build, build what does not depend on it, to report every failure.",
);
const JOBS: Arg = opt(
    "--jobs",
    Some("N"),
    "How many images build (and push) at once (-j N). Default: every ready image with BuildKit, which \
         schedules the work itself; the number of CPUs with the legacy builder and podman.",
);
const BUILDER: Arg = opt(
    "--builder",
    Some("NAME"),
    "The buildx builder to build on (needs docker buildx; may be remote or multi-node).",
);
const BUILD_ID: Arg = opt(
    "--build-id",
    Some("ID"),
    "Build id for the unique tag (default in GitHub Actions: RUN_NUMBER.RUN_ATTEMPT).",
);
const CHANGED_SINCE: Arg = opt(
    "--changed-since",
    Some("REF"),
    "Only the images affected by changes since this git reference (their Dockerfile, the context \
     files they copy, the inventory, the tool), and what is built on them.",
);
const IMAGES: Arg = opt("IMAGE...", None, "Image names from the inventory (default: all).");
const SBOM_DIR: Arg = opt(
    "--sbom-dir",
    Some("PATH"),
    "Where each built image's SPDX 2.3 SBOM is written, as IMAGE.spdx.json (default: $XTASK_SBOM_DIR, else \
     target/sbom at the workspace root).",
);
const FORCE: Arg = opt(
    "--force",
    None,
    "Publish every image, also those whose files and configuration equal what is published.",
);
const REFERENCE: Arg = opt(
    "--reference",
    Some("REF"),
    "The image reference to read (default: the local build, <registry>/IMAGE:local-vVERSION).",
);

pub const COMMANDS: &[Command] = &[
    Command {
        name: "list",
        help: "List images, versions, tags, push flag and dependencies.",
        args: &[opt("--json", None, "Print JSON instead of a table."), CHANGED_SINCE],
        build: |p| {
            Ok(XtaskCmd::List(List { json: p.switch("--json"), changed_since: p.string("--changed-since")? }))
        },
    },
    Command {
        name: "check",
        help: "Validate the inventory, the Dockerfiles and the workflows, and lint the Dockerfiles when \
               hadolint is installed; exit 1 on any problem.",
        args: &[],
        build: |_| Ok(XtaskCmd::Check(Check)),
    },
    Command {
        name: "lint",
        help: "Lint every Dockerfile with hadolint (rules the team ignores are in .hadolint.yaml beside the \
               inventory, each with its reason).",
        args: &[],
        build: |_| Ok(XtaskCmd::Lint(Lint)),
    },
    Command {
        name: "tags",
        help: "Print the full references IMAGE would be pushed as, one per line, in push order.",
        args: &[opt("IMAGE", None, "An image name from the inventory."), BUILD_ID],
        build: |p| Ok(XtaskCmd::Tags(Tags { image: p.required()?, build_id: p.string("--build-id")? })),
    },
    Command {
        name: "build",
        help: "Build images (all when none are named) and what they depend on, in dependency order, and \
               check each against its hardening rules as it is built. Each image that passed gets its \
               local-only tag (never pushed), also when others failed; the run then exits 1 naming each \
               failure. An image that breaks a rule is kept as <registry>/IMAGE:rejected, one per image.",
        args: &[IMAGES, CHANGED_SINCE, PULL, NO_CACHE, KEEP_GOING, JOBS, BUILDER, SBOM_DIR, DRY_RUN],
        build: |p| {
            Ok(XtaskCmd::Build(Build {
                images: p.positionals.clone(),
                changed_since: p.string("--changed-since")?,
                build: p.build_args()?,
            }))
        },
    },
    Command {
        name: "publish",
        help: "Build every selected image, verify it, compare it with the image published under its version \
               tag, then tag and push each changed one's three tags (unique, version, latest). Nothing is \
               pushed unless every selected image built and passed; an image whose files and \
               configuration equal the published one's is not pushed again (unless --force).",
        args: &[IMAGES, BUILD_ID, PULL, NO_CACHE, KEEP_GOING, JOBS, BUILDER, FORCE, SBOM_DIR, DRY_RUN],
        build: |p| {
            Ok(XtaskCmd::Publish(Publish {
                images: p.positionals.clone(),
                build_id: p.string("--build-id")?,
                build: p.build_args()?,
            }))
        },
    },
    Command {
        name: "verify",
        help: "Check a built image against its hardening rules ([verify] and [images.IMAGE.verify] in the \
               inventory): its user, setuid files, world-writable files, /tmp, banner, removed tools and \
               accounts. Exits 1 naming each broken rule and path.",
        args: &[opt("IMAGE", None, "An image name from the inventory."), REFERENCE],
        build: |p| {
            Ok(XtaskCmd::Verify(Verify { image: p.required()?, reference: p.reference("--reference")? }))
        },
    },
    Command {
        name: "packages",
        help: "List the packages a built image holds, read from its files without running it: apk, Python \
               distributions, npm packages and the RPM database (read with this machine's rpm, else the \
               image's own).",
        args: &[
            opt("IMAGE", None, "An image name from the inventory."),
            REFERENCE,
            opt("--json", None, "Print JSON instead of a table."),
        ],
        build: |p| {
            Ok(XtaskCmd::Packages(Packages {
                image: p.required()?,
                reference: p.reference("--reference")?,
                json: p.switch("--json"),
            }))
        },
    },
    Command {
        name: "login",
        help: "Log in to the registry with a personal access token read from $CR_PAT (passed to docker on \
               stdin, never in arguments).",
        args: &[
            opt("--username", Some("USER"), "Registry user name (default: $GITHUB_ACTOR)."),
            opt(
                "--dry-run",
                None,
                "Print the docker command that would run (without the token); run nothing.",
            ),
        ],
        build: |p| {
            Ok(XtaskCmd::Login(Login { username: p.string("--username")?, dry_run: p.switch("--dry-run") }))
        },
    },
    Command {
        name: "ci-pr",
        help: "What the pull-request workflow runs: log in with $GITHUB_TOKEN when present, build and push \
               the test package (proof the token may write packages), build the images the change touches \
               with local-only tags and push none of them.",
        args: &[
            opt(
                "--changed-since",
                Some("REF"),
                "Build only the images affected by changes since this git reference (default in a pull \
                 request: origin/$GITHUB_BASE_REF; everything when that cannot be compared).",
            ),
            KEEP_GOING,
            JOBS,
            BUILDER,
            DRY_RUN,
        ],
        build: |p| {
            Ok(XtaskCmd::CiPr(CiPr { changed_since: p.string("--changed-since")?, build: p.build_args()? }))
        },
    },
    Command {
        name: "ci-main",
        help: "What the main / schedule / dispatch workflow runs: log in, build every image in dependency \
               order, push the three tags of each changed image with push = true, report what changed and \
               the digests, log out. A scheduled run (GITHUB_EVENT_NAME=schedule) adds --pull --no-cache; a \
               manual run whose `force` input is true adds --force.",
        args: &[BUILD_ID, PULL, NO_CACHE, KEEP_GOING, JOBS, BUILDER, FORCE, SBOM_DIR, DRY_RUN],
        build: |p| Ok(XtaskCmd::CiMain(CiMain { build_id: p.string("--build-id")?, build: p.build_args()? })),
    },
    Command {
        name: "matrix",
        help:
            "Print the JSON for a GitHub Actions `strategy.matrix`: one entry per group of images that can \
               build on its own runner (images joined by depends_on share a group). Inside GitHub Actions \
               it is also written to the step output `matrix`.",
        args: &[CHANGED_SINCE],
        build: |p| Ok(XtaskCmd::Matrix(Matrix { changed_since: p.string("--changed-since")? })),
    },
    Command {
        name: "test",
        help: "The tool's own checks, as CI runs them: cargo fmt --check, cargo clippy -D warnings, and the \
               whole test suite (end-to-end tests included: they need a Docker engine, a registry binary or \
               image, busybox-static, htpasswd, podman, rpm with rpmbuild and pyspdxtools; bash .ci/run \
               installs them on Debian).",
        args: &[],
        build: |_| Ok(XtaskCmd::Test(Test)),
    },
    Command {
        name: "cleanup-test-package",
        help: "Delete the test package through the GitHub REST API with an org-admin token from \
               $GH_ADMIN_TOKEN (the workflow token cannot). API base: $GITHUB_API_URL.",
        args: &[opt(
            "--dry-run",
            None,
            "Print the request that would be sent (without the token); send nothing.",
        )],
        build: |p| Ok(XtaskCmd::CleanupTestPackage(CleanupTestPackage { dry_run: p.switch("--dry-run") })),
    },
];
