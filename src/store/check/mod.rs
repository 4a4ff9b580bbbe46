//! `rbuild store check`: verifies the whole store and, with `--repair`, removes what is
//! damaged so that builds re-make it.
//!
//! | file | checks |
//! |---|---|
//! | `blobs.rs` | every blob's digest and size (streamed, 1 MiB at a time) |
//! | `lazy.rs` | lazy blob records: sound, blob still absent (a stale one is a leftover) |
//! | `images.rs` | `index.json` entries: manifest/index -> children, config, layers |
//! | `snapshots.rs` | each snapshot's sidecar, fingerprint and diff ID (recomputed) |
//! | `temp.rs` | work dirs of processes that died |
//!
//! Cache records are the cache module's (`cache::check_records`), run by the CLI after
//! this with [`Report::blobs`]. What is found is a [`Finding`]: what (kind, object),
//! where (path), why (problem) and, with repair, what was done. Findings are
//! [`Severity::Damage`] (a digest, size or fingerprint that does not match; a torn or
//! foreign file; a reference to a missing blob) or [`Severity::Leftover`] (a dead work
//! dir, a sidecar without its snapshot): leftovers are what an interrupted process
//! leaves by design (collected by the next `Store::open`, overwritten by the next
//! commit) and do not fail a check; damage does.
//!
//! Repair order matters: bad blobs go first, so that images and records judged after
//! them see those blobs as missing and go too. A removed snapshot is rebuilt from its
//! blob when a build needs it; a removed blob by the step or pull that makes it; a
//! removed image name must be built again. Repairs take the locks builds take
//! (`index.lock`, `snap-<hex>.lock`, work-dir locks), so a check can run beside builds;
//! what is locked by a running build is reported and left alone.
//!
//! This module reads layers back: it is the one part of the store that uses the layers
//! module (the tar writer that made the layers, to recompute snapshot diff IDs).

mod applied;
mod blobs;
mod images;
mod lazy;
mod snapshots;
mod temp;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::Result;
use super::Store;
use crate::digest::Digest;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Corrupt, torn or inconsistent: fails the check.
    Damage,
    /// Left by an interrupted process by design: reported, does not fail the check.
    Leftover,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `blob`, `image`, `record`, `snapshot`, `temp` or `layout`.
    pub kind: &'static str,
    pub severity: Severity,
    /// The digest, name or key it is about.
    pub object: String,
    /// The file or directory.
    pub path: PathBuf,
    /// Why it is a problem.
    pub problem: String,
    /// With `--repair`: what was done (`None`: nothing, or not asked to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<String>,
}

impl Finding {
    /// A damage finding.
    pub fn damage(
        kind: &'static str,
        object: impl Into<String>,
        path: &Path,
        problem: String,
    ) -> Self {
        Finding {
            kind,
            severity: Severity::Damage,
            object: object.into(),
            path: path.to_owned(),
            problem,
            repaired: None,
        }
    }

    /// A leftover finding.
    pub fn leftover(
        kind: &'static str,
        object: impl Into<String>,
        path: &Path,
        problem: String,
    ) -> Self {
        Finding {
            severity: Severity::Leftover,
            ..Finding::damage(kind, object, path, problem)
        }
    }

    /// Marks the finding repaired with what was done.
    pub fn repaired(mut self, what: impl Into<String>) -> Self {
        self.repaired = Some(what.into());
        self
    }
}

/// What the blob check found for one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStatus {
    /// Present with the right digest: its size.
    Good(u64),
    /// Present but damaged (still there when not repaired).
    Bad,
}

/// The outcome of a check.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// How many objects of each kind were checked.
    pub checked: Checked,
    /// Every blob file's status (for the record check).
    #[serde(skip)]
    pub blobs: HashMap<Digest, BlobStatus>,
    /// Lazy blobs (absent, kept by a registry): digest -> size.
    #[serde(skip)]
    pub lazy: HashMap<Digest, u64>,
}

/// How many objects were checked.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Checked {
    pub blobs: usize,
    pub images: usize,
    pub records: usize,
    pub snapshots: usize,
    /// Lazy blobs images reach (in a registry, fetched on first use).
    pub lazy: usize,
}

impl Report {
    /// Whether anything is damaged (leftovers do not count).
    pub fn damaged(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Damage)
    }

    /// Whether a blob is present and intact with `size` bytes.
    pub fn blob_ok(&self, digest: &Digest, size: u64) -> std::result::Result<(), String> {
        match self.blobs.get(digest) {
            Some(BlobStatus::Good(s)) if *s == size => Ok(()),
            Some(BlobStatus::Good(s)) => {
                Err(format!("blob {digest} has {s} bytes, expected {size}"))
            }
            Some(BlobStatus::Bad) => Err(format!("blob {digest} is damaged")),
            None => Err(format!("blob {digest} is missing")),
        }
    }

    /// [`Self::blob_ok`] for a blob an image reaches, which may also be lazy (absent
    /// here, its record naming the registry that keeps it, with `size` bytes).
    pub fn image_blob_ok(&self, digest: &Digest, size: u64) -> std::result::Result<(), String> {
        match self.lazy.get(digest) {
            Some(&s) if s == size && !self.blobs.contains_key(digest) => Ok(()),
            Some(&s) if !self.blobs.contains_key(digest) => Err(format!(
                "lazy blob {digest} has {s} bytes in its record, expected {size}"
            )),
            _ => self.blob_ok(digest, size),
        }
    }
}

/// Checks the store's layout, blobs, images, snapshots and work dirs (not the cache
/// records: see the module doc); with `repair`, removes what is damaged or left over.
pub fn check(store: &Store, repair: bool) -> Result<Report> {
    let mut report = Report::default();
    blobs::check(store, repair, &mut report)?;
    lazy::check(store, repair, &mut report);
    images::check(store, repair, &mut report)?;
    snapshots::check(store, repair, &mut report)?;
    temp::check(store, repair, &mut report)?;
    Ok(report)
}

/// Removes a file or directory tree; `Ok` if it is already gone.
pub(crate) fn remove_path(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let result = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What a removal did, for [`Finding::repaired`].
pub(crate) fn removal(path: &Path) -> String {
    match remove_path(path) {
        Ok(()) => "removed".to_owned(),
        Err(e) => format!("cannot remove: {e}"),
    }
}

#[cfg(test)]
mod tests;
