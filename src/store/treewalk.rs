//! A depth-first walk of a directory tree in sorted order, with every entry's `lstat`,
//! for snapshot fingerprints.
//!
//! Most of a fingerprint is the kernel's work: reading each directory and one `statx`
//! per entry (~2.5 µs here; a node base of 37,000 entries took 100 ms on one thread).
//! The visit order is fixed (names ascending, a directory's subtree before its next
//! sibling), so the visitor runs on the caller's thread while worker threads read
//! directories ahead of it:
//!
//! - whoever lists a directory (a worker or the caller) queues its subdirectories on a
//!   last-in-first-out queue, the first in visit order on top, so the workers move
//!   through the tree in about the order the caller visits it;
//! - the caller takes each directory's listing when it reaches it: finished, it is
//!   used; being read, the caller waits for it; still queued, the caller reads it
//!   itself, so it never waits for work nobody has started;
//! - at most [`AHEAD`] finished listings, and [`AHEAD_ENTRIES`] entries in them, wait
//!   for the caller; beyond that the workers wait, so memory stays bounded (each entry
//!   keeps the 64 bytes of its `statx` the fingerprint uses, not the 256 of the
//!   `statx`: 64 directories of 1,000 files held 19 MB before both bounds);
//! - the first error the caller meets ends the walk, and the workers with it.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Statx, StatxFlags};

use super::error::{Error, Result};
use crate::fs_error::FsError;

/// Finished listings that may wait for the caller.
const AHEAD: usize = 64;
/// Entries in them (about 1 MiB with their paths); a larger directory is still read,
/// alone.
const AHEAD_ENTRIES: usize = 8192;
/// Worker threads at most.
const MAX_WORKERS: usize = 4;
/// Directories with at least this many entries have them `statx`ed on several threads.
pub(super) const PARALLEL_STAT: usize = 4096;

/// One entry: its path relative to the root, and what a fingerprint takes of its
/// `lstat`.
pub(super) type Entry = (PathBuf, Stat);

/// The fields of a `statx` a fingerprint uses: 64 bytes where the `statx` is 256, for
/// every entry read ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub ino: u64,
    /// Seconds and nanoseconds.
    pub ctime: (i64, u32),
    pub mtime: (i64, u32),
}

impl From<&Statx> for Stat {
    fn from(s: &Statx) -> Self {
        Stat {
            mode: s.stx_mode,
            uid: s.stx_uid,
            gid: s.stx_gid,
            size: s.stx_size,
            ino: s.stx_ino,
            ctime: (s.stx_ctime.tv_sec, s.stx_ctime.tv_nsec),
            mtime: (s.stx_mtime.tv_sec, s.stx_mtime.tv_nsec),
        }
    }
}

impl Stat {
    pub(super) fn is_dir(&self) -> bool {
        FileType::from_raw_mode(u32::from(self.mode)) == FileType::Directory
    }
}

/// Calls `visit` for every entry below `root` (not the root itself), depth first,
/// names ascending by bytes, each directory before its contents.
pub(super) fn walk_sorted(root: &Path, visit: impl FnMut(&Path, &Stat)) -> Result<()> {
    walk(root, crate::cpus::available().min(MAX_WORKERS), visit)
}

/// [`walk_sorted`] with `workers` threads reading ahead (none below 2).
fn walk(root: &Path, workers: usize, mut visit: impl FnMut(&Path, &Stat)) -> Result<()> {
    let ahead = ReadAhead::new(root, workers >= 2);
    std::thread::scope(|scope| {
        if ahead.enabled {
            for _ in 0..workers {
                scope.spawn(|| ahead.work());
            }
        }
        let _stop = StopOnDrop(&ahead);
        let mut stack = ahead.take(Path::new(""))?;
        while let Some((rel, stat)) = stack.pop() {
            visit(&rel, &stat);
            if stat.is_dir() {
                stack.extend(ahead.take(&rel)?);
            }
        }
        Ok(())
    })
}

