//! The command line, declared in one place: `table::COMMANDS` lists every command with its
//! arguments, their help and the function that types them, and `Xtask::parse` turns the
//! arguments into the typed structs the commands run on. Written out rather than generated: it
//! is little code, and it keeps a proc-macro crate out of the cold build on every CI runner.

mod help;
mod table;

use crate::sys::output::{Sink, Stream};
use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

use table::{Arg, Command, COMMANDS, GLOBAL};

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
                Sink::terminal().write(Stream::Out, &text);
                std::process::exit(0)
            }
            Err(Stop::Usage(message)) => {
                Sink::terminal().write(Stream::Err, &format!("error: {message}\n"));
                std::process::exit(2)
            }
        }
    }

    pub fn parse(args: Vec<OsString>) -> Result<Xtask, Stop> {
        let mut read = Reader::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy().into_owned();
            if text == "--help" || text == "-h" {
                return Err(Stop::Help(read.command.map_or_else(help::overview, help::command_help)));
            }
            if looks_like_option(&arg) {
                read.option(&text, &mut args)?;
            } else {
                read.word(arg, &text)?;
            }
        }
        let Some(command) = read.command else { return Err(Stop::Help(help::overview())) };
        let p = Parsed { command, options: read.options, positionals: read.positionals };
        let subcommand = (command.build)(&p)?;
        Ok(Xtask {
            inventory: p.os("--inventory").map(PathBuf::from),
            registry: p.string("--registry")?,
            subcommand,
        })
    }
}

/// The arguments read so far: the command once named, its options and positionals.
#[derive(Default)]
struct Reader {
    command: Option<&'static Command>,
    options: Vec<(&'static str, Option<OsString>)>,
    positionals: Vec<String>,
}

impl Reader {
    /// An option (`text`), with its value inline or taken from `rest`.
    fn option(&mut self, text: &str, rest: &mut impl Iterator<Item = OsString>) -> Result<(), Stop> {
        let (name, inline) = option_name_and_value(text);
        let spec = self.accepted(&name)?;
        let value = option_value(spec, &name, inline, rest)?;
        // A value given twice is a mistake (a copied line, a pasted command): never let the
        // last one win silently.
        if value.is_some() && self.options.iter().any(|(n, _)| *n == spec.name) {
            return Err(Stop::Usage(format!("{} is given twice: give it once", spec.name)));
        }
        self.options.push((spec.name, value));
        Ok(())
    }

    /// The declaration of option `name`, if the command (or every command) accepts it.
    fn accepted(&self, name: &str) -> Result<&'static Arg, Stop> {
        let accepted = self.command.map_or(&[][..], |c| c.args).iter().chain(GLOBAL).find(|a| a.name == name);
        accepted.ok_or_else(|| {
            let context =
                self.command.map_or(String::from("cargo xtask"), |c| format!("cargo xtask {}", c.name));
            Stop::Usage(format!("unknown option `{name}` for {context} (see `{context} --help`)"))
        })
    }

    /// A word that is not an option: the command's name, then its positional arguments.
    fn word(&mut self, arg: OsString, text: &str) -> Result<(), Stop> {
        match self.command {
            None => {
                let command = COMMANDS.iter().find(|c| c.name == text).ok_or_else(|| {
                    Stop::Usage(format!(
                        "unknown command `{text}`: run `cargo xtask --help` for the commands"
                    ))
                })?;
                self.command = Some(command);
            }
            Some(c) if c.args.iter().any(|a| !a.name.starts_with('-')) => self
                .positionals
                .push(arg.into_string().map_err(|a| Stop::Usage(format!("{a:?} is not valid UTF-8")))?),
            Some(c) => {
                return Err(Stop::Usage(format!("`cargo xtask {}` takes no argument `{text}`", c.name)));
            }
        }
        Ok(())
    }
}

/// `--name=value` split at `=`; `-j N`, `-jN` and `-j=N` all mean --jobs.
fn option_name_and_value(text: &str) -> (String, Option<OsString>) {
    let (name, inline) = match text.split_once('=') {
        Some((n, v)) => (n.to_string(), Some(OsString::from(v))),
        None => (text.to_string(), None),
    };
    match name.strip_prefix("-j") {
        Some("") => ("--jobs".to_string(), inline),
        Some(attached) if inline.is_none() && !name.starts_with("--") => {
            ("--jobs".to_string(), Some(OsString::from(attached)))
        }
        _ => (name, inline),
    }
}

/// The value of option `spec` (written `name`): `inline` after `=`, else the next argument.
fn option_value(
    spec: &Arg,
    name: &str,
    inline: Option<OsString>,
    rest: &mut impl Iterator<Item = OsString>,
) -> Result<Option<OsString>, Stop> {
    match (spec.value, inline) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Stop::Usage(format!("{name} takes no value"))),
        (Some(_), Some(v)) => Ok(Some(v)),
        (Some(shape), None) => match rest.next() {
            // An option is never taken as a value: `--build-id --dry-run` is a forgotten
            // value, not a build id. A value that truly starts with `-` goes after `=`.
            Some(v) if looks_like_option(&v) => Err(Stop::Usage(format!(
                "{name} needs a value ({name} {shape}), but `{}` is an option; \
                 write {name}={} if that really is the value",
                v.to_string_lossy(),
                v.to_string_lossy()
            ))),
            Some(v) => Ok(Some(v)),
            None => Err(Stop::Usage(format!("{name} needs a value: {name} {shape}"))),
        },
    }
}

/// `--x`, `-x`: what an option looks like (a lone `-` is a value: stdin, by custom).
fn looks_like_option(arg: &std::ffi::OsStr) -> bool {
    let text = arg.to_string_lossy();
    text.starts_with('-') && text.len() > 1
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
