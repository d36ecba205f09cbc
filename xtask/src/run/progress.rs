//! The one-line progress of concurrent builds on a terminal.

use crate::plan::Build;
use crate::run::State;
use crate::sys::gha::Log;

/// The one-line status of running builds, redrawn on a terminal.
pub(crate) struct Progress {
    on: bool,
    shown: bool,
}

impl Progress {
    pub(crate) fn new(on: bool) -> Progress {
        Progress { on, shown: false }
    }

    pub(crate) fn show(&mut self, log: &Log, steps: &[Build], state: &[State]) {
        if !self.on {
            return;
        }
        let running: Vec<String> = steps
            .iter()
            .zip(state)
            .filter_map(|(s, st)| match st {
                State::Running(since) => Some(format!("{} {}s", s.image, since.elapsed().as_secs())),
                _ => None,
            })
            .collect();
        let built = state.iter().filter(|s| **s == State::Built).count();
        log.progress(&format!("building {} | {built}/{} built", running.join(", "), steps.len()));
        self.shown = true;
    }

    pub(crate) fn clear(&mut self, log: &Log) {
        if self.shown {
            log.progress("");
            self.shown = false;
        }
    }
}
