//! The command line, declared in one place: `COMMANDS` lists every command with its
//! arguments and their help, and `Xtask::parse` turns the arguments into the typed structs the
//! commands run on. Written out rather than generated: it is little code, and it keeps a
//! proc-macro crate out of the cold build on every CI runner.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

/// An option (`--name`, maybe taking a VALUE) or a positional argument (`IMAGE`, `IMAGE...`).
struct Arg {
    name: &'static str,
    value: Option<&'static str>,
    help: &'static str,
}

struct Command {
    name: &'static str,
    help: &'static str,
    args: &'static [Arg],
}

const fn opt(name: &'static str, value: Option<&'static str>, help: &'static str) -> Arg {
    Arg { name, value, help }
}

/// Accepted by every command.
const GLOBAL: &[Arg] = &[
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

const COMMANDS: &[Command] = &[
    Command {
        name: "list",
        help: "List images, versions, tags, push flag and dependencies.",
        args: &[opt("--json", None, "Print JSON instead of a table."), CHANGED_SINCE],
    },
    Command {
        name: "check",
        help: "Validate the inventory, the Dockerfiles and the workflows, and lint the Dockerfiles when \
               hadolint is installed; exit 1 on any problem.",
        args: &[],
    },
    Command {
        name: "lint",
        help: "Lint every Dockerfile with hadolint (rules the team ignores are in .hadolint.yaml beside the \
               inventory, each with its reason).",
        args: &[],
    },
    Command {
        name: "tags",
        help: "Print the full references IMAGE would be pushed as, one per line, in push order.",
        args: &[opt("IMAGE", None, "An image name from the inventory."), BUILD_ID],
    },
    Command {
        name: "build",
        help: "Build images (all when none are named) and what they depend on, in dependency order, and \
               check each against its hardening rules as it is built. Each image that passed gets its \
               local-only tag (never pushed), also when others failed; the run then exits 1 naming each \
               failure. An image that breaks a rule is kept as <registry>/IMAGE:rejected, one per image.",
        args: &[IMAGES, CHANGED_SINCE, PULL, NO_CACHE, KEEP_GOING, JOBS, BUILDER, SBOM_DIR, DRY_RUN],
    },
    Command {
        name: "publish",
        help: "Build every selected image, verify it, compare it with the image published under its version \
               tag, then tag and push each changed one's three tags (unique, version, latest). Nothing is \
               pushed unless every selected image built and passed; an image whose files and \
               configuration equal the published one's is not pushed again (unless --force).",
        args: &[IMAGES, BUILD_ID, PULL, NO_CACHE, KEEP_GOING, JOBS, BUILDER, FORCE, SBOM_DIR, DRY_RUN],
    },
    Command {
        name: "verify",
        help: "Check a built image against its hardening rules ([verify] and [images.IMAGE.verify] in the \
               inventory): its user, setuid files, world-writable files, /tmp, banner, removed tools and \
               accounts. Exits 1 naming each broken rule and path.",
        args: &[opt("IMAGE", None, "An image name from the inventory."), REFERENCE],
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
    },
    Command {
        name: "ci-main",
        help: "What the main / schedule / dispatch workflow runs: log in, build every image in dependency \
               order, push the three tags of each changed image with push = true, report what changed and \
               the digests, log out. A scheduled run (GITHUB_EVENT_NAME=schedule) adds --pull --no-cache; a \
               manual run whose `force` input is true adds --force.",
        args: &[BUILD_ID, PULL, NO_CACHE, KEEP_GOING, JOBS, BUILDER, FORCE, SBOM_DIR, DRY_RUN],
    },
    Command {
        name: "matrix",
        help:
            "Print the JSON for a GitHub Actions `strategy.matrix`: one entry per group of images that can \
               build on its own runner (images joined by depends_on share a group). Inside GitHub Actions \
               it is also written to the step output `matrix`.",
        args: &[CHANGED_SINCE],
    },
    Command {
        name: "test",
        help: "The tool's own checks, as CI runs them: cargo fmt --check, cargo clippy -D warnings, and the \
               whole test suite (end-to-end tests included: they need a Docker engine, a registry binary or \
               image, busybox-static, htpasswd, podman, rpm with rpmbuild and pyspdxtools; bash .ci/run \
               installs them on Debian).",
        args: &[],
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
    },
];

// The typed results, one struct per command.

#[derive(Debug)]
pub struct Xtask {
    pub inventory: Option<PathBuf>,
    pub registry: Option<String>,
    pub subcommand: XtaskCmd,
}

#[derive(Debug)]
pub enum XtaskCmd {
    List(List),
    Check(Check),
    Lint(Lint),
    Tags(Tags),
    Build(Build),
    Publish(Publish),
    Verify(Verify),
    Packages(Packages),
    Login(Login),
    CiPr(CiPr),
    CiMain(CiMain),
    Matrix(Matrix),
    CleanupTestPackage(CleanupTestPackage),
    Test(Test),
}

#[derive(Debug)]
pub struct List {
    pub json: bool,
    pub changed_since: Option<String>,
}

#[derive(Debug)]
pub struct Check;

#[derive(Debug)]
pub struct Lint;

#[derive(Debug)]
pub struct Tags {
    pub image: String,
    pub build_id: Option<String>,
}

/// The options every building command shares (ci-pr has no --pull or --no-cache).
#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    pub pull: bool,
    pub no_cache: bool,
    pub keep_going: bool,
    pub jobs: Option<usize>,
    pub builder: Option<String>,
    pub dry_run: bool,
    /// Publish also what did not change (publish, ci-main).
    pub force: bool,
    pub sbom_dir: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Build {
    pub images: Vec<String>,
    pub changed_since: Option<String>,
    pub build: BuildArgs,
}

#[derive(Debug)]
pub struct Publish {
    pub images: Vec<String>,
    pub build_id: Option<String>,
    pub build: BuildArgs,
}

#[derive(Debug)]
pub struct Verify {
    pub image: String,
    pub reference: Option<String>,
}

#[derive(Debug)]
pub struct Packages {
    pub image: String,
    pub reference: Option<String>,
    pub json: bool,
}

#[derive(Debug)]
pub struct Login {
    pub username: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct CiPr {
    pub changed_since: Option<String>,
    pub build: BuildArgs,
}

#[derive(Debug)]
pub struct CiMain {
    pub build_id: Option<String>,
    pub build: BuildArgs,
}

#[derive(Debug)]
pub struct Matrix {
    pub changed_since: Option<String>,
}

#[derive(Debug)]
pub struct Test;

#[derive(Debug)]
pub struct CleanupTestPackage {
    pub dry_run: bool,
}

/// Why parsing stopped: help was asked for (printed on stdout, exit 0) or the arguments are
/// wrong (stderr, exit 2).
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    Help(String),
    Usage(String),
}

/// The arguments of one command line, before typing.
struct Parsed {
    command: &'static Command,
    options: Vec<(&'static str, Option<OsString>)>,
    positionals: Vec<String>,
}

impl Parsed {
    fn switch(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| *n == name)
    }

    fn os(&self, name: &str) -> Option<OsString> {
        self.options.iter().rev().find(|(n, _)| *n == name).and_then(|(_, v)| v.clone())
    }

    fn string(&self, name: &str) -> Result<Option<String>, Stop> {
        self.os(name)
            .map(|v| v.into_string().map_err(|v| Stop::Usage(format!("{name}: {v:?} is not valid UTF-8"))))
            .transpose()
    }

    /// An image reference: never one that starts with `-`, which docker would read as an option
    /// (no reference can start with it).
    fn reference(&self, name: &str) -> Result<Option<String>, Stop> {
        match self.string(name)? {
            Some(v) if v.starts_with('-') || v.trim().is_empty() => Err(Stop::Usage(format!(
                "{name}: `{v}` is not an image reference (name one, such as 127.0.0.1:5000/team/alpine:local-v3.23.0)"
            ))),
            other => Ok(other),
        }
    }

    fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, Stop> {
        self.string(name)?
            .map(|v| v.parse().map_err(|_| Stop::Usage(format!("{name}: `{v}` is not a whole number"))))
            .transpose()
    }

    fn build_args(&self) -> Result<BuildArgs, Stop> {
        Ok(BuildArgs {
            pull: self.switch("--pull"),
            no_cache: self.switch("--no-cache"),
            keep_going: self.switch("--keep-going"),
            jobs: self.number("--jobs")?,
            builder: self.string("--builder")?,
            dry_run: self.switch("--dry-run"),
            force: self.switch("--force"),
            sbom_dir: self.os("--sbom-dir").map(PathBuf::from),
        })
    }

    /// The one positional argument a command requires.
    fn required(&self) -> Result<String, Stop> {
        match self.positionals.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Stop::Usage(format!(
                "`cargo xtask {}` needs an IMAGE (see `cargo xtask {} --help`)",
                self.command.name, self.command.name
            ))),
            [_, extra, ..] => Err(Stop::Usage(format!(
                "`cargo xtask {}` takes one IMAGE; `{extra}` is one too many",
                self.command.name
            ))),
        }
    }
}

