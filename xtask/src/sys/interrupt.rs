//! SIGINT and SIGTERM set a flag instead of killing the tool, so it can stop its docker child,
//! say which images were fully pushed, and exit non-zero.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    REQUESTED.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// From now on SIGINT and SIGTERM only set the flag `requested` reads.
pub fn install() {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registering can only fail for signals that may not be handled (SIGKILL); these may.
        let _ = signal_hook::flag::register(signal, Arc::clone(flag()));
    }
}

/// Puts a child in a process group of its own, so that stopping it also stops what it started
/// (docker's buildx plugin, for one). The tool handles Ctrl-C itself and passes it on.
pub fn own_process_group(command: &mut std::process::Command) {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
}

/// Stops the process group led by `pid`: SIGTERM first so docker can cancel cleanly, SIGKILL
/// for whatever is left after `grace`.
#[cfg(unix)]
pub fn stop_group(pid: u32, grace: std::time::Duration, exited: impl Fn() -> bool) {
    let Ok(group) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: killpg(2) only sends a signal to the group the child leads; it touches no memory
    // of this process.
    unsafe { libc::killpg(group, libc::SIGTERM) };
    let until = std::time::Instant::now() + grace;
    while std::time::Instant::now() < until && !exited() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The leader may be gone while its children live on; the group is signalled either way.
    // SAFETY: as above.
    unsafe { libc::killpg(group, libc::SIGKILL) };
}

#[cfg(not(unix))]
pub fn stop_group(_pid: u32, _grace: std::time::Duration, _exited: impl Fn() -> bool) {}

/// The error a step ends with when a signal arrived while it ran.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by a signal (Ctrl-C or SIGTERM); the running docker command was stopped")
    }
}

impl std::error::Error for Interrupted {}
