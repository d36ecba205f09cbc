//! Runs a child process under supervision: its own process group, a time limit, and a stop
//! (SIGTERM, then SIGKILL, for the whole group) when the limit passes or the tool is
//! interrupted. Every program the tool starts goes through here.

use crate::sys::output::{Sink, Stream};
use std::io::BufRead;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::sys::interrupt::{self, Interrupted};

/// How long a stopped child's process group gets between SIGTERM and SIGKILL: long enough for
/// docker to cancel cleanly, short enough that a stop is done within two seconds of its cause.
const GRACE: Duration = Duration::from_millis(1500);

/// How often a running child is looked at for a signal or its deadline (its end is noticed at
/// once).
const SLICE: Duration = Duration::from_millis(100);

/// How many of a streamed child's last lines are kept for the error message.
const TAIL_LINES: usize = 12;

/// A child that ran to its end or was stopped at its time limit.
#[derive(Debug, Clone)]
pub struct Finished {
    pub success: bool,
    /// `exit status: 1`, or `stopped after 120s` when its time limit ran out.
    pub status: String,
    /// The exit code, when it exited by itself.
    pub code: Option<i32>,
    /// Set when the child was stopped because its time limit ran out.
    pub timed_out: Option<Duration>,
    /// What it printed on stdout (captured runs; empty when streamed).
    pub stdout: String,
    /// What it printed on stderr (captured runs), or the last lines of everything it printed
    /// (streamed runs), for messages.
    pub stderr: String,
}

impl Finished {
    /// The last line that says what went wrong: from stderr, else stdout.
    pub fn error_line(&self) -> &str {
        match last_line(&self.stderr) {
            "no message" => last_line(&self.stdout),
            line => line,
        }
    }

    /// Everything it printed, stdout then stderr, for logs.
    pub fn transcript(&self) -> String {
        let mut text = self.stdout.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.stderr);
        text
    }
}

pub enum Io<'a> {
    /// stdout and stderr are captured apart, with optional bytes on stdin.
    Capture(Option<&'a [u8]>),
    /// Output goes to the user as it comes (builds); its last lines are kept for messages.
    Stream(&'a Sink),
}

/// Whether `program` is found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Starts `program` with `args`, waits for it, and stops it on a timeout or an interrupt.
/// `install_hint` completes "cannot run `program`: not found." when it is missing. Err only
/// when it could not start or a signal stopped it; a timeout is a `Finished` with `timed_out`.
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
    let expression = expression(program, args, env);
    match io {
        Io::Capture(stdin) => {
            let e = match stdin {
                Some(bytes) => expression.stdin_bytes(bytes.to_vec()),
                None => expression.stdin_null(),
            };
            let child = started(
                program,
                install_hint,
                e.stdout_capture().stderr_capture().start().map(Child::Captured),
            )?;
            let (mut finished, ()) = supervise(&child, timeout, |_| ())?;
            finished.stdout = text(&finished_output(&child).stdout);
            finished.stderr = text(&finished_output(&child).stderr);
            Ok(finished)
        }
        Io::Stream(sink) => {
            let e = expression.stdin_null().stderr_to_stdout();
            let child = started(program, install_hint, e.reader().map(Child::Streamed))?;
            let (mut finished, tail) =
                supervise(&child, timeout, |reader| forward(reader.expect("a reader"), sink))?;
            finished.stderr = tail;
            Ok(finished)
        }
    }
}

/// Runs `program` and hands its stdout to `read` as it comes (stderr is kept for messages),
/// under the same time limit and stop as `run`: for output too large to hold, such as an
/// image's files from `docker export`. What `read` returns comes back beside the `Finished`.
pub fn run_reading<T: Send>(
    program: &str,
    args: &[String],
    timeout: Duration,
    install_hint: &str,
    read: impl FnOnce(&mut dyn std::io::Read) -> T + Send,
) -> anyhow::Result<(Finished, T)> {
    let e = expression(program, args, &[]).stdin_null().stderr_capture();
    let child = started(program, install_hint, e.reader().map(Child::Streamed))?;
    let (mut finished, value) = supervise(&child, timeout, |reader| {
        let mut reader = reader.expect("a reader");
        let value = read(&mut reader);
        // Whatever `read` left is drained, so that the child can finish writing and exit.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        value
    })?;
    finished.stderr = text(&finished_output(&child).stderr);
    Ok((finished, value))
}

/// Secrets the tool reads from its environment; its children get them only on stdin.
const SECRETS: [&str; 3] = ["CR_PAT", "GITHUB_TOKEN", "GH_ADMIN_TOKEN"];

