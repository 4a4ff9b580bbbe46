//! What a store holds on disk, exactly: one walk of the store directory that sorts every
//! inode into an [`Entry`] of a [`Kind`] (a blob, a snapshot, a cache record...) and
//! counts its real size, `st_blocks * 512`, once per inode however many hard links it
//! has. The total is what `du -sB1 <store>` prints.
//!
//! An inode with several links is attributed to the first entry the walk meets it in
//! (the walk is sorted, so the attribution is stable), and remembered, so that
//! [`Inventory::remove`] can say exactly which blocks removing a set of entries frees:
//! those of inodes that have no link left outside the removed entries.
//!
//! Does not: decide what is garbage (the cache module's prune does), or follow symlinks.
//! Files may vanish while the walk runs (a build finishing); they are skipped.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::{Error, Result};
use super::layout::{BLOBS_DIR, CACHE_DIR, SNAPSHOTS_DIR, TMP_DIR};
use crate::fs_error::FsError;

/// The suffix of a snapshot's last-use sidecar, `snapshots/<chain-hex>.used`.
pub const SNAPSHOT_USED_SUFFIX: &str = ".used";

/// What a top-level item of the store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `blobs/sha256/<hex>`.
    Blob,
    /// `snapshots/<chain-hex>/` and its `.used` sidecar.
    Snapshot,
    /// `cache/records/<key-hex>.json`.
    Record,
    /// `cache/mounts/<hash>[-N]/` and its `.lock` file.
    Mount,
    /// `cache/builds/*.json`: the inputs of the last build of each stage.
    BuildLog,
    /// `cache/stat/*.bin`: content digests of context files.
    StatCache,
    /// `tmp/<id>/` and `tmp/<id>.lock`: per-process work dirs.
    Temp,
}

impl Kind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Snapshot => "snapshot",
            Kind::Record => "cache record",
            Kind::Mount => "cache mount",
            Kind::BuildLog => "build log",
            Kind::StatCache => "stat cache",
            Kind::Temp => "temporary",
        }
    }

    /// The plural name, for table rows.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Blob => "blobs",
            Kind::Snapshot => "snapshots",
            Kind::Record => "cache records",
            Kind::Mount => "cache mounts",
            Kind::BuildLog => "build logs",
            Kind::StatCache => "stat caches",
            Kind::Temp => "temporary dirs",
        }
    }
}

/// One top-level item: a blob, a snapshot, a record...
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Its name in its directory, without the suffix (`<hex>` for blobs, snapshots and
    /// records).
    pub name: String,
    /// The paths that make it up (a snapshot dir and its sidecar; a mount dir and its
    /// lock file).
    pub paths: Vec<PathBuf>,
    /// Bytes of the inodes first met in it.
    pub bytes: u64,
    /// Its last use: a record's or blob's mtime, a snapshot's sidecar mtime (else the
    /// ctime of the directory: when it was renamed into place), a mount dir's mtime.
    pub last_used: SystemTime,
    /// A leftover without its main part: a snapshot sidecar without its snapshot, a
    /// mount lock file without its directory.
    pub dangling: bool,
}

/// An inode with several links.
#[derive(Debug, Clone)]
struct Shared {
    blocks: u64,
    nlink: u64,
    /// How many of its links the walk saw.
    seen: u64,
    /// How many of those are in removed entries.
    removed: u64,
}

/// Everything in a store, measured.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub entries: Vec<Entry>,
    /// Bytes outside any entry: the directories themselves, `oci-layout`, `index.json`,
    /// `config.json`, lock files, anything unknown.
    pub other_bytes: u64,
    /// All bytes: what `du -sB1` says (less what [`remove`](Self::remove) took out).
    pub total: u64,
    shared: HashMap<(u64, u64), Shared>,
    /// Per entry: bytes of its inodes with one link (and directories).
    own: Vec<u64>,
    /// Per entry: its links to shared inodes (one per link).
    links: Vec<Vec<(u64, u64)>>,
    removed: Vec<bool>,
}

/// A walk in progress.
struct Walk<'a> {
    inv: Inventory,
    skip: &'a [PathBuf],
}

