//! SIGINT, SIGTERM, SIGHUP and SIGQUIT (Ctrl-C, a stop, a closed terminal or SSH session, Ctrl-\)
//! set a flag instead of killing the tool, so it can stop its docker child, say which images
//! were fully pushed, and exit non-zero. What the tool cannot react to (SIGKILL, an
//! out-of-memory kill) still ends its children: each is tied to the tool's life.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    REQUESTED.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// The signals that end a run in ordinary life, each handled like Ctrl-C.
pub const HANDLED: [i32; 4] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
];

/// From now on the `HANDLED` signals only set the flag `requested` reads.
pub fn install() {
    for signal in HANDLED {
        // Registering can only fail for signals that may not be handled (SIGKILL); these may.
        let _ = signal_hook::flag::register(signal, Arc::clone(flag()));
    }
}

/// Puts a child in a process group of its own, so that stopping it also stops what it started
/// (docker's buildx plugin, for one); the tool handles Ctrl-C itself and passes it on. And ties
/// the child's life to the tool's: if the tool dies without a word (SIGKILL, the OOM killer, a
/// runner's hard stop), the kernel kills the child (Linux's parent-death signal), so no push
/// goes on alone. The signal comes when the thread that started the child ends, and every
/// child here is waited for by the thread that started it.
pub fn supervised(command: &mut std::process::Command) {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid(2) is async-signal-safe, and this runs before the fork.
        let parent = unsafe { libc::getpid() };
        // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls
        // are allowed: prctl(2), getppid(2) and raise(3) are, and nothing is allocated.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // The tool may have died between the fork and the prctl: then nobody is left
                // to send the signal.
                if libc::getppid() != parent {
                    libc::raise(libc::SIGKILL);
                }
                Ok(())
            });
        }
    }
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
        f.write_str(
            "interrupted by a signal (Ctrl-C, SIGTERM, SIGHUP or SIGQUIT); what was running was stopped",
        )
    }
}

impl std::error::Error for Interrupted {}
