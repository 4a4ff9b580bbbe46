//! `rbuild du`: what the store holds, by kind, with what refers to each blob and what
//! a prune would reclaim. Sizes are bytes on disk, each inode once (see
//! [`crate::store::usage`]); the kinds partition the store, so they sum to the total.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::error::Result;
use super::prune::{hex_digest, PruneOptions, State};
use crate::store::usage::{Entry, Kind};
use crate::store::Store;

/// A count and a size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: usize,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// The items of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindUsage {
    pub tally: Tally,
    /// The most recent use of any of them.
    pub last_used: Option<SystemTime>,
}

/// Blobs by what refers to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobClasses {
    /// Reached by an image (whether or not a record refers to them too).
    pub by_images: Tally,
    /// Referred to by cache records only.
    pub by_records: Tally,
    /// Referred to by nothing.
    pub unreferenced: Tally,
}

/// The store's usage.
#[derive(Debug, Clone, Default)]
pub struct UsageReport {
    /// Entries of `index.json`.
    pub images: usize,
    /// Blobs those images reach that are in the store.
    pub image_blobs: Tally,
    /// Lazy blobs those images reach: kept by a registry, 0 bytes here (the tally's
    /// bytes are their size there).
    pub lazy_blobs: Tally,
    pub blobs: BlobClasses,
    /// Per kind (every kind present, blobs included).
    pub kinds: BTreeMap<Kind, KindUsage>,
    /// Directories, layout files, locks.
    pub other_bytes: u64,
    /// Everything: what `du -sB1` says.
    pub total: u64,
    /// What `rbuild prune` (default) and `rbuild prune --all` would reclaim.
    pub reclaimable: u64,
    pub reclaimable_all: u64,
    /// Every item (for `--verbose`).
    pub entries: Vec<Entry>,
}

/// Measures `store`.
pub fn usage(store: &Store) -> Result<UsageReport> {
    let state = State::load(store, &[])?;
    let mut report = UsageReport {
        images: state.roots.images,
        other_bytes: state.inv.other_bytes,
        total: state.inv.total,
        ..UsageReport::default()
    };
    for digest in store.lazy_digests() {
        if let Some(lazy) = store.lazy_blob(&digest) {
            if state.roots.blobs.contains(&digest) {
                report.lazy_blobs.add(lazy.size);
            }
        }
    }
    let record_blobs: std::collections::BTreeSet<_> =
        state.records.iter().filter_map(|r| r.blob).collect();
    for e in &state.inv.entries {
        let kind = report.kinds.entry(e.kind).or_default();
        kind.tally.add(e.bytes);
        kind.last_used = kind.last_used.max(Some(e.last_used));
        if e.kind == Kind::Blob {
            let digest = hex_digest(&e.name);
            let class = match digest {
                Some(d) if state.roots.blobs.contains(&d) => {
                    report.image_blobs.add(e.bytes);
                    &mut report.blobs.by_images
                }
                Some(d) if record_blobs.contains(&d) => &mut report.blobs.by_records,
                _ => &mut report.blobs.unreferenced,
            };
            class.add(e.bytes);
        }
    }
    let now = SystemTime::now();
    for (all, out) in [
        (false, &mut report.reclaimable),
        (true, &mut report.reclaimable_all),
    ] {
        let mut dry = state.clone();
        let before = dry.inv.total;
        let opts = PruneOptions {
            all,
            ..PruneOptions::default()
        };
        dry.plan(&opts, now);
        *out = before - dry.inv.total.min(before);
    }
    report.entries = state.inv.entries;
    Ok(report)
}
