//! Where progress goes: plain lines on a terminal, workflow commands inside GitHub Actions
//! (`::group::` folds, `::error::` / `::warning::` annotations).

use std::io::Write;

use anyhow::Context;

use crate::sys::env::Env;
use crate::sys::random;

#[derive(Debug, Clone, Copy)]
pub struct Log {
    github: bool,
}

impl Log {
    pub fn new(env: &Env) -> Log {
        Log { github: env.in_github_actions() }
    }

    pub fn group<T>(&self, title: &str, body: impl FnOnce() -> T) -> T {
        if self.github {
            say!("::group::{}", escape_data(title));
        } else {
            say!("==> {title}");
        }
        let result = body();
        if self.github {
            say!("::endgroup::");
        }
        result
    }

    pub fn info(&self, message: &str) {
        if self.github && could_be_a_command(message) {
            return self.verbatim(|| say!("{message}"));
        }
        say!("{message}");
    }

    /// Prints what another program wrote. In Actions workflow commands are off meanwhile, so
    /// that a `::error::` or `::endgroup::` a Dockerfile echoes stays text.
    pub fn passthrough(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.verbatim(|| {
            say_raw!("{text}");
            if !text.ends_with('\n') {
                say!();
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
        say!("::stop-commands::{token}");
        let _ = std::io::stdout().flush();
        let result = body();
        say!("::{token}::");
        result
    }

    /// A remark about the run (why an image is built, which builder is used): stderr, so that
    /// a dry run's stdout holds nothing but its steps.
    pub fn note(&self, message: &str) {
        if self.github && could_be_a_command(message) {
            // On the stream it is written to, so that the runner reads the two in order.
            let token = random::token(128);
            eprintln!("::stop-commands::{token}\n{message}\n::{token}::");
            return;
        }
        eprintln!("{message}");
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
        if self.github {
            eprintln!("::{level}::{}", escape_data(message));
        } else {
            eprintln!("{level}: {message}");
        }
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
