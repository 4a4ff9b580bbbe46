//! Regular files of a layer written on helper threads while the applier reads on.
//!
//! Applying a base layer on an empty store is mostly the kernel creating files (an
//! `openat(O_CREAT)`, a write, owner, mode and times per file), while the applier's own
//! thread is busy decompressing and hashing the stream. Small regular files are
//! therefore handed, with their bytes, to up to two writer threads; the applier goes on
//! with the next entry.
//!
//! What keeps the result the one a serial apply gives:
//! - an entry whose path, or one of whose ancestors, is a file still being written
//!   waits until every queued file is written ([`Writers::settle`]) before it is
//!   looked at (a duplicate entry, a directory over a file, an entry below a file);
//! - so does a hardlink whose target is one, any removal (a whiteout, an entry
//!   replacing what is there) and the end of the layer (directory mtimes);
//! - a writer does exactly what the applier did inline: `O_CREAT | O_EXCL |
//!   O_NOFOLLOW` on the name in a parent directory the applier opened beneath the
//!   root, then owner, mode, xattrs and times through the new file's descriptor;
//! - the first writer error is the apply's error, reported at the next wait, naming
//!   its entry.
//!
//! Memory stays bounded: files up to [`SMALL_FILE`] bytes are queued, at most
//! [`QUEUE`] of them; larger ones are written by the applier itself, streamed.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::Scope;

use rustix::fs::{self as rfs, Mode, OFlags};

use super::super::error::{Error, Result};
use super::meta::{set_owner_mode_xattrs, times, Meta};

/// Files up to this size are written by a writer thread.
pub(super) const SMALL_FILE: u64 = 256 * 1024;
/// Files queued at most.
const QUEUE: usize = 32;
/// Paths remembered as possibly being written before a wait forgets them.
const MAX_TRACKED: usize = 1 << 16;

/// One regular file to create in `parent`.
struct FileJob {
    parent: OwnedFd,
    base: OsString,
    data: Vec<u8>,
    meta: Meta<'static>,
    name: String,
}

/// Files queued and not yet written, and the first writer error.
#[derive(Default)]
struct Progress {
    pending: usize,
    error: Option<Error>,
}

type Shared = Arc<(Mutex<Progress>, Condvar)>;

/// The writer threads of one apply (none on a one-core machine: files are then written
/// inline).
pub(super) struct Writers {
    jobs: Option<SyncSender<FileJob>>,
    shared: Shared,
    /// Hashes of the paths queued since the last wait.
    queued: HashSet<u64>,
}

