//! Reading directories for the walk: one listing (names + `lstat` of each, relative to
//! the directory's descriptor), and a read-ahead pool that lists the subdirectories of
//! what the walk has read on other threads while the walk filters and visits.
//!
//! On a rebuild of a big context the walk is mostly these calls (the kernel's `lstat` is
//! 2-3 µs a file on a small VM), so they run on every core. The walk still consumes the
//! listings one at a time in its own sorted, depth-first order, so the result does not
//! depend on the threads. The read-ahead is one level deep: it lists a directory's
//! subdirectories as soon as the directory is read, before the filters have decided to
//! enter them, so a directory a `.dockerignore` prunes may have its own entries listed
//! (never its subdirectories', never a file's content), and the listing is dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::error::{Error, Result};

/// A directory's entries (unsorted) with their metadata.
pub(super) type Names = Vec<(OsString, Metadata)>;

/// The outcome of listing a directory: the outer error is a failure after it was
/// opened (always fatal), the inner one a failure to open it (which the walk may
/// tolerate: vanished, or unreadable and filtered out).
pub(super) type Listing = Result<io::Result<Names>>;

/// Directories with at least this many entries are stat'ed by several threads when the
/// walk has to list them itself.
pub(super) const PARALLEL_STAT_MIN: usize = 512;

/// Lists `full`; `split` stats a large directory on several threads.
pub(super) fn list(full: &Path, split: bool) -> Listing {
    let listing = match fs::read_dir(full) {
        Ok(listing) => listing,
        Err(e) => return Ok(Err(e)),
    };
    let items = listing
        .collect::<io::Result<Vec<fs::DirEntry>>>()
        .map_err(|source| Error::ReadDir {
            path: full.to_path_buf(),
            source,
        })?;
    let threads = if split { threads() } else { 1 };
    if items.len() < PARALLEL_STAT_MIN || threads < 2 {
        return stat_some(&items).map(Ok);
    }
    let chunk = items.len().div_ceil(threads);
    let parts: Vec<Result<Names>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || stat_some(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(thread_failed(full))))
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(Ok(out))
}

/// Threads worth using for `lstat` calls.
pub(super) fn threads() -> usize {
    crate::cpus::available().min(8)
}

fn thread_failed(dir: &Path) -> Error {
    Error::ReadDir {
        path: dir.to_path_buf(),
        source: io::Error::other("a thread reading the directory failed"),
    }
}

fn stat_some(items: &[fs::DirEntry]) -> Result<Names> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.metadata() {
            Ok(meta) => out.push((item.file_name(), meta)),
            // Removed between listing and stat: as if it had never been there.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Metadata {
                    path: item.path(),
                    source,
                })
            }
        }
    }
    Ok(out)
}

/// Directories queued for listing by worker threads, and their listings.
#[derive(Default)]
pub(super) struct ReadAhead {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Relative paths to list, in the order they were found.
    queue: VecDeque<PathBuf>,
    /// Still wanted (a path the walk listed itself is dropped from here, not the queue).
    queued: HashSet<PathBuf>,
    running: HashSet<PathBuf>,
    done: HashMap<PathBuf, Listing>,
    stop: bool,
}

impl ReadAhead {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked left consistent state behind (every update is one
        // statement), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues directory `rel` (relative to the root) for listing.
    pub(super) fn push(&self, rel: &Path) {
        let mut state = self.lock();
        if state.stop || !state.queued.insert(rel.to_path_buf()) {
            return;
        }
        state.queue.push_back(rel.to_path_buf());
        drop(state);
        self.changed.notify_one();
    }

    /// The listing of `rel` if a worker made or is making it (waiting for it), else
    /// `None` (and it is no longer queued: the caller lists it).
    pub(super) fn take(&self, rel: &Path) -> Option<Listing> {
        let mut state = self.lock();
        loop {
            if let Some(listing) = state.done.remove(rel) {
                return Some(listing);
            }
            if !state.running.contains(rel) {
                state.queued.remove(rel);
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Ends the workers (what they hold is dropped).
    pub(super) fn stop(&self) {
        let mut state = self.lock();
        state.stop = true;
        state.queue.clear();
        state.done.clear();
        drop(state);
        self.changed.notify_all();
    }

    /// A worker: lists queued directories under `root` until stopped.
    pub(super) fn work(&self, root: &Path) {
        loop {
            let rel = {
                let mut state = self.lock();
                loop {
                    if state.stop {
                        return;
                    }
                    match state.queue.pop_front() {
                        Some(rel) if state.queued.remove(&rel) => {
                            state.running.insert(rel.clone());
                            break rel;
                        }
                        Some(_) => {}
                        None => state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner()),
                    }
                }
            };
            let listing = list(&root.join(&rel), false);
            let mut state = self.lock();
            state.running.remove(&rel);
            if !state.stop {
                state.done.insert(rel, listing);
            }
            drop(state);
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_list_what_is_queued_and_the_caller_lists_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "b", "c"] {
            fs::create_dir(dir.path().join(d)).unwrap();
            fs::write(dir.path().join(d).join("f"), d).unwrap();
        }
        let ahead = ReadAhead::default();
        std::thread::scope(|scope| {
            scope.spawn(|| ahead.work(dir.path()));
            ahead.push(Path::new("a"));
            ahead.push(Path::new("b"));
            ahead.push(Path::new("missing"));
            let a = ahead.take(Path::new("a"));
            // Either the worker listed it, or it had not started and the caller does.
            let names = match a {
                Some(listing) => listing.unwrap().unwrap(),
                None => list(&dir.path().join("a"), true).unwrap().unwrap(),
            };
            assert_eq!(names.len(), 1);
            assert!(ahead.take(Path::new("c")).is_none());
            if let Some(listing) = ahead.take(Path::new("missing")) {
                let err = listing.unwrap().unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::NotFound);
            }
            ahead.stop();
        });
    }
}