/// The listings read ahead of the caller.
struct ReadAhead<'r> {
    root: &'r Path,
    enabled: bool,
    /// [`AHEAD_ENTRIES`], or less in tests.
    max_entries: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Directories to read, the next on top; an entry no longer in `queued` was taken
    /// by the caller and is skipped.
    queue: Vec<PathBuf>,
    queued: HashSet<PathBuf>,
    running: HashSet<PathBuf>,
    done: HashMap<PathBuf, Result<Vec<Entry>>>,
    /// Entries in `done`.
    done_entries: usize,
    stop: bool,
}

impl<'r> ReadAhead<'r> {
    fn new(root: &'r Path, enabled: bool) -> Self {
        ReadAhead {
            root,
            enabled,
            max_entries: AHEAD_ENTRIES,
            state: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// The listing of `rel` (sorted descending: popped ascending), for the caller.
    fn take(&self, rel: &Path) -> Result<Vec<Entry>> {
        if !self.enabled {
            return children(self.root, rel);
        }
        let mut state = self.lock();
        loop {
            if let Some(listing) = state.done.remove(rel) {
                state.done_entries -= entry_count(&listing);
                self.changed.notify_all();
                return listing;
            }
            if !state.running.contains(rel) {
                break;
            }
            state = self.wait(state);
        }
        state.queued.remove(rel);
        drop(state);
        let listing = children(self.root, rel);
        if let Ok(entries) = &listing {
            let mut state = self.lock();
            queue_subdirs(&mut state, entries);
            self.changed.notify_all();
        }
        listing
    }

    /// A worker: reads queued directories until the caller is done.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            if state.stop {
                return;
            }
            let room = state.done.len() < AHEAD && state.done_entries < self.max_entries;
            let Some(rel) = room.then(|| next_queued(&mut state)).flatten() else {
                state = self.wait(state);
                continue;
            };
            state.running.insert(rel.clone());
            drop(state);
            let listing = children(self.root, &rel);
            state = self.lock();
            state.running.remove(&rel);
            if let Ok(entries) = &listing {
                queue_subdirs(&mut state, entries);
            }
            state.done_entries += entry_count(&listing);
            state.done.insert(rel, listing);
            self.changed.notify_all();
        }
    }
}

fn entry_count(listing: &Result<Vec<Entry>>) -> usize {
    listing.as_ref().map_or(0, Vec::len)
}

/// Pops the next directory still queued.
fn next_queued(state: &mut State) -> Option<PathBuf> {
    while let Some(rel) = state.queue.pop() {
        if state.queued.remove(&rel) {
            return Some(rel);
        }
    }
    None
}

/// Queues the subdirectories of a listing (sorted descending), the first in visit
/// order on top.
fn queue_subdirs(state: &mut State, entries: &[Entry]) {
    for (rel, stat) in entries {
        if stat.is_dir() {
            state.queued.insert(rel.clone());
            state.queue.push(rel.clone());
        }
    }
}

/// Ends the workers when the caller's walk ends, however it ends.
struct StopOnDrop<'a, 'r>(&'a ReadAhead<'r>);

impl Drop for StopOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}