impl Xtask {
    /// Parses the process's arguments; prints help or the usage error and exits when parsing stops.
    pub fn from_env_or_exit() -> Xtask {
        match Xtask::parse(std::env::args_os().skip(1).collect()) {
            Ok(flags) => flags,
            Err(Stop::Help(text)) => {
                say_raw!("{text}");
                std::process::exit(0)
            }
            Err(Stop::Usage(message)) => {
                eprintln!("error: {message}");
                std::process::exit(2)
            }
        }
    }

    pub fn parse(args: Vec<OsString>) -> Result<Xtask, Stop> {
        let mut command: Option<&'static Command> = None;
        let mut options: Vec<(&'static str, Option<OsString>)> = Vec::new();
        let mut positionals = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy().into_owned();
            if text == "--help" || text == "-h" {
                return Err(Stop::Help(command.map_or_else(overview, command_help)));
            }
            if text.starts_with('-') && text.len() > 1 {
                let (name, inline) = match text.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(OsString::from(v))),
                    None => (text.clone(), None),
                };
                // `-j N`, `-jN` and `-j=N` all mean --jobs.
                let (name, inline) = match name.strip_prefix("-j") {
                    Some("") => ("--jobs".to_string(), inline),
                    Some(attached) if inline.is_none() && !name.starts_with("--") => {
                        ("--jobs".to_string(), Some(OsString::from(attached)))
                    }
                    _ => (name, inline),
                };
                let accepted =
                    command.map_or(&[][..], |c| c.args).iter().chain(GLOBAL).find(|a| a.name == name);
                let Some(spec) = accepted else {
                    let context =
                        command.map_or(String::from("cargo xtask"), |c| format!("cargo xtask {}", c.name));
                    return Err(Stop::Usage(format!(
                        "unknown option `{name}` for {context} (see `{context} --help`)"
                    )));
                };
                let value = match (spec.value, inline) {
                    (None, None) => None,
                    (None, Some(_)) => return Err(Stop::Usage(format!("{name} takes no value"))),
                    (Some(_), Some(v)) => Some(v),
                    (Some(shape), None) => match args.next() {
                        // An option is never taken as a value: `--build-id --dry-run` is a
                        // forgotten value, not a build id. A value that truly starts with `-`
                        // goes after `=`.
                        Some(v) if looks_like_option(&v) => {
                            return Err(Stop::Usage(format!(
                                "{name} needs a value ({name} {shape}), but `{}` is an option; \
                                 write {name}={} if that really is the value",
                                v.to_string_lossy(),
                                v.to_string_lossy()
                            )))
                        }
                        Some(v) => Some(v),
                        None => return Err(Stop::Usage(format!("{name} needs a value: {name} {shape}"))),
                    },
                };
                // A value given twice is a mistake (a copied line, a pasted command): never
                // let the last one win silently.
                if value.is_some() && options.iter().any(|(n, _)| *n == spec.name) {
                    return Err(Stop::Usage(format!("{} is given twice: give it once", spec.name)));
                }
                options.push((spec.name, value));
                continue;
            }
            match command {
                None => {
                    command = Some(COMMANDS.iter().find(|c| c.name == text).ok_or_else(|| {
                        Stop::Usage(format!(
                            "unknown command `{text}`: run `cargo xtask --help` for the commands"
                        ))
                    })?);
                }
                Some(c) if c.args.iter().any(|a| !a.name.starts_with('-')) => positionals
                    .push(arg.into_string().map_err(|a| Stop::Usage(format!("{a:?} is not valid UTF-8")))?),
                Some(c) => {
                    return Err(Stop::Usage(format!("`cargo xtask {}` takes no argument `{text}`", c.name)));
                }
            }
        }
        let Some(command) = command else { return Err(Stop::Help(overview())) };
        let p = Parsed { command, options, positionals };
        let subcommand = match command.name {
            "list" => {
                XtaskCmd::List(List { json: p.switch("--json"), changed_since: p.string("--changed-since")? })
            }
            "check" => XtaskCmd::Check(Check),
            "lint" => XtaskCmd::Lint(Lint),
            "tags" => XtaskCmd::Tags(Tags { image: p.required()?, build_id: p.string("--build-id")? }),
            "build" => XtaskCmd::Build(Build {
                images: p.positionals.clone(),
                changed_since: p.string("--changed-since")?,
                build: p.build_args()?,
            }),
            "publish" => XtaskCmd::Publish(Publish {
                images: p.positionals.clone(),
                build_id: p.string("--build-id")?,
                build: p.build_args()?,
            }),
            "verify" => {
                XtaskCmd::Verify(Verify { image: p.required()?, reference: p.reference("--reference")? })
            }
            "packages" => XtaskCmd::Packages(Packages {
                image: p.required()?,
                reference: p.reference("--reference")?,
                json: p.switch("--json"),
            }),
            "login" => {
                XtaskCmd::Login(Login { username: p.string("--username")?, dry_run: p.switch("--dry-run") })
            }
            "ci-pr" => {
                XtaskCmd::CiPr(CiPr { changed_since: p.string("--changed-since")?, build: p.build_args()? })
            }
            "ci-main" => {
                XtaskCmd::CiMain(CiMain { build_id: p.string("--build-id")?, build: p.build_args()? })
            }
            "matrix" => XtaskCmd::Matrix(Matrix { changed_since: p.string("--changed-since")? }),
            "test" => XtaskCmd::Test(Test),
            "cleanup-test-package" => {
                XtaskCmd::CleanupTestPackage(CleanupTestPackage { dry_run: p.switch("--dry-run") })
            }
            other => unreachable!("command `{other}` is declared but not typed"),
        };
        Ok(Xtask {
            inventory: p.os("--inventory").map(PathBuf::from),
            registry: p.string("--registry")?,
            subcommand,
        })
    }
}

