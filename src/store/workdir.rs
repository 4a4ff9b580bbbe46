//! Per-process work dirs under `tmp/`, and removal of those whose process died.
//!
//! Protocol (each step matters for the race it closes):
//! 1. the owner creates `tmp/<id>.lock` with `O_EXCL` and flocks it;
//! 2. it checks the locked inode is still linked at that path (a cleaner may have
//!    removed the file between 1's create and lock; then it starts over with a new id);
//! 3. only then it creates `tmp/<id>/`.
//!
//! A cleaner removes `tmp/<id>/` and then `tmp/<id>.lock` only while it holds that lock.
//! So a live owner's dir is never removed, and a dir without a lock file has no live
//! owner (its lock file can only be gone if a cleaner held the lock), so it is garbage
//! too. The owner removes both when the store is dropped.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::layout::unique_name;
use super::lock::FileLock;
use crate::fs_error::FsError;

const LOCK_SUFFIX: &str = ".lock";

/// A work dir under `tmp/` that belongs to this process while the value lives.
#[derive(Debug)]
pub(crate) struct WorkDir {
    dir: PathBuf,
    lock: FileLock,
}

impl WorkDir {
    /// Creates and locks a fresh work dir in `tmp`.
    pub(crate) fn create(tmp: &Path) -> Result<WorkDir> {
        loop {
            let id = unique_name("w");
            let lock_path = tmp.join(format!("{id}{LOCK_SUFFIX}"));
            let Some(lock) = FileLock::create_exclusive(&lock_path)? else {
                continue;
            };
            if !lock.is_current()? {
                continue;
            }
            let dir = tmp.join(&id);
            fs::create_dir(&dir).map_err(Error::fs("create work dir", &dir))?;
            return Ok(WorkDir { dir, lock });
        }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Best effort: whatever is left is removed by the next `Store::open`.
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(self.lock.path());
    }
}

/// Removes the work dirs in `tmp` whose owner is gone; returns how many.
pub(crate) fn clean_stale(tmp: &Path) -> Result<usize> {
    let mut removed = 0;
    let entries = fs::read_dir(tmp).map_err(Error::fs("read directory", tmp))?;
    for entry in entries {
        let entry = entry.map_err(Error::fs("read directory", tmp))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // Not a name rbuild makes: garbage.
            remove_any(&entry.path())?;
            removed += 1;
            continue;
        };
        if let Some(id) = name.strip_suffix(LOCK_SUFFIX) {
            let lock_path = entry.path();
            if let Some(lock) = FileLock::try_exclusive(&lock_path)? {
                remove_any(&tmp.join(id))?;
                remove_any(&lock_path)?;
                drop(lock);
                removed += 1;
            }
        } else if !tmp.join(format!("{name}{LOCK_SUFFIX}")).exists() {
            remove_any(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The entries of `tmp` whose owner is gone, as [`clean_stale`] would remove them,
/// without removing anything: a dead owner's work dir (or its lock file when the dir
/// is gone) and entries without a lock file.
pub(crate) fn list_stale(tmp: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(tmp).map_err(Error::fs("read directory", tmp))?;
    for entry in entries {
        let entry = entry.map_err(Error::fs("read directory", tmp))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            out.push(entry.path());
            continue;
        };
        if let Some(id) = name.strip_suffix(LOCK_SUFFIX) {
            if FileLock::try_exclusive(&entry.path())?.is_some() {
                let dir = tmp.join(id);
                out.push(if dir.exists() { dir } else { entry.path() });
            }
        } else if !tmp.join(format!("{name}{LOCK_SUFFIX}")).exists() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes a file or a directory tree; a missing one is fine (another cleaner won).
fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::fs("stat", path)(e)),
    };
    let result = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::fs("remove stale", path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_dirs_survive_dead_ones_go() {
        let tmp = tempfile::tempdir().unwrap();
        let live = WorkDir::create(tmp.path()).unwrap();
        fs::write(live.path().join("f"), b"x").unwrap();
        // A dead process: lock file present but unlocked, dir with content.
        fs::create_dir_all(tmp.path().join("dead/sub")).unwrap();
        fs::write(tmp.path().join("dead/sub/f"), b"x").unwrap();
        fs::write(tmp.path().join("dead.lock"), b"").unwrap();
        // A crash between a cleaner's two removals: dir without lock file.
        fs::create_dir(tmp.path().join("orphan")).unwrap();
        assert_eq!(clean_stale(tmp.path()).unwrap(), 2);
        assert!(live.path().join("f").exists());
        let mut left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        drop(live);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
