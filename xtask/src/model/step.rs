//! The container CLI steps a plan is made of, as typed values (a `BuildStep`, and a `Step` for
//! everything else), and the one place their command words are made: the dry run prints
//! `command()`, and sys/docker.rs runs the same words.
//! Nothing reads meaning back out of word positions; a step says what it is about.

use std::fmt;
use std::path::PathBuf;

/// How images are built: BuildKit whenever the docker CLI offers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Builder {
    /// `docker build` without BuildKit: a docker 23+ client without the buildx plugin.
    #[default]
    Legacy,
    /// A client with BuildKit built in (docker before 23), switched on by DOCKER_BUILDKIT=1.
    BuildKit,
    /// `docker buildx build --load`, on the named builder (which may be remote or multi-node)
    /// or the current one.
    Buildx { name: Option<String> },
    /// `podman build` (buildah).
    Podman,
}

impl fmt::Display for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Builder::Legacy => "the legacy builder",
            Builder::BuildKit => "BuildKit (DOCKER_BUILDKIT=1)",
            Builder::Buildx { .. } => "BuildKit (docker buildx)",
            Builder::Podman => "podman (buildah)",
        })
    }
}

/// One build of one image, as every builder takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    pub builder: Builder,
    pub no_cache: bool,
    pub platforms: Vec<String>,
    pub dockerfile: PathBuf,
    /// The run-private reference it is built as.
    pub tag: String,
    /// Where the engine writes the image's id.
    pub iidfile: PathBuf,
    pub build_args: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub context: PathBuf,
}

/// One step of a plan that runs the container CLI, other than a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `pull [--platform P] REFERENCE`.
    Pull {
        reference: String,
        platform: Option<String>,
    },
    Tag {
        source: String,
        target: String,
    },
    Push {
        reference: String,
    },
    /// `image rm`: the name goes, and the image with its untagged layers when no other name
    /// holds it.
    Remove {
        reference: String,
    },
    /// `login HOST -u USER --password-stdin`: the token goes on stdin, never in the words.
    Login {
        host: String,
        username: String,
    },
    Logout {
        host: String,
    },
}

impl Step {
    pub fn tag(source: &str, target: &str) -> Step {
        Step::Tag { source: source.to_string(), target: target.to_string() }
    }

    pub fn push(reference: &str) -> Step {
        Step::Push { reference: reference.to_string() }
    }

    pub fn pull(reference: &str) -> Step {
        Step::Pull { reference: reference.to_string(), platform: None }
    }

    /// A pull of one platform's image (by digest, for a base pinned to it).
    pub fn pull_for(reference: &str, platform: &str) -> Step {
        Step::Pull { reference: reference.to_string(), platform: Some(platform.to_string()) }
    }

    pub fn remove(reference: &str) -> Step {
        Step::Remove { reference: reference.to_string() }
    }

    /// The image (or registry host) the step is about: what it makes, names, sends or removes.
    pub fn subject(&self) -> &str {
        match self {
            Step::Pull { reference, .. } | Step::Push { reference } | Step::Remove { reference } => reference,
            Step::Tag { target, .. } => target,
            Step::Login { host, .. } | Step::Logout { host } => host,
        }
    }

    /// What the step does, for messages: `tag`, `image rm`, ...
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Pull { .. } => "pull",
            Step::Tag { .. } => "tag",
            Step::Push { .. } => "push",
            Step::Remove { .. } => "image rm",
            Step::Login { .. } => "login",
            Step::Logout { .. } => "logout",
        }
    }

    /// The command words and the environment the step runs with.
    pub fn command(&self) -> DockerCommand {
        let words = |w: &[&str]| DockerCommand::new(w.iter().copied());
        match self {
            Step::Pull { reference, platform: None } => words(&["pull", reference]),
            Step::Pull { reference, platform: Some(p) } => words(&["pull", "--platform", p, reference]),
            Step::Tag { source, target } => words(&["tag", source, target]),
            Step::Push { reference } => words(&["push", reference]),
            Step::Remove { reference } => words(&["image", "rm", reference]),
            Step::Login { host, username } => {
                words(&["login", host, "--username", username, "--password-stdin"])
            }
            Step::Logout { host } => words(&["logout", host]),
        }
    }
}

