//! Advisory file locks (`flock(2)`) shared by every rbuild process using one store.
//!
//! `flock` locks belong to the open file description, so two `FileLock`s on the same
//! path conflict even inside one process (threads behave like processes), and the
//! kernel drops a lock when its holder dies: a crashed process never leaves a stale
//! lock behind, only a stale lock *file*, which is harmless.
//!
//! Invariant: a lock file is never replaced by rename (that would split holders across
//! two inodes); it is only created in place and, for per-process work dirs, unlinked by
//! its holder.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

use super::error::{Error, Result};
use crate::fs_error::FsError;

/// A held `flock` on a file; released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Waits for an exclusive lock on `path`, creating the file if needed.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        // invariant: a blocking flock never reports EWOULDBLOCK, so `acquire` gives `Some`.
        Self::acquire(path, FlockOperation::LockExclusive).map(|l| l.expect("blocking lock"))
    }

    /// Waits for a shared lock on `path`, creating the file if needed.
    pub fn shared(path: &Path) -> Result<FileLock> {
        // invariant: as in `exclusive`.
        Self::acquire(path, FlockOperation::LockShared).map(|l| l.expect("blocking lock"))
    }

    /// Takes a shared lock on `path` unless somebody holds it exclusively; `None` then.
    pub fn try_shared(path: &Path) -> Result<Option<FileLock>> {
        Self::acquire(path, FlockOperation::NonBlockingLockShared)
    }

    /// Takes an exclusive lock on `path` if nobody holds it; `None` if somebody does.
    pub fn try_exclusive(path: &Path) -> Result<Option<FileLock>> {
        Self::acquire(path, FlockOperation::NonBlockingLockExclusive)
    }

    /// Creates `path` (which must not exist) and locks it exclusively. `None` if the file
    /// already exists or another holder got the lock first.
    pub(crate) fn create_exclusive(path: &Path) -> Result<Option<FileLock>> {
        let file = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(Error::fs("create lock file", path)(e)),
        };
        Self::lock(file, path, FlockOperation::NonBlockingLockExclusive)
    }

    fn acquire(path: &Path, op: FlockOperation) -> Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(Error::fs("open lock file", path))?;
        Self::lock(file, path, op)
    }

    fn lock(file: File, path: &Path, op: FlockOperation) -> Result<Option<FileLock>> {
        loop {
            match flock(&file, op) {
                Ok(()) => {
                    return Ok(Some(FileLock {
                        file,
                        path: path.to_owned(),
                    }))
                }
                Err(Errno::INTR) => continue,
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(Error::fs("lock", path)(e.into())),
            }
        }
    }

    /// The locked file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the locked inode is still the one at [`path`](Self::path). A holder that
    /// locked a file some other process unlinked meanwhile holds nothing useful.
    pub(crate) fn is_current(&self) -> Result<bool> {
        let held =
            rustix::fs::fstat(&self.file).map_err(|e| Error::fs("stat", &self.path)(e.into()))?;
        match rustix::fs::stat(&self.path) {
            Ok(now) => {
                Ok(held.st_nlink > 0 && now.st_ino == held.st_ino && now.st_dev == held.st_dev)
            }
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::fs("stat", &self.path)(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_within_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let held = FileLock::exclusive(&path).unwrap();
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(held);
        assert!(FileLock::try_exclusive(&path).unwrap().is_some());
    }

    #[test]
    fn create_exclusive_refuses_existing_and_tracks_unlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.lock");
        let lock = FileLock::create_exclusive(&path).unwrap().unwrap();
        assert!(FileLock::create_exclusive(&path).unwrap().is_none());
        assert!(lock.is_current().unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(!lock.is_current().unwrap());
    }
}