impl Writers {
    /// Starts up to two writer threads in `scope`.
    pub(super) fn start<'s>(scope: &'s Scope<'s, '_>) -> Self {
        let shared: Shared = Arc::default();
        let threads = crate::cpus::available().min(2);
        let jobs = (threads > 1).then(|| {
            let (tx, rx) = sync_channel::<FileJob>(QUEUE);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..threads {
                let (rx, shared) = (Arc::clone(&rx), Arc::clone(&shared));
                scope.spawn(move || work(&rx, &shared));
            }
            tx
        });
        Writers {
            jobs,
            shared,
            queued: HashSet::new(),
        }
    }

    /// Whether a file of `size` bytes can be queued.
    pub(super) fn takes(&self, size: u64) -> bool {
        self.jobs.is_some() && size <= SMALL_FILE
    }

    /// Whether `comps`, or one of its ancestors, may still be being written.
    pub(super) fn touches(&self, comps: &[OsString]) -> bool {
        !self.queued.is_empty() && prefix_hashes(comps).any(|h| self.queued.contains(&h))
    }

    /// Waits until `comps` is not being written (see [`Writers::touches`]).
    pub(super) fn clear_path(&mut self, comps: &[OsString]) -> Result<()> {
        if self.touches(comps) {
            self.settle()?;
        }
        Ok(())
    }

    /// Queues regular file `comps` (in `parent`, named `base`), whose `data` was read.
    pub(super) fn queue(
        &mut self,
        comps: &[OsString],
        parent: OwnedFd,
        data: Vec<u8>,
        meta: Meta<'static>,
        name: String,
    ) -> Result<()> {
        if self.queued.len() >= MAX_TRACKED {
            self.settle()?;
        }
        let base = comps.last().cloned().unwrap_or_default();
        let Some(jobs) = &self.jobs else {
            return write_file(&parent, &base, &mut data.as_slice(), &meta, &name);
        };
        if let Some(h) = prefix_hashes(comps).last() {
            self.queued.insert(h);
        }
        self.progress().pending += 1;
        let job = FileJob {
            parent,
            base,
            data,
            meta,
            name,
        };
        if jobs.send(job).is_err() {
            // Every writer is gone: only a panic does that.
            self.progress().pending -= 1;
            return Err(Error::Internal {
                what: "the layer's writer threads stopped",
            });
        }
        self.failed()
    }

    /// Waits until every queued file is written; the first writer error, if any.
    pub(super) fn settle(&mut self) -> Result<()> {
        let (lock, done) = &*self.shared;
        let mut progress = lock.lock().unwrap_or_else(|p| p.into_inner());
        while progress.pending > 0 {
            progress = done.wait(progress).unwrap_or_else(|p| p.into_inner());
        }
        self.queued.clear();
        match progress.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The first writer error, without waiting.
    fn failed(&mut self) -> Result<()> {
        match self.progress().error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        // Closing the queue ends the threads once they have written what is queued.
        self.jobs = None;
    }
}

/// A writer thread: takes files from the queue until it closes.
fn work(jobs: &Mutex<Receiver<FileJob>>, shared: &Shared) {
    loop {
        let next = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(job) = next else { return };
        let mut data = job.data.as_slice();
        let result = write_file(&job.parent, &job.base, &mut data, &job.meta, &job.name);
        let (lock, done) = &**shared;
        let mut progress = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = result {
            progress.error.get_or_insert(e);
        }
        progress.pending -= 1;
        if progress.pending == 0 {
            done.notify_all();
        }
    }
}

/// Creates regular file `base` in `parent` (which must not have it) with the bytes of
/// `data`, then gives it `meta`'s owner, mode, xattrs and times.
pub(super) fn write_file(
    parent: &OwnedFd,
    base: &OsStr,
    data: &mut dyn Read,
    meta: &Meta,
    name: &str,
) -> Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(parent, base, flags, Mode::from_raw_mode(0o600))
        .map_err(|e| Error::apply("create file", name)(e.into()))?;
    let mut file = std::fs::File::from(fd);
    copy(data, &mut file).map_err(Error::apply("write file", name))?;
    let fd = OwnedFd::from(file);
    set_owner_mode_xattrs(&fd, meta, name)?;
    rfs::futimens(&fd, &times(meta.mtime)).map_err(|e| Error::apply("set mtime", name)(e.into()))
}

fn copy(r: &mut dyn Read, w: &mut impl Write) -> std::io::Result<()> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => w.write_all(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The hash of each prefix of `comps`, shortest first (a collision only makes the
/// applier wait when it need not).
fn prefix_hashes(comps: &[OsString]) -> impl Iterator<Item = u64> + '_ {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    comps.iter().map(move |c| {
        c.hash(&mut hasher);
        hasher.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(path: &str) -> Vec<OsString> {
        path.split('/').map(OsString::from).collect()
    }

    #[test]
    fn a_path_is_touched_by_itself_and_by_a_queued_ancestor_only() {
        let queued: HashSet<u64> = prefix_hashes(&comps("a/f")).last().into_iter().collect();
        let w = Writers {
            jobs: None,
            shared: Arc::default(),
            queued,
        };
        assert!(w.touches(&comps("a/f")));
        assert!(w.touches(&comps("a/f/below")));
        assert!(!w.touches(&comps("a")));
        assert!(!w.touches(&comps("a/g")));
        assert!(!w.touches(&comps("b/a/f")));
    }
}
