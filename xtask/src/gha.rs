//! Where progress goes: plain lines on a terminal, workflow commands inside GitHub Actions
//! (`::group::` folds, `::error::` / `::warning::` annotations).

use crate::env::Env;

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
            println!("::group::{}", escape_data(title));
        } else {
            println!("==> {title}");
        }
        let result = body();
        if self.github {
            println!("::endgroup::");
        }
        result
    }

    pub fn info(&self, message: &str) {
        println!("{message}");
    }

    pub fn error(&self, message: &str) {
        self.annotate("error", message);
    }

    fn annotate(&self, level: &str, message: &str) {
        if self.github {
            println!("::{level}::{}", escape_data(message));
        } else {
            eprintln!("{level}: {message}");
        }
    }
}

/// Workflow command data must encode `%`, CR and LF or the runner cuts the message short.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_workflow_command_data() {
        assert_eq!(escape_data("a%b\nc\rd"), "a%25b%0Ac%0Dd");
    }
}