impl Inventory {
    /// Measures the store at `root`, leaving out `skip` (the caller's own work dir and
    /// its lock file, which vanish when it exits).
    pub fn measure(root: &Path, skip: &[PathBuf]) -> Result<Inventory> {
        let mut walk = Walk {
            inv: Inventory::default(),
            skip,
        };
        walk.whole_self(root)?;
        walk.loose(root)?;
        walk.blobs(&root.join(BLOBS_DIR))?;
        walk.snapshots(&root.join(SNAPSHOTS_DIR))?;
        let cache = root.join(CACHE_DIR);
        walk.files(&cache.join("records"), Kind::Record, ".json")?;
        walk.files(&cache.join("builds"), Kind::BuildLog, ".json")?;
        walk.files(&cache.join("stat"), Kind::StatCache, ".bin")?;
        walk.paired(&cache.join("mounts"), Kind::Mount)?;
        walk.paired(&root.join(TMP_DIR), Kind::Temp)?;
        let mut inv = walk.inv;
        let n = inv.entries.len();
        inv.removed = vec![false; n];
        inv.own.resize(n, 0);
        inv.links.resize(n, Vec::new());
        Ok(inv)
    }

    /// Marks entry `i` removed; returns the bytes this frees given the entries removed
    /// before: its inodes with one link, and shared ones whose last link it held (a
    /// link outside the store keeps an inode alive).
    pub fn remove(&mut self, i: usize) -> u64 {
        if self.removed.get(i) != Some(&false) {
            return 0;
        }
        self.removed[i] = true;
        let mut freed = self.own[i];
        for key in &self.links[i] {
            if let Some(s) = self.shared.get_mut(key) {
                s.removed += 1;
                if s.removed == s.nlink && s.seen == s.nlink {
                    freed += s.blocks;
                }
            }
        }
        self.total = self.total.saturating_sub(freed);
        freed
    }

    /// Whether entry `i` was removed.
    pub fn is_removed(&self, i: usize) -> bool {
        self.removed.get(i).copied().unwrap_or(false)
    }
}