fn expression(program: &str, args: &[String], env: &[(String, String)]) -> duct::Expression {
    let mut expression = duct::cmd(program, args).unchecked().before_spawn(|command| {
        interrupt::supervised(command);
        Ok(())
    });
    for secret in SECRETS {
        expression = expression.env_remove(secret);
    }
    for (key, value) in env {
        expression = expression.env(key, value);
    }
    expression
}

fn started(program: &str, install_hint: &str, child: std::io::Result<Child>) -> anyhow::Result<Child> {
    match child {
        Ok(child) => Ok(child),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("cannot run `{program}`: not found. {install_hint}")
        }
        Err(e) => bail!("cannot run `{program}`: {e}"),
    }
}

/// The output of a child that has finished.
fn finished_output(child: &Child) -> std::process::Output {
    child.try_wait().ok().flatten().cloned().unwrap_or_else(|| std::process::Output {
        status: std::process::ExitStatus::default(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    })
}

/// Waits for `child` while `consume` reads its stdout (streamed children) on another thread,
/// stopping it on a signal or at the deadline. stdout and stderr are left for the caller.
fn supervise<T: Send>(
    child: &Child,
    timeout: Duration,
    consume: impl FnOnce(Option<&duct::ReaderHandle>) -> T + Send,
) -> anyhow::Result<(Finished, T)> {
    let deadline = Instant::now() + timeout;
    std::thread::scope(|scope| {
        // The consumer's end (at the output's end) says a streamed child is done.
        let (done, ended) = std::sync::mpsc::channel::<()>();
        let consumer = scope.spawn(move || {
            let value = consume(match child {
                Child::Streamed(reader) => Some(reader),
                Child::Captured(_) => None,
            });
            drop(done);
            value
        });
        let outcome = watch(child, &ended, deadline);
        let value = consumer
            .join()
            .map_err(|_| anyhow::anyhow!("internal error: reading a child's output panicked"))?;
        let (output, timed_out) = outcome?;
        let status = match timed_out {
            true => format!("stopped after {}s", timeout.as_secs_f64()),
            false => output.status.to_string(),
        };
        let finished = Finished {
            success: !timed_out && output.status.success(),
            status,
            code: if timed_out { None } else { output.status.code() },
            timed_out: timed_out.then_some(timeout),
            stdout: String::new(),
            stderr: String::new(),
        };
        Ok((finished, value))
    })
}

enum Child {
    Captured(duct::Handle),
    Streamed(duct::ReaderHandle),
}

impl Child {
    /// Waits up to `slice` for the child's end.
    fn wait_slice(
        &self,
        slice: Duration,
        ended: &std::sync::mpsc::Receiver<()>,
    ) -> std::io::Result<Option<&std::process::Output>> {
        match self {
            Child::Captured(h) => h.wait_timeout(slice),
            Child::Streamed(r) => {
                if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) = ended.recv_timeout(slice) {
                    // Its output has ended; it may still take a moment to exit.
                    if r.try_wait()?.is_none() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                r.try_wait()
            }
        }
    }

    fn try_wait(&self) -> std::io::Result<Option<&std::process::Output>> {
        match self {
            Child::Captured(h) => h.try_wait(),
            Child::Streamed(r) => r.try_wait(),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Child::Captured(h) => h.pids(),
            Child::Streamed(r) => r.pids(),
        }
    }

    fn kill(&self) {
        let _ = match self {
            Child::Captured(h) => h.kill(),
            Child::Streamed(r) => r.kill(),
        };
    }
}

/// Waits for the child; stops its whole process group on a signal or at the deadline. The
/// flag says whether the deadline stopped it.
fn watch(
    child: &Child,
    ended: &std::sync::mpsc::Receiver<()>,
    deadline: Instant,
) -> anyhow::Result<(std::process::Output, bool)> {
    let mut timed_out = false;
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).clamp(Duration::from_millis(1), SLICE);
        if let Some(output) = child.wait_slice(slice, ended)? {
            return Ok((output.clone(), timed_out));
        }
        if interrupt::requested() {
            stop(child);
            return Err(Interrupted.into());
        }
        if !timed_out && Instant::now() >= deadline {
            stop(child);
            timed_out = true;
        }
    }
}

/// Stops a running child and everything it started.
fn stop(child: &Child) {
    for pid in child.pids() {
        interrupt::stop_group(pid, GRACE, || matches!(child.try_wait(), Ok(Some(_))));
    }
    child.kill();
}

