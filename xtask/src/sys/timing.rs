//! Where a run's own time goes, for the bench: with `XTASK_TIMINGS=FILE` every timed step
//! (registry questions, builds, checks, package reads, comparisons, pushes, SBOMs) is kept as
//! a span from the start of the process, and written to FILE as JSON lines when the run ends.
//! Without it, nothing is kept.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

struct Recorder {
    start: Instant,
    file: String,
    spans: Mutex<Vec<String>>,
}

static RECORDER: OnceLock<Option<Recorder>> = OnceLock::new();

/// Starts the clock (at process start) and reads `XTASK_TIMINGS` once.
pub fn start(file: Option<&str>) {
    RECORDER.get_or_init(|| {
        file.filter(|f| !f.is_empty()).map(|file| Recorder {
            start: Instant::now(),
            file: file.to_string(),
            spans: Mutex::default(),
        })
    });
}

/// Runs `work`, kept as a span of kind `what` (about `image`, when it is about one).
pub fn span<T>(what: &str, image: &str, work: impl FnOnce() -> T) -> T {
    let Some(Some(recorder)) = RECORDER.get() else { return work() };
    let from = recorder.start.elapsed();
    let result = work();
    let to = recorder.start.elapsed();
    let line = serde_json::json!({
        "what": what,
        "image": image,
        "from_ms": from.as_secs_f64() * 1000.0,
        "to_ms": to.as_secs_f64() * 1000.0,
    });
    recorder.spans.lock().unwrap_or_else(|p| p.into_inner()).push(line.to_string());
    result
}

/// Writes the spans kept, with the process's end as the last line (`what` = "exit").
pub fn finish() {
    let Some(Some(recorder)) = RECORDER.get() else { return };
    let end = recorder.start.elapsed().as_secs_f64() * 1000.0;
    let mut lines = recorder.spans.lock().unwrap_or_else(|p| p.into_inner()).clone();
    lines.push(serde_json::json!({ "what": "exit", "image": "", "from_ms": end, "to_ms": end }).to_string());
    // A bench aid: a file that cannot be written loses only the figures, and says so.
    if let Err(e) = std::fs::write(&recorder.file, lines.join("\n") + "\n") {
        let warning = format!("warning: XTASK_TIMINGS: cannot write {}: {e}\n", recorder.file);
        crate::sys::output::Sink::terminal().write(crate::sys::output::Stream::Err, &warning);
    }
}
