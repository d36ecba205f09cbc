//! SIGINT and SIGTERM set a flag instead of killing the tool, so it can stop its docker child,
//! say which images were fully pushed, and exit non-zero.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

#[cfg(unix)]
pub fn install() {
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    extern "C" fn on_signal(_: i32) {
        // Only an atomic store: nothing else is async-signal-safe here.
        REQUESTED.store(true, Ordering::SeqCst);
    }
    // SAFETY: `signal` from the C library the standard library links; the handler only stores
    // to an atomic, which is async-signal-safe.
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
}

#[cfg(not(unix))]
pub fn install() {}

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
    const SIGTERM: i32 = 15;
    const SIGKILL: i32 = 9;
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    let group = -(pid as i32);
    // SAFETY: kill(2) with a negative pid signals the group the child leads; it has no memory
    // effects in this process.
    unsafe { kill(group, SIGTERM) };
    let until = std::time::Instant::now() + grace;
    while std::time::Instant::now() < until && !exited() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The leader may be gone while its children live on; the group is signalled either way.
    unsafe { kill(group, SIGKILL) };
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
