//! Pruning the store, with `docker builder prune`'s semantics adapted to its layout.
//!
//! - default: what is dangling — records that can no longer hit (unreadable, another
//!   key version, blob gone), blobs that neither an image nor a record refers to,
//!   snapshots of chains no image and no record uses, leftover sidecars and lock files;
//! - `--keep-storage SIZE`: then cache items (records with the blobs only they hold,
//!   snapshots, cache mounts, build logs, stat caches), least recently used first,
//!   until the store is at most SIZE;
//! - `--all`: as `--keep-storage 0` (with `--keep-storage`, that size instead);
//! - `--filter until=D`: only what was not used in the last D.
//!
//! Invariants: a blob an `index.json` entry (or a kept image, such as the one a build
//! just made) reaches is never removed; a record's blob goes with the record unless an
//! image or a kept record refers to it; the caller holds `locks/gc.lock` exclusively, so
//! no build is running. Directories are renamed into the work dir before they are
//! deleted, so a crash never leaves half a snapshot under its name. The bytes reported
//! are exact: an inode's blocks count when its last link goes (see
//! [`Inventory::remove`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::{CacheError, Result};
use super::record::Records;
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::store::usage::{Inventory, Kind};
use crate::store::{FileLock, ImageRoots, Store};

/// What to prune.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Every cache item, not only dangling ones (`--all`).
    pub all: bool,
    /// Remove cache items, least recently used first, until the store is at most this
    /// many bytes (`--keep-storage`).
    pub keep_storage: Option<u64>,
    /// Only items unused for longer than this (`--filter until=`).
    pub until: Option<Duration>,
    /// Images to keep besides the entries of `index.json` (a build's unnamed result).
    pub keep_images: Vec<Descriptor>,
    /// Plan only: report what would go, remove nothing.
    pub dry_run: bool,
}

/// One removed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub kind: Kind,
    pub name: String,
    /// Bytes its removal freed.
    pub bytes: u64,
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// In the order removed.
    pub removed: Vec<Removed>,
    /// Bytes freed, exactly.
    pub reclaimed: u64,
    /// The store's size before and after.
    pub before: u64,
    pub after: u64,
}

/// A record as pruning sees it.
#[derive(Debug, Clone)]
pub(super) struct RecordRef {
    /// Its entry in the inventory.
    pub entry: usize,
    /// Can it hit: readable, this key version, blob present?
    pub usable: bool,
    pub blob: Option<Digest>,
    pub chain: Option<Digest>,
}

/// The store, measured and cross-referenced.
#[derive(Debug, Clone)]
pub(super) struct State {
    pub inv: Inventory,
    pub roots: ImageRoots,
    pub records: Vec<RecordRef>,
    /// Blob hex -> entry.
    pub blobs: BTreeMap<String, usize>,
}

impl State {
    /// Measures `store` (without the caller's own work dir) and reads what refers to what.
    pub fn load(store: &Store, keep_images: &[Descriptor]) -> Result<State> {
        let work = store.work_dir().to_owned();
        let work_lock = PathBuf::from(format!("{}.lock", work.display()));
        let inv = Inventory::measure(store.root(), &[work, work_lock])?;
        let roots = store.image_roots(keep_images)?;
        let blobs: BTreeMap<String, usize> = indexes(&inv, Kind::Blob).collect();
        let listed: BTreeMap<String, _> = Records::new(store).list()?.into_iter().collect();
        let mut records = Vec::new();
        for (name, entry) in indexes(&inv, Kind::Record) {
            let record = listed.get(&name).cloned().flatten();
            let layer = record.as_ref().and_then(|r| r.layer.as_ref());
            let blob = layer.map(|l| l.digest);
            let usable = record.is_some() && blob.is_none_or(|d| blobs.contains_key(&d.hex()));
            records.push(RecordRef {
                entry,
                usable,
                blob,
                chain: layer.and_then(|l| l.chain),
            });
        }
        Ok(State {
            inv,
            roots,
            records,
            blobs,
        })
    }

    /// Plans the prune: marks entries removed in the inventory, in removal order.
    pub fn plan(&mut self, opts: &PruneOptions, now: SystemTime) -> Vec<(usize, u64)> {
        let mut order = Vec::new();
        let eligible = |last: SystemTime| {
            opts.until
                .is_none_or(|d| now.duration_since(last).is_ok_and(|age| age > d))
        };
        // Dangling records, then what nothing refers to any more.
        for r in self.records.clone() {
            if !r.usable && eligible(self.inv.entries[r.entry].last_used) {
                order.push((r.entry, self.inv.remove(r.entry)));
            }
        }
        let (refs, chains) = self.kept_refs();
        for i in 0..self.inv.entries.len() {
            let e = &self.inv.entries[i];
            let unused = match e.kind {
                Kind::Blob => hex_digest(&e.name)
                    .is_none_or(|d| !self.roots.blobs.contains(&d) && !refs.contains_key(&d)),
                Kind::Snapshot => {
                    e.dangling
                        || hex_digest(&e.name)
                            .is_none_or(|d| !self.roots.chains.contains(&d) && !chains.contains(&d))
                }
                Kind::Mount => e.dangling,
                _ => false,
            };
            if unused && !self.inv.is_removed(i) && eligible(e.last_used) {
                order.push((i, self.inv.remove(i)));
            }
        }
        let limit = opts.keep_storage.or(opts.all.then_some(0));
        if let Some(limit) = limit {
            self.least_recently_used(limit, &eligible, &mut order);
        }
        order
    }

