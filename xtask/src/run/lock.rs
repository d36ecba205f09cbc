//! A lock per published reference, held by a run from the moment it tags a reference until it
//! has read the pushed tag back, so that two runs on one machine never tag, push and read back
//! the same name at the same time. The lock files are advisory locks in one folder per machine:
//! `$XTASK_LOCK_DIR`, else `/tmp/xtask-locks` whatever `$TMPDIR` says, so that runs with
//! different temporary folders still meet.
//!
//! The holder removes its lock file before it lets go, so the folder holds only the locks in
//! use, not one file per reference ever pushed. A waiter that then gets the lock of a file no
//! longer in the folder starts again with the file now there (or a new one), so two runs never
//! hold the same reference's lock through two different files.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::sys::interrupt::{self, Interrupted};

/// Held while alive; its file leaves the folder when it is dropped.
pub struct ReferenceLock {
    file: File,
    path: PathBuf,
}

impl Drop for ReferenceLock {
    fn drop(&mut self) {
        // Still held: whoever opened this file meanwhile finds it gone once they get the lock,
        // and starts again. Another user's file in the shared folder may not be ours to remove.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The folder of the lock files.
pub fn folder(env: &crate::sys::env::Env) -> PathBuf {
    env.get("XTASK_LOCK_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp/xtask-locks"))
}

/// Waits for the lock of `reference` in `folder`; `waiting` is called once if another run
/// holds it.
pub fn lock(folder: &Path, reference: &str, waiting: impl FnOnce()) -> anyhow::Result<ReferenceLock> {
    let path = folder.join(file_name(reference));
    if !folder.is_dir() {
        std::fs::create_dir_all(folder).with_context(|| {
            format!(
                "cannot create the folder of the push locks, {} (XTASK_LOCK_DIR names another)",
                folder.display()
            )
        })?;
        // Shared by every user of the machine, as /tmp is: anyone may add a lock file.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o1777));
    }
    let mut waiting = Some(waiting);
    loop {
        // A lock needs only a file to hold: another user's lock file is opened for reading.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new().create(true).truncate(false).write(true).mode(0o666).open(&path)
        }
        .or_else(|_| File::open(&path))
        .with_context(|| {
            format!("cannot open the lock file {} (XTASK_LOCK_DIR names another folder)", path.display())
        })?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
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
        if same_file(&file, &path) {
            sweep(folder, &path);
            return Ok(ReferenceLock { file, path });
        }
        // The holder before removed this file as it let go: the lock lives on in the folder's.
    }
}

/// Removes the lock files that no one holds: those a run left when it was killed before it
/// could remove its own (SIGKILL). Each is locked first and removed while held, as a holder
/// removes its own, so a run waiting for it starts again with a new file.
fn sweep(folder: &Path, own: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if path == own || path.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        let Ok(file) = File::open(&path) else { continue };
        if file.try_lock().is_ok() && same_file(&file, &path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// A file name for `reference`: readable, at most 120 bytes however long the reference, and
/// distinct for distinct references (a 64-bit FNV-1a hash of the whole reference ends it).
fn file_name(reference: &str) -> String {
    let readable: String = reference
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .take(96)
        .collect();
    let hash = reference
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{readable}-{hash:016x}.lock")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let dir = crate::testdir::TestDir::new("locks");
        let reference = "test.invalid/lock:v1";
        let first = lock(dir.path(), reference, || panic!("nobody holds it yet")).unwrap();
        let waited = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let second = scope
                .spawn(|| lock(dir.path(), reference, || waited.store(true, Ordering::SeqCst)).map(|_| ()));
            std::thread::sleep(Duration::from_millis(300));
            assert!(!second.is_finished(), "the second lock went through while the first was held");
            drop(first);
            second.join().unwrap().unwrap();
        });
        assert!(waited.load(Ordering::SeqCst));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a lock let go leaves no file behind");
        assert_ne!(file_name("a/b:c"), file_name("a_b_c"), "distinct references never share a lock");
        let long = format!("{}:{}", "r/".repeat(100), "t".repeat(128));
        assert!(file_name(&long).len() <= 120, "{}", file_name(&long));
        assert_ne!(file_name(&long), file_name(&long.replace("tt", "tu")));
    }
}

#[cfg(test)]
mod contention {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Many holders, each removing its file as it lets go: never two inside at once, and the
    /// folder is empty at the end.
    #[test]
    fn removed_lock_files_never_let_two_holders_in() {
        let dir = crate::testdir::TestDir::new("locks-race");
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10 {
                        let _held = lock(dir.path(), "race/ref:v1", || {}).unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1, "two holders of one reference's lock at once");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A run killed while it held a lock leaves its file; the next run's lock removes it, and
    /// never a file someone holds.
    #[test]
    fn files_left_by_a_killed_run_go_and_held_ones_stay() {
        let dir = crate::testdir::TestDir::new("locks-stale");
        let stale = dir.write(&file_name("r/left:v1"), "");
        let held = lock(dir.path(), "r/held:v1", || {}).unwrap();
        let mine = lock(dir.path(), "r/new:v1", || {}).unwrap();
        assert!(!stale.exists(), "the stale lock file is still there");
        assert!(dir.path().join(file_name("r/held:v1")).exists(), "a held lock's file was removed");
        drop((held, mine));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