/// The children of `root/rel` with their `lstat`, sorted descending (popped ascending).
fn children(root: &Path, rel: &Path) -> Result<Vec<Entry>> {
    let dir = root.join(rel);
    let fd = rfs::open(
        &dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::fs("open directory", &dir)(e.into()))?;
    let mut names = Vec::new();
    let listing =
        rfs::Dir::read_from(&fd).map_err(|e| Error::fs("read directory", &dir)(e.into()))?;
    for entry in listing {
        let entry = entry.map_err(|e| Error::fs("read directory", &dir)(e.into()))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    names.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    let stats = stat_all(&fd, &names).map_err(|(name, e)| {
        Error::fs("stat", dir.join(OsStr::from_bytes(name.to_bytes())))(e.into())
    })?;
    Ok(names
        .iter()
        .zip(stats)
        .map(|(name, stat)| (rel.join(OsStr::from_bytes(name.to_bytes())), stat))
        .collect())
}

/// `lstat` of each of `names` in directory `fd`, in order; a large directory's on up to
/// four threads.
fn stat_all<'n>(
    fd: &OwnedFd,
    names: &'n [CString],
) -> std::result::Result<Vec<Stat>, (&'n CString, rustix::io::Errno)> {
    let one = |name: &'n CString| {
        rfs::statx(
            fd,
            name.as_c_str(),
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS,
        )
        .map(|s| Stat::from(&s))
        .map_err(|e| (name, e))
    };
    let threads = crate::cpus::available().min(MAX_WORKERS);
    if names.len() < PARALLEL_STAT || threads < 2 {
        return names.iter().map(one).collect();
    }
    let chunk = names.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(one)
                        .collect::<std::result::Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for part in parts {
            // invariant: `one` does not panic; a panic is the thread's to report.
            out.extend(
                part.join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))?,
            );
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn visited(root: &Path, workers: usize) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(root, workers, |rel, _| out.push(rel.to_path_buf())).unwrap();
        out
    }

    /// A tree with more directories than `AHEAD`, some deep, some wide.
    fn tree(root: &Path) {
        for i in 0..40 {
            for j in 0..5 {
                fs::create_dir_all(root.join(format!("d{i:02}/s{j}/x"))).unwrap();
                fs::write(root.join(format!("d{i:02}/s{j}/x/f")), b"").unwrap();
            }
            fs::write(root.join(format!("d{i:02}/file")), b"").unwrap();
        }
        fs::create_dir_all(root.join("deep/a/b/c/d/e/f/g/h")).unwrap();
        fs::write(root.join("a-file"), b"").unwrap();
    }

    #[test]
    fn reading_ahead_visits_what_one_thread_visits_in_the_same_order() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        let one = visited(t.path(), 1);
        assert_eq!(one.len(), 40 * (5 * 3 + 1) + 40 + 9 + 1);
        let mut sorted = one.clone();
        sorted.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        // Depth first with names ascending is byte order of the paths here, since no
        // name has a byte below `/`.
        assert_eq!(one, sorted);
        for _ in 0..20 {
            assert_eq!(visited(t.path(), 2), one);
            assert_eq!(visited(t.path(), MAX_WORKERS), one);
        }
    }

    #[test]
    fn a_directory_gone_before_the_walk_reaches_it_fails_the_walk_naming_it() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        // `d09` comes after 99 directories, more than the workers may read before the
        // caller takes a listing (`AHEAD` plus one being read per worker): it is still
        // unread when the first visit removes it.
        const { assert!(9 * 11 > AHEAD + MAX_WORKERS) };
        for workers in [1, 2] {
            let gone = t.path().join("d09");
            let moved = t.path().join("keep");
            let mut first = true;
            let err = walk(t.path(), workers, |_, _| {
                if std::mem::take(&mut first) {
                    fs::rename(&gone, &moved).unwrap();
                }
            })
            .unwrap_err();
            assert!(err.to_string().contains("d09"), "{workers}: {err}");
            fs::rename(&moved, &gone).unwrap();
        }
    }

    #[test]
    fn the_workers_stop_reading_ahead_at_the_bound_while_the_caller_is_away() {
        let t = tempfile::tempdir().unwrap();
        for d in 0..15 {
            let dir = t.path().join(format!("d{d:02}"));
            fs::create_dir(&dir).unwrap();
            for f in 0..100 {
                fs::File::create(dir.join(f.to_string())).unwrap();
            }
        }
        let mut ahead = ReadAhead::new(t.path(), true);
        ahead.max_entries = 500;
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| ahead.work());
            }
            let _stop = StopOnDrop(&ahead);
            let root = ahead.take(Path::new("")).unwrap();
            assert_eq!(root.len(), 15);
            // The caller takes nothing for a while: the workers read until the bound.
            let mut waiting = 0;
            for _ in 0..100 {
                std::thread::sleep(std::time::Duration::from_millis(10));
                let state = ahead.lock();
                waiting = state.done_entries;
                assert!(state.done.len() <= AHEAD);
                // One directory past the bound per worker at most.
                assert!(waiting < 500 + 2 * 100, "{waiting}");
                if waiting >= 500 && state.running.is_empty() {
                    break;
                }
            }
            assert!(waiting >= 500, "the workers read ahead: {waiting}");
            assert_eq!(
                ahead.lock().done.values().map(entry_count).sum::<usize>(),
                waiting
            );
        });
    }
}
