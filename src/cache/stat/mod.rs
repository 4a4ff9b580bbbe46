//! The stat cache: content digests of context files, reused while a file's
//! (size, mtime, ctime, inode, device) stay the same, so a rebuild with no change does
//! not read the context again.
//!
//! One file per context directory, `<store>/cache/stat/<sha256 of the path>.bin`, in a
//! small binary format (a magic line, the moment the entries were recorded, then
//! fixed-width records after each path), read once at the start of a build and written
//! back (atomically) only when it changed. `ctime` is part of the check: it changes
//! with every write, chmod or rename, even when a tool restores the mtime.
//!
//! Racily clean entries (git's term, see `is_racy_timestamp` in git's `read-cache.c`):
//! a file's timestamps come from a clock that ticks coarsely (a jiffy, or the
//! filesystem's granularity), so a file rewritten with the same size in the tick in
//! which a build read it keeps its whole stamp. An entry is therefore trusted only when
//! its mtime and ctime are older than the moment it was recorded by more than
//! [`RACY_MARGIN`](entry::RACY_MARGIN); any other entry is read again by the next build that needs it, and
//! trusted once a build records it with a stamp that old.

mod entry;
mod format;
mod table;

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::error::Result;
use crate::digest::Digest;
use crate::store::Store;
use entry::{time_of, Entry, Stamp, Time};
use format::{decode, encode};
use table::Entries;

/// Digests of the files of one context directory.
#[derive(Debug)]
pub struct StatCache {
    file: PathBuf,
    entries: Entries,
    /// When this process started using the cache, before it read any file: what
    /// [`StatCache::save`] records.
    moment: Time,
    dirty: bool,
    /// Files read (hashed) in this build, for the report and the tests.
    pub hashed: usize,
}

impl StatCache {
    /// The stat cache of `context` in `store` (empty when missing, unreadable or of an
    /// older format).
    pub fn load(store: &Store, context: &Path) -> Self {
        Self::load_at(store, context, time_of(SystemTime::now()))
    }

    /// [`StatCache::load`] at `moment` (now, but for the tests).
    fn load_at(store: &Store, context: &Path, moment: Time) -> Self {
        let id = Digest::of(context.as_os_str().as_encoded_bytes());
        let file = store
            .cache_dir()
            .join("stat")
            .join(format!("{}.bin", id.hex()));
        let entries = fs::read(&file)
            .ok()
            .and_then(|bytes| decode(&bytes))
            .map(|(_, entries)| entries)
            .unwrap_or_default();
        StatCache {
            file,
            entries,
            moment,
            dirty: false,
            hashed: 0,
        }
    }

    /// The content digest of context file `rel` (at `host`, with `meta` from the walk):
    /// from the cache when its entry is trusted and its stamp matches, else read and
    /// hashed.
    pub fn digest(
        &mut self,
        rel: &str,
        host: &Path,
        meta: &impl MetadataExt,
    ) -> io::Result<Digest> {
        self.digest_stamped(rel, Stamp::of(meta), || File::open(host))
    }

    /// Like [`StatCache::digest`], reading the file (when it must be read) through
    /// `open`: the executor opens context files below the context directory and only
    /// if they are still the files the walk saw.
    pub fn digest_opened(
        &mut self,
        rel: &str,
        meta: &impl MetadataExt,
        open: impl FnOnce() -> io::Result<File>,
    ) -> io::Result<Digest> {
        self.digest_stamped(rel, Stamp::of(meta), open)
    }

    fn digest_stamped(
        &mut self,
        rel: &str,
        stamp: Stamp,
        open: impl FnOnce() -> io::Result<File>,
    ) -> io::Result<Digest> {
        if let Some(entry) = self.entries.get(rel) {
            if entry.trusted && entry.stamp == stamp {
                return Ok(entry.digest);
            }
        }
        let digest = hash_reader(open()?)?;
        self.hashed += 1;
        let entry = Entry {
            stamp,
            digest,
            trusted: true,
        };
        self.entries.insert(rel.to_owned(), entry);
        self.dirty = true;
        Ok(digest)
    }

    /// Writes the cache back if anything changed, recorded at the moment this process
    /// started using it. Racy entries of the file it loaded that were not read again
    /// are left out: under the new moment they could look trusted.
    pub fn save(&mut self, store: &Store) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(dir) = self.file.parent() {
            fs::create_dir_all(dir).map_err(|source| super::CacheError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let bytes = encode(self.moment, &self.entries);
        crate::store::layout::write_atomic(store.work_dir(), &self.file, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

/// SHA-256 of a file's bytes.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    hash_reader(File::open(path)?)
}

/// SHA-256 of what `file` reads.
pub fn hash_reader(mut file: File) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_bytes(hasher.finalize().into()))
}

#[cfg(test)]
mod tests;