impl BuildStep {
    pub fn command(&self) -> DockerCommand {
        let mut env = Vec::new();
        let mut args: Vec<String> = match &self.builder {
            // --force-rm: a failed step's container is removed too, not only a successful one's.
            // DOCKER_BUILDKIT=0: a DOCKER_BUILDKIT=1 in the user's environment would otherwise ask a
            // client without buildx for BuildKit, and every build would fail.
            Builder::Legacy => {
                env.push(("DOCKER_BUILDKIT".to_string(), "0".to_string()));
                vec!["build".into(), "--force-rm".into()]
            }
            Builder::BuildKit => {
                env.push(("DOCKER_BUILDKIT".to_string(), "1".to_string()));
                vec!["build".into(), "--progress=plain".into()]
            }
            Builder::Buildx { name } => {
                let mut args = vec!["buildx".to_string(), "build".to_string()];
                if let Some(name) = name {
                    args.extend(["--builder".to_string(), name.clone()]);
                }
                // --load puts the result in the engine's image store, where tag, verify and push
                // find it.
                args.extend(["--load".to_string(), "--progress=plain".to_string()]);
                args
            }
            Builder::Podman => vec!["build".into()],
        };
        // No --pull, even with --pull: every image from outside the inventory is pulled before
        // the builds (the plan's `pulls`), so that each build uses exactly the images whose
        // digests its labels record; and a child must use the parent built in this run, which
        // a pull would replace with last week's or fail to find.
        if self.no_cache {
            args.push("--no-cache".into());
        }
        if !self.platforms.is_empty() {
            args.push("--platform".into());
            args.push(self.platforms.join(","));
        }
        args.extend(["--file".into(), path_arg(&self.dockerfile)]);
        args.extend(["--tag".into(), self.tag.clone()]);
        args.extend(["--iidfile".into(), path_arg(&self.iidfile)]);
        for (key, value) in &self.build_args {
            args.push("--build-arg".into());
            args.push(format!("{key}={value}"));
        }
        for (key, value) in &self.labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.push(path_arg(&self.context));
        DockerCommand { args, env }
    }
}

fn path_arg(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// One container CLI invocation, as an argument vector (never a shell string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerCommand {
    pub args: Vec<String>,
    /// Environment variables the command needs on top of the tool's own.
    pub env: Vec<(String, String)>,
}

impl DockerCommand {
    pub fn new<I, S>(args: I) -> DockerCommand
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DockerCommand { args: args.into_iter().map(Into::into).collect(), env: Vec::new() }
    }

    /// The command as a user would type it, quoted where a shell needs it.
    pub fn display(&self, program: &str) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v)));
        let words = std::iter::once(program).chain(self.args.iter().map(String::as_str)).map(shell_quote);
        env.chain(words).collect::<Vec<_>>().join(" ")
    }
}

fn shell_quote(word: &str) -> String {
    let plain =
        !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(builder: Builder) -> BuildStep {
        BuildStep {
            builder,
            no_cache: true,
            platforms: vec!["linux/arm64".into()],
            dockerfile: "images/Dockerfile-a".into(),
            tag: "r/a:run-1".into(),
            iidfile: "/tmp/a.iid".into(),
            build_args: vec![("V".into(), "1".into())],
            labels: vec![("k".into(), "v w".into())],
            context: "images".into(),
        }
    }

    #[test]
    fn each_builder_s_words() {
        let tail = "--no-cache --platform linux/arm64 --file images/Dockerfile-a --tag r/a:run-1 --iidfile \
                    /tmp/a.iid --build-arg V=1 --label 'k=v w' images";
        let shown = |b: Builder| build(b).command().display("docker");
        assert_eq!(shown(Builder::Legacy), format!("DOCKER_BUILDKIT=0 docker build --force-rm {tail}"));
        assert_eq!(
            shown(Builder::BuildKit),
            format!("DOCKER_BUILDKIT=1 docker build --progress=plain {tail}")
        );
        assert_eq!(
            shown(Builder::Buildx { name: Some("multi".into()) }),
            format!("docker buildx build --builder multi --load --progress=plain {tail}")
        );
        assert_eq!(shown(Builder::Podman), format!("docker build {tail}"));
    }

    #[test]
    fn every_step_says_what_it_is_about() {
        let steps = [
            (Step::tag("r/a:run-1", "r/a:v1"), "tag r/a:run-1 r/a:v1", "r/a:v1"),
            (Step::push("r/a:v1"), "push r/a:v1", "r/a:v1"),
            (Step::pull("alpine:3"), "pull alpine:3", "alpine:3"),
            (Step::remove("r/a:run-1"), "image rm r/a:run-1", "r/a:run-1"),
            (
                Step::Login { host: "ghcr.io".into(), username: "--me".into() },
                "login ghcr.io --username --me --password-stdin",
                "ghcr.io",
            ),
            (Step::Logout { host: "ghcr.io".into() }, "logout ghcr.io", "ghcr.io"),
        ];
        for (step, words, subject) in steps {
            assert!(step.command().args.join(" ").starts_with(words), "{step:?}");
            assert_eq!(step.subject(), subject);
            assert!(words.starts_with(step.verb()), "{step:?}");
        }
    }

    #[test]
    fn quoting() {
        let c = DockerCommand::new(["tag", "a b", "it's", ""]);
        assert_eq!(c.display("docker"), r"docker tag 'a b' 'it'\''s' ''");
    }
}