/// `--x`, `-x`: what an option looks like (a lone `-` is a value: stdin, by custom).
fn looks_like_option(arg: &std::ffi::OsStr) -> bool {
    let text = arg.to_string_lossy();
    text.starts_with('-') && text.len() > 1
}

fn overview() -> String {
    let mut out = String::from(
        "Build, tag, test and publish the base images listed in images/images.toml.\n\n\
         Usage: cargo xtask COMMAND [OPTIONS]    (options go after the command name)\n\nCommands:\n",
    );
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in COMMANDS {
        out.push_str(&format!("  {:width$}  {}\n", c.name, first_sentence(c.help)));
    }
    out.push_str("\nOptions of every command:\n");
    out.push_str(&describe(GLOBAL));
    out.push_str(
        "  -h, --help\n      Print help.\n\nRun `cargo xtask COMMAND --help` for a command's options.\n",
    );
    out
}

fn command_help(c: &'static Command) -> String {
    let positionals: Vec<&Arg> = c.args.iter().filter(|a| !a.name.starts_with('-')).collect();
    let options: Vec<&Arg> = c.args.iter().filter(|a| a.name.starts_with('-')).collect();
    let usage: Vec<String> = positionals
        .iter()
        .map(|a| if a.name.ends_with("...") { format!("[{}]", a.name) } else { a.name.to_string() })
        .collect();
    let mut out = format!(
        "Usage: cargo xtask {} {}[OPTIONS]\n\n{}\n",
        c.name,
        usage.iter().map(|u| format!("{u} ")).collect::<String>(),
        c.help
    );
    if !positionals.is_empty() {
        out.push_str("\nArguments:\n");
        for a in positionals {
            out.push_str(&format!("  {}\n      {}\n", a.name, a.help));
        }
    }
    out.push_str("\nOptions:\n");
    let own: Vec<Arg> = options.iter().map(|a| Arg { name: a.name, value: a.value, help: a.help }).collect();
    out.push_str(&describe(&own));
    out.push_str(&describe(GLOBAL));
    out.push_str("  -h, --help\n      Print help.\n");
    out
}

