//! Runs a child process under supervision: its own process group, a time limit, and a stop
//! (SIGTERM, then SIGKILL, for the whole group) when the limit passes or the tool is
//! interrupted. Every program the tool starts goes through here.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::interrupt::{self, Interrupted};

/// A finished child: whether it succeeded and what it printed (stdout and stderr together
/// when captured).
pub struct Finished {
    pub success: bool,
    pub status: String,
    pub output: String,
}

pub enum Io<'a> {
    /// Output goes straight to the user (builds, tags).
    Inherit,
    /// Output is captured, with optional bytes on stdin.
    Capture(Option<&'a [u8]>),
}

/// Starts `program` with `args`, waits for it, and stops it on a timeout or an interrupt.
/// `install_hint` completes "cannot run `program`: not found." when it is missing.
pub fn run(
    program: &str,
    args: &[String],
    io: Io<'_>,
    timeout: Duration,
    install_hint: &str,
) -> anyhow::Result<Finished> {
    run_with_env(program, args, &[], io, timeout, install_hint)
}

/// Like `run`, with environment variables added to the tool's own.
pub fn run_with_env(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    io: Io<'_>,
    timeout: Duration,
    install_hint: &str,
) -> anyhow::Result<Finished> {
    let mut expression = duct::cmd(program, args).unchecked().before_spawn(|command| {
        interrupt::own_process_group(command);
        Ok(())
    });
    for (key, value) in env {
        expression = expression.env(key, value);
    }
    expression = match io {
        Io::Inherit => expression.stdin_null(),
        Io::Capture(stdin) => {
            let e = match stdin {
                Some(bytes) => expression.stdin_bytes(bytes.to_vec()),
                None => expression.stdin_null(),
            };
            e.stderr_to_stdout().stdout_capture()
        }
    };
    let handle = match expression.start() {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("cannot run `{program}`: not found. {install_hint}")
        }
        Err(e) => bail!("cannot run `{program}`: {e}"),
    };
    let deadline = Instant::now() + timeout;
    loop {
        // Waiting in slices returns as soon as the child exits; between slices, look for a
        // signal or the deadline.
        if let Some(out) = handle.wait_timeout(Duration::from_millis(200))? {
            return Ok(Finished {
                success: out.status.success(),
                status: out.status.to_string(),
                output: String::from_utf8_lossy(&out.stdout).into_owned(),
            });
        }
        if interrupt::requested() {
            stop(&handle);
            return Err(Interrupted.into());
        }
        if Instant::now() >= deadline {
            stop(&handle);
            let name =
                std::path::Path::new(program).file_name().map_or(program.into(), |n| n.to_string_lossy());
            let what = args.first().map_or(String::new(), |a| format!(" {a}"));
            bail!(
                "{name}{what} did not finish within {}s and was stopped (the XTASK_*_TIMEOUT variables raise the limit)",
                timeout.as_secs()
            );
        }
    }
}

/// Stops a running child and everything it started, then reaps it.
fn stop(handle: &duct::Handle) {
    for pid in handle.pids() {
        interrupt::stop_group(pid, Duration::from_secs(5), || matches!(handle.try_wait(), Ok(Some(_))));
    }
    let _ = handle.kill();
    let _ = handle.wait();
}

pub fn sleep_unless_interrupted(wait: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if interrupt::requested() {
            return Err(Interrupted.into());
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
    }
    Ok(())
}

/// The last non-empty line of a child's output, for messages.
pub fn last_line(text: &str) -> &str {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message")
}