/// Copies a streamed child's output to ours as it comes; returns its last lines.
fn forward(reader: &duct::ReaderHandle, sink: &Sink) -> String {
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut lines = std::io::BufReader::new(reader);
    let mut line = Vec::new();
    while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        // Output cut off mid-line (a progress bar, a child stopped at its time limit) still ends
        // its line, so that what is printed next starts one (a workflow command must).
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        sink.write_bytes(Stream::Out, &line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text(&line));
        line.clear();
    }
    tail.into_iter().collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// The last `n` non-empty lines, oldest first, for annotations that must carry the cause.
pub fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let mut lines: Vec<&str> =
        text.lines().rev().map(str::trim_end).filter(|l| !l.trim().is_empty()).take(n).collect();
    lines.reverse();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, io: Io<'_>, timeout: Duration) -> Finished {
        run("sh", &["-c".to_string(), script.to_string()], io, timeout, "").unwrap()
    }

    #[test]
    fn stdout_and_stderr_are_kept_apart() {
        let f = sh("echo out; echo err >&2; exit 3", Io::Capture(None), Duration::from_secs(10));
        assert!(!f.success);
        assert_eq!((f.stdout.as_str(), f.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(f.error_line(), "err");
        assert_eq!(f.status, "exit status: 3");
        assert_eq!(f.timed_out, None);
    }

    #[test]
    fn a_streamed_child_keeps_its_last_lines() {
        let sink = Sink::captured();
        let f = sh(
            "for i in $(seq 1 30); do echo line $i; done; echo fail >&2; exit 1",
            Io::Stream(&sink),
            Duration::from_secs(10),
        );
        assert!(!f.success);
        assert!(f.stdout.is_empty());
        let lines: Vec<&str> = f.stderr.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last(), Some(&"fail"));
        assert_eq!(lines[0], "line 20");
        assert!(sink.text(Stream::Out).starts_with("line 1\nline 2\n"), "the output goes to the sink");
        assert!(sink.text(Stream::Out).ends_with("line 30\nfail\n"));
    }

    #[test]
    fn a_child_past_its_limit_is_stopped_with_its_whole_group() {
        let dir = crate::testdir::TestDir::new("group");
        let pid_file = dir.path().join("pid");
        // The grandchild ignores SIGTERM, so only the SIGKILL after the grace ends it.
        let script =
            format!("sh -c 'trap \"\" TERM; sleep 30 & echo $! > {}; wait' & wait", pid_file.display());
        let f = sh(&script, Io::Capture(None), Duration::from_millis(300));
        assert!(!f.success);
        assert_eq!(f.timed_out, Some(Duration::from_millis(300)));
        assert_eq!(f.status, "stopped after 0.3s");
        // SIGKILL takes effect as the process is next scheduled, and it may linger as a zombie
        // until it is reaped: give it a moment, then it must not run.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let runs = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
            stat.is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        };
        let mut tries = 0;
        while runs() && tries < 20 {
            std::thread::sleep(Duration::from_millis(50));
            tries += 1;
        }
        assert!(!runs(), "the grandchild outlived the stop");
    }

    #[test]
    fn a_reader_gets_stdout_as_it_comes_and_stderr_is_kept() {
        let script = "echo one; echo two; echo oops >&2; exit 4".to_string();
        let (f, lines) = run_reading("sh", &["-c".to_string(), script], Duration::from_secs(10), "", |r| {
            std::io::BufRead::lines(std::io::BufReader::new(r)).count()
        })
        .unwrap();
        assert_eq!(lines, 2);
        assert_eq!((f.success, f.stderr.as_str(), f.code), (false, "oops\n", Some(4)));
        // A reader that stops early still lets the child finish.
        let (f, ()) = run_reading(
            "sh",
            &["-c".to_string(), "seq 1 100000".to_string()],
            Duration::from_secs(10),
            "",
            |_| (),
        )
        .unwrap();
        assert!(f.success);
    }

    #[test]
    fn a_missing_program_says_what_to_do() {
        let e = run("/nonexistent/tool", &[], Io::Capture(None), Duration::from_secs(1), "Install it.")
            .unwrap_err();
        assert_eq!(e.to_string(), "cannot run `/nonexistent/tool`: not found. Install it.");
    }

    #[test]
    fn last_lines_skip_blanks() {
        assert_eq!(last_lines("a\n\nb\nc\n\n", 2), ["b", "c"]);
        assert_eq!(last_line("x\n  \n"), "x");
    }
}
