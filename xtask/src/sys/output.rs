//! The one place the tool's words leave it: the terminal (stdout for a command's output and
//! progress, stderr for notes and annotations), or a buffer a test reads back. A closed stdout
//! (`cargo xtask list | head -1`) is not an error: the words are dropped and the work goes on,
//! so a publish whose log reader went away still finishes and cleans up.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Where output goes. Cloning shares the destination.
#[derive(Debug, Clone, Default)]
pub struct Sink {
    captured: Option<Kept>,
}

type Kept = Arc<Mutex<Vec<(Stream, String)>>>;

impl Sink {
    pub fn terminal() -> Sink {
        Sink { captured: None }
    }

    /// A sink that keeps everything for `text` to return.
    #[cfg(test)]
    pub fn captured() -> Sink {
        Sink { captured: Some(Arc::default()) }
    }

    /// Whether a line redrawn in place (progress) reaches a person: stderr is a terminal.
    pub fn shows_progress(&self) -> bool {
        self.captured.is_none() && std::io::stderr().is_terminal()
    }

    /// Writes `text` as it is (no newline added) to `stream`.
    pub fn write(&self, stream: Stream, text: &str) {
        self.write_bytes(stream, text.as_bytes());
    }

    /// Writes what another program printed, byte for byte (its text may not be UTF-8).
    pub fn write_bytes(&self, stream: Stream, bytes: &[u8]) {
        if let Some(kept) = &self.captured {
            let text = String::from_utf8_lossy(bytes).into_owned();
            kept.lock().unwrap_or_else(|p| p.into_inner()).push((stream, text));
            return;
        }
        let _ = match stream {
            Stream::Out => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|_| out.flush())
            }
            Stream::Err => std::io::stderr().lock().write_all(bytes),
        };
    }

    /// Everything written to `stream` so far (captured sinks; empty for the terminal).
    #[cfg(test)]
    pub fn text(&self, stream: Stream) -> String {
        let Some(kept) = &self.captured else { return String::new() };
        let kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().filter(|(s, _)| *s == stream).map(|(_, t)| t.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_sink_keeps_each_stream_in_order_and_clones_share_it() {
        let sink = Sink::captured();
        let clone = sink.clone();
        sink.write(Stream::Out, "a\n");
        clone.write(Stream::Err, "note\n");
        clone.write(Stream::Out, "b");
        assert_eq!(sink.text(Stream::Out), "a\nb");
        assert_eq!(sink.text(Stream::Err), "note\n");
        assert!(!sink.shows_progress());
        assert_eq!(Sink::terminal().text(Stream::Out), "");
    }
}
