//! A lock per published reference, held by a run from the moment it tags a reference until it
//! has read the pushed tag back, so that two runs on one machine never tag, push and read back
//! the same name at the same time. The lock files are advisory locks in the temporary folder.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::sys::interrupt::{self, Interrupted};

/// Held while alive.
pub struct ReferenceLock {
    _file: File,
}

/// Waits for the lock of `reference`; `waiting` is called once if another run holds it.
pub fn lock(reference: &str, waiting: impl FnOnce()) -> anyhow::Result<ReferenceLock> {
    let path = path(reference);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    let mut waiting = Some(waiting);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(ReferenceLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                if let Some(say) = waiting.take() {
                    say();
                }
                if interrupt::requested() {
                    return Err(Interrupted.into());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

fn path(reference: &str) -> PathBuf {
    // Every other character is spelled out, so distinct references never share a file.
    let name: String = reference
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("_{b:02x}")
            }
        })
        .collect();
    std::env::temp_dir().join("xtask-locks").join(format!("{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let reference = format!("test.invalid/lock-{}:v1", std::process::id());
        let first = lock(&reference, || panic!("nobody holds it yet")).unwrap();
        let waited = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let second =
                scope.spawn(|| lock(&reference, || waited.store(true, Ordering::SeqCst)).map(|_| ()));
            std::thread::sleep(Duration::from_millis(300));
            assert!(!second.is_finished(), "the second lock went through while the first was held");
            drop(first);
            second.join().unwrap().unwrap();
        });
        assert!(waited.load(Ordering::SeqCst));
        assert_ne!(path("a/b:c"), path("a_b_c"), "distinct references never share a lock");
    }
}