    /// Removes cache items, oldest use first, until the store is at most `limit` bytes.
    fn least_recently_used(
        &mut self,
        limit: u64,
        eligible: &dyn Fn(SystemTime) -> bool,
        order: &mut Vec<(usize, u64)>,
    ) {
        let cache_kinds = [
            Kind::Record,
            Kind::Snapshot,
            Kind::Mount,
            Kind::BuildLog,
            Kind::StatCache,
        ];
        let mut candidates: Vec<usize> = (0..self.inv.entries.len())
            .filter(|&i| {
                let e = &self.inv.entries[i];
                cache_kinds.contains(&e.kind) && !self.inv.is_removed(i) && eligible(e.last_used)
            })
            .collect();
        candidates.sort_by_key(|&i| {
            let e = &self.inv.entries[i];
            (e.last_used, e.kind, e.name.clone())
        });
        let (mut refs, _) = self.kept_refs();
        let blob_of: BTreeMap<usize, Digest> = self
            .records
            .iter()
            .filter_map(|r| Some((r.entry, r.blob?)))
            .collect();
        for i in candidates {
            if self.inv.total <= limit {
                break;
            }
            order.push((i, self.inv.remove(i)));
            let Some(blob) = blob_of.get(&i) else {
                continue;
            };
            let left = refs.get_mut(blob).map(|n| {
                *n = n.saturating_sub(1);
                *n
            });
            if left == Some(0) && !self.roots.blobs.contains(blob) {
                if let Some(&b) = self.blobs.get(&blob.hex()) {
                    if !self.inv.is_removed(b) {
                        order.push((b, self.inv.remove(b)));
                    }
                }
            }
        }
    }

    /// Blobs the records not removed refer to (with how many), and their chains.
    fn kept_refs(&self) -> (BTreeMap<Digest, usize>, BTreeSet<Digest>) {
        let mut refs = BTreeMap::new();
        let mut chains = BTreeSet::new();
        for r in self
            .records
            .iter()
            .filter(|r| !self.inv.is_removed(r.entry))
        {
            if let Some(b) = r.blob {
                *refs.entry(b).or_insert(0) += 1;
            }
            chains.extend(r.chain);
        }
        (refs, chains)
    }
}

/// The digest a blob or snapshot is named after (`None`: not a name rbuild makes).
pub(super) fn hex_digest(hex: &str) -> Option<Digest> {
    format!("sha256:{hex}").parse().ok()
}

/// The entries of `kind`: name -> index.
fn indexes(inv: &Inventory, kind: Kind) -> impl Iterator<Item = (String, usize)> + '_ {
    inv.entries
        .iter()
        .enumerate()
        .filter(move |(_, e)| e.kind == kind)
        .map(|(i, e)| (e.name.clone(), i))
}

/// Prunes `store` as `opts` says. `_gc` is the exclusive gc lock, held by the caller
/// (no build may run meanwhile).
pub fn prune(store: &Store, _gc: &FileLock, opts: &PruneOptions) -> Result<PruneReport> {
    let mut state = State::load(store, &opts.keep_images)?;
    let before = state.inv.total;
    let order = state.plan(opts, SystemTime::now());
    let mut report = PruneReport {
        before,
        after: state.inv.total,
        reclaimed: before - state.inv.total.min(before),
        removed: Vec::new(),
    };
    for (i, bytes) in order {
        let entry = &state.inv.entries[i];
        if !opts.dry_run {
            for path in &entry.paths {
                remove_path(store, path)?;
            }
            if entry.kind == Kind::Snapshot {
                let lock = store.root().join(format!("locks/snap-{}.lock", entry.name));
                let _ = fs::remove_file(lock);
            }
        }
        report.removed.push(Removed {
            kind: entry.kind,
            name: entry.name.clone(),
            bytes,
        });
    }
    if !opts.dry_run {
        // A lazy blob no image reaches any more is forgotten (nothing to free here).
        for digest in store.lazy_digests() {
            if !state.roots.blobs.contains(&digest) {
                store.remove_lazy(&digest);
            }
        }
    }
    Ok(report)
}

/// Removes a file, or a directory after renaming it into the work dir (atomic: a crash
/// leaves it in `tmp/`, collected by the next open, never half-removed under its name).
fn remove_path(store: &Store, path: &Path) -> Result<()> {
    let failed = |source| CacheError::Remove {
        path: path.to_owned(),
        source,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    if !meta.is_dir() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        };
    }
    let doomed = store.work_dir().join(format!(
        "gc-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    fs::rename(path, &doomed).map_err(failed)?;
    fs::remove_dir_all(&doomed).map_err(|source| CacheError::Remove {
        path: doomed,
        source,
    })
}

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