impl Walk<'_> {
    /// Adds one inode to entry `entry` (or to the other bytes); returns whether it is a
    /// directory to descend into.
    fn inode(&mut self, meta: &fs::Metadata, entry: Option<usize>) -> bool {
        let blocks = meta.blocks() * 512;
        let shared = meta.nlink() > 1 && !meta.is_dir();
        let first = if shared {
            let key = (meta.dev(), meta.ino());
            if let Some(i) = entry {
                grow(&mut self.inv.links, i)[i].push(key);
            }
            let s = self.inv.shared.entry(key).or_insert(Shared {
                blocks,
                nlink: meta.nlink(),
                seen: 0,
                removed: 0,
            });
            s.seen += 1;
            s.seen == 1
        } else {
            true
        };
        if first {
            self.inv.total += blocks;
            match entry.and_then(|i| self.inv.entries.get_mut(i)) {
                Some(e) => e.bytes += blocks,
                None => self.inv.other_bytes += blocks,
            }
        }
        if let (false, Some(i)) = (shared, entry) {
            grow(&mut self.inv.own, i)[i] += blocks;
        }
        meta.is_dir()
    }

    /// Counts the root's files and unknown entries as other bytes (the known dirs are
    /// walked by their own methods), and the known dirs' own inodes.
    fn loose(&mut self, root: &Path) -> Result<()> {
        let known = ["blobs", SNAPSHOTS_DIR, CACHE_DIR, TMP_DIR];
        for child in read_dir(root)? {
            if !known.contains(&file_name(&child).as_str()) {
                self.whole(&child, None)?;
            }
        }
        let blobs = root.join("blobs");
        self.whole_self(&blobs)?;
        for child in read_dir(&blobs)? {
            if child != root.join(BLOBS_DIR) {
                self.whole(&child, None)?;
            }
        }
        let cache = root.join(CACHE_DIR);
        self.whole_self(&cache)?;
        for child in read_dir(&cache)? {
            let name = file_name(&child);
            if !["records", "builds", "stat", "mounts"].contains(&name.as_str()) {
                self.whole(&child, None)?;
            }
        }
        Ok(())
    }

    /// Counts a whole tree into `entry` (or the other bytes).
    fn whole(&mut self, path: &Path, entry: Option<usize>) -> Result<()> {
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if self.skip.contains(&p) {
                continue;
            }
            let Some(meta) = lstat(&p)? else { continue };
            if self.inode(&meta, entry) {
                stack.extend(read_dir(&p)?);
            }
        }
        Ok(())
    }

    /// Counts a directory's own inode only.
    fn whole_self(&mut self, path: &Path) -> Result<()> {
        if let Some(meta) = lstat(path)? {
            self.inode(&meta, None);
        }
        Ok(())
    }

    /// Adds an entry made of `paths` and counts them.
    fn push(
        &mut self,
        kind: Kind,
        name: &str,
        paths: Vec<PathBuf>,
        last_used: SystemTime,
    ) -> Result<()> {
        self.inv.entries.push(Entry {
            kind,
            name: name.to_owned(),
            paths: paths.clone(),
            bytes: 0,
            last_used,
            dangling: false,
        });
        let i = self.inv.entries.len() - 1;
        for p in &paths {
            self.whole(p, Some(i))?;
        }
        Ok(())
    }

    fn mark_dangling(&mut self) {
        if let Some(e) = self.inv.entries.last_mut() {
            e.dangling = true;
        }
    }

    fn blobs(&mut self, dir: &Path) -> Result<()> {
        self.whole_self(dir)?;
        for path in read_dir(dir)? {
            let Some(meta) = lstat(&path)? else { continue };
            self.push(
                Kind::Blob,
                &file_name(&path),
                vec![path.clone()],
                mtime(&meta),
            )?;
        }
        Ok(())
    }

    /// One entry per `<chain>/` directory with its sidecars (`<chain>.used`, the last
    /// use; `<chain>.json`, the snapshot's metadata and fingerprint).
    fn snapshots(&mut self, dir: &Path) -> Result<()> {
        const SIDECARS: [&str; 2] = [SNAPSHOT_USED_SUFFIX, ".json"];
        self.whole_self(dir)?;
        let children = read_dir(dir)?;
        for path in &children {
            let name = file_name(path);
            let Some(meta) = lstat(path)? else { continue };
            if let Some(chain) = SIDECARS.iter().find_map(|s| name.strip_suffix(s)) {
                if !children.contains(&dir.join(chain)) {
                    self.push(Kind::Snapshot, chain, vec![path.clone()], mtime(&meta))?;
                    self.mark_dangling();
                }
                continue; // else counted with its snapshot
            }
            let mut paths = vec![path.clone()];
            let mut last_used = ctime(&meta);
            for suffix in SIDECARS {
                let sidecar = dir.join(format!("{name}{suffix}"));
                if let Some(s) = lstat(&sidecar)? {
                    if suffix == SNAPSHOT_USED_SUFFIX {
                        last_used = mtime(&s);
                    }
                    paths.push(sidecar);
                }
            }
            self.push(Kind::Snapshot, &name, paths, last_used)?;
        }
        Ok(())
    }

    /// One entry per file of `dir` (`<name><suffix>`).
    fn files(&mut self, dir: &Path, kind: Kind, suffix: &str) -> Result<()> {
        self.whole_self(dir)?;
        for path in read_dir(dir)? {
            let Some(meta) = lstat(&path)? else { continue };
            let name = file_name(&path);
            let name = name.strip_suffix(suffix).unwrap_or(&name).to_owned();
            self.push(kind, &name, vec![path.clone()], mtime(&meta))?;
        }
        Ok(())
    }

    /// One entry per `<name>` directory with its `<name>.lock` file (either may be alone).
    fn paired(&mut self, dir: &Path, kind: Kind) -> Result<()> {
        self.whole_self(dir)?;
        let children = read_dir(dir)?;
        for path in &children {
            if self.skip.contains(path) {
                continue;
            }
            let name = file_name(path);
            let Some(meta) = lstat(path)? else { continue };
            if let Some(base) = name.strip_suffix(".lock") {
                if !children.contains(&dir.join(base)) {
                    self.push(kind, base, vec![path.clone()], mtime(&meta))?;
                    self.mark_dangling();
                }
                continue; // else counted with its directory
            }
            let lock = dir.join(format!("{name}.lock"));
            let mut paths = vec![path.clone()];
            if children.contains(&lock) {
                paths.push(lock);
            }
            self.push(kind, &name, paths, mtime(&meta))?;
        }
        Ok(())
    }
}

/// `v` with at least `i + 1` elements.
fn grow<T: Default + Clone>(v: &mut Vec<T>, i: usize) -> &mut Vec<T> {
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    v
}

/// `lstat`, with `None` for a path that vanished meanwhile.
fn lstat(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::fs("stat", path)(e)),
    }
}

/// The children of `dir`, sorted; empty when it does not exist (yet, or any more).
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::fs("read directory", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => out.push(e.path()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::fs("read directory", dir)(e)),
        }
    }
    out.sort();
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn mtime(meta: &fs::Metadata) -> SystemTime {
    stamp(meta.mtime(), meta.mtime_nsec())
}

fn ctime(meta: &fs::Metadata) -> SystemTime {
    stamp(meta.ctime(), meta.ctime_nsec())
}

fn stamp(secs: i64, nanos: i64) -> SystemTime {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
