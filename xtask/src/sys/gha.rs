//! Where progress goes: plain lines on a terminal, workflow commands inside GitHub Actions
//! (`::group::` folds, `::error::` / `::warning::` annotations).

use std::io::Write;

use anyhow::Context;

use crate::sys::env::Env;
use crate::sys::output::{Sink, Stream};
use crate::sys::random;

#[derive(Debug, Clone)]
pub struct Log {
    github: bool,
    sink: Sink,
}

impl Log {
    pub fn new(env: &Env) -> Log {
        Log { github: env.in_github_actions(), sink: Sink::terminal() }
    }

    /// A log that keeps what it is told (`sink().text(..)` reads it), as GitHub Actions would
    /// see it when `github`.
    #[cfg(test)]
    pub fn captured(github: bool) -> Log {
        Log { github, sink: Sink::captured() }
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// A line of the command's own output (a listing, JSON, a dry run's step), as it is.
    pub fn say(&self, line: &str) {
        self.sink.write(Stream::Out, &format!("{line}\n"));
    }

    /// Text of the command's own output, as it is (its newlines its own).
    pub fn say_raw(&self, text: &str) {
        self.sink.write(Stream::Out, text);
    }

    pub fn group<T>(&self, title: &str, body: impl FnOnce() -> T) -> T {
        if self.github {
            self.say(&format!("::group::{}", escape_data(title)));
        } else {
            self.say(&format!("==> {title}"));
        }
        let result = body();
        if self.github {
            self.say("::endgroup::");
        }
        result
    }

    pub fn info(&self, message: &str) {
        if self.github && could_be_a_command(message) {
            return self.verbatim(|| self.say(message));
        }
        self.say(message);
    }

    /// Prints what another program wrote. In Actions workflow commands are off meanwhile, so
    /// that a `::error::` or `::endgroup::` a Dockerfile echoes stays text.
    pub fn passthrough(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.verbatim(|| {
            self.say_raw(text);
            if !text.ends_with('\n') {
                self.say("");
            }
        });
    }

    /// Runs `body`, whose output another program writes straight to ours, with workflow
    /// commands off in Actions (`::stop-commands::TOKEN` ... `::TOKEN::`, the token new each
    /// time so the output cannot guess it).
    pub fn verbatim<T>(&self, body: impl FnOnce() -> T) -> T {
        if !self.github {
            return body();
        }
        let token = random::token(128);
        self.say(&format!("::stop-commands::{token}"));
        let result = body();
        self.say(&format!("::{token}::"));
        result
    }

    /// A remark about the run (why an image is built, which builder is used): stderr, so that
    /// a dry run's stdout holds nothing but its steps.
    pub fn note(&self, message: &str) {
        if self.github && could_be_a_command(message) {
            // On the stream it is written to, so that the runner reads the two in order.
            let token = random::token(128);
            self.sink.write(Stream::Err, &format!("::stop-commands::{token}\n{message}\n::{token}::\n"));
            return;
        }
        self.sink.write(Stream::Err, &format!("{message}\n"));
    }

    /// The one-line progress of concurrent builds, redrawn in place (a terminal only).
    pub fn progress(&self, line: &str) {
        self.sink.write(Stream::Err, &format!("\r\x1b[2K{line}"));
    }

    pub fn warning(&self, message: &str) {
        self.annotate("warning", message);
    }

    pub fn notice(&self, message: &str) {
        self.annotate("notice", message);
    }

    pub fn error(&self, message: &str) {
        self.annotate("error", message);
    }

    fn annotate(&self, level: &str, message: &str) {
        // On stderr in Actions too, which the runner reads for workflow commands as well: stdout
        // stays the command's own output (a dry run's steps, JSON).
        let line = match self.github {
            true => format!("::{level}::{}\n", escape_data(message)),
            false => format!("{level}: {message}\n"),
        };
        self.sink.write(Stream::Err, &line);
    }
}

/// Appends Markdown to the job summary ($GITHUB_STEP_SUMMARY); nothing outside Actions.
pub fn append_summary(env: &Env, markdown: &str) -> anyhow::Result<()> {
    append_to(env, "GITHUB_STEP_SUMMARY", markdown)
}

/// Sets a step output ($GITHUB_OUTPUT). `value` must be one line (JSON without newlines is).
pub fn set_output(env: &Env, name: &str, value: &str) -> anyhow::Result<()> {
    debug_assert!(!value.contains('\n'));
    append_to(env, "GITHUB_OUTPUT", &format!("{name}={value}\n"))
}

fn append_to(env: &Env, variable: &str, text: &str) -> anyhow::Result<()> {
    let Some(path) = env.get(variable) else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open ${variable} ({path})"))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write ${variable} ({path})"))
}

/// Whether a line of `message` could be read as a workflow command by the runner: one that
/// starts with `::` (leading blanks aside), or holds the older `##[` form. The tool's own lines
/// never do; a name or a path from an image or a repository might.
fn could_be_a_command(message: &str) -> bool {
    message.lines().any(|line| line.trim_start().starts_with("::") || line.contains("##["))
}

/// Workflow command data must encode `%`, CR and LF or the runner cuts the message short.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_a_runner_could_take_for_a_command() {
        assert!(could_be_a_command("::error title=X::pwned"));
        assert!(could_be_a_command("apk  ok\n   ::add-mask::secret"));
        assert!(could_be_a_command("x ##[error]y"));
        assert!(!could_be_a_command("alpine: published: content: /etc/a::b"));
    }

    #[test]
    fn escapes_workflow_command_data() {
        assert_eq!(escape_data("a%b\nc\rd"), "a%25b%0Ac%0Dd");
    }
}