fn describe(args: &[Arg]) -> String {
    args.iter()
        .map(|a| match a.value {
            Some(value) => format!("  {} {value}\n      {}\n", a.name, a.help),
            None => format!("  {}\n      {}\n", a.name, a.help),
        })
        .collect()
}

fn first_sentence(help: &str) -> &str {
    help.split_once(". ").map_or(help, |(first, _)| first).trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Xtask, Stop> {
        Xtask::parse(args.iter().map(OsString::from).collect())
    }

    fn usage(args: &[&str]) -> String {
        match parse(args) {
            Err(Stop::Usage(message)) => message,
            other => panic!("expected a usage error for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_commands_options_and_positionals() {
        let flags = parse(&[
            "publish",
            "alpine",
            "--build-id",
            "42.2",
            "-j",
            "3",
            "--inventory=x/images.toml",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(flags.inventory, Some(PathBuf::from("x/images.toml")));
        let XtaskCmd::Publish(p) = flags.subcommand else { panic!() };
        assert_eq!(p.images, ["alpine"]);
        assert_eq!(
            (p.build_id.as_deref(), p.build.jobs, p.build.dry_run, p.build.pull),
            (Some("42.2"), Some(3), true, false)
        );
        let flags = parse(&["--registry", "r.io/x", "tags", "alpine"]).unwrap();
        assert_eq!(flags.registry.as_deref(), Some("r.io/x"));
        assert!(matches!(flags.subcommand, XtaskCmd::Tags(Tags { ref image, .. }) if image == "alpine"));
        // After `=`, a value may start with a dash.
        let flags = parse(&["build", "--inventory=-odd.toml", "--jobs", "2"]).unwrap();
        assert_eq!(flags.inventory, Some(PathBuf::from("-odd.toml")));
    }

    #[test]
    fn every_declared_command_parses() {
        for c in COMMANDS {
            let mut args = vec![c.name];
            if c.args.iter().any(|a| a.name == "IMAGE") {
                args.push("alpine");
            }
            assert!(parse(&args).is_ok(), "{}", c.name);
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(usage(&["pubish"]).contains("unknown command `pubish`"));
        // No image reference starts with `-`: docker would take it for an option.
        for value in ["--reference=-x", "--reference=--help", "--reference="] {
            let u = usage(&["packages", "alpine", value]);
            assert!(u.contains("is not an image reference"), "{value}: {u}");
            assert!(usage(&["verify", "alpine", value]).contains("is not an image reference"));
        }
        assert!(
            usage(&["build", "--frobnicate"]).contains("unknown option `--frobnicate` for cargo xtask build")
        );
        assert!(usage(&["publish", "--build-id"]).contains("--build-id needs a value"));
        let u = usage(&["publish", "--build-id", "--dry-run"]);
        assert!(u.contains("--build-id needs a value (--build-id ID), but `--dry-run` is an option"), "{u}");
        assert!(usage(&["publish", "--build-id", "--inventory", "x"]).contains("--build-id needs a value"));
        assert!(usage(&["build", "--registry", "-j", "2"]).contains("--registry needs a value"));
        assert!(usage(&["build", "--inventory", "--dry-run"]).contains("--inventory needs a value"));
        assert!(usage(&["build", "--jobs", "many"]).contains("--jobs: `many` is not a whole number"));
        for args in [["build", "-j3"], ["build", "-j=3"]] {
            let XtaskCmd::Build(b) = parse(&args).unwrap().subcommand else { panic!() };
            assert_eq!(b.build.jobs, Some(3), "{args:?}");
        }
        assert!(usage(&["tags"]).contains("needs an IMAGE"));
        assert!(usage(&["check", "extra"]).contains("takes no argument `extra`"));
        assert!(usage(&["list", "--json=yes"]).contains("--json takes no value"));
        let u = usage(&["publish", "--build-id", "2", "--build-id=3"]);
        assert!(u.contains("--build-id is given twice: give it once"), "{u}");
        assert!(usage(&["build", "-j2", "--jobs", "3"]).contains("--jobs is given twice"));
    }

    #[test]
    fn help_covers_every_command_and_option() {
        let Err(Stop::Help(text)) = parse(&["--help"]) else { panic!() };
        for c in COMMANDS {
            assert!(text.contains(&format!("  {}", c.name)), "{}", c.name);
        }
        for c in COMMANDS {
            let Err(Stop::Help(text)) = parse(&[c.name, "--help"]) else { panic!() };
            for a in c.args.iter().chain(GLOBAL) {
                assert!(text.contains(a.name), "{} --help lacks {}", c.name, a.name);
            }
        }
    }
}
