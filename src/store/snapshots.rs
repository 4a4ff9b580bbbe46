//! Snapshots: a layer stack applied once to a directory, `snapshots/<chain-id-hex>/`.
//!
//! A snapshot is named by the chain ID of its layers (OCI image spec, config.md "Layer
//! ChainID"): `ChainID(L0) = DiffID(L0)` and
//! `ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))`, over the
//! `sha256:<hex>` strings. Images sharing a base share its snapshots; they are the
//! overlay lower dirs of the sandbox.
//!
//! Building one: [`Store::prepare_snapshot`] takes `locks/snap-<hex>.lock` (waiting for
//! a process already building it) and hands out a temp dir in the work dir; the layers
//! module fills it; [`SnapshotBuilder::commit`] syncs the filesystem, writes the sidecar
//! `snapshots/<chain-id-hex>.json` (`snapmeta.rs`: the layer's diff ID, the parent
//! chain, a fingerprint of the directory) and renames the dir into place. A committed
//! snapshot is never modified. This module manages directories only; it never applies
//! a layer.
//!
//! Damage is caught before use: the first time a process gets a snapshot from
//! [`Store::prepare_snapshot`], its fingerprint is compared with the sidecar's (one
//! `lstat` per entry, once per snapshot per process, i.e. per build); a snapshot that
//! differs, or has no valid sidecar, is removed under its lock and handed out to be
//! rebuilt from its blob.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::fs::{renameat_with, RenameFlags, CWD};
use rustix::io::Errno;

use super::error::{Error, Result};
use super::layout::{self, LOCKS_DIR, SNAPSHOTS_DIR};
use super::lock::FileLock;
use super::snapmeta::{
    fingerprint, read_sidecar, FingerprintVersion, Sidecar, SnapshotInfo, SnapshotMeta,
};
use super::Store;
use crate::digest::Digest;
use crate::fs_error::FsError;
use crate::layers::LayerChunks;

/// The chain ID of a layer stack given its diff IDs (base first); `None` when empty.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

/// The chain IDs of every prefix of a layer stack: element `i` names layers `0..=i`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => *diff_id,
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The outcome of [`Store::prepare_snapshot`].
#[derive(Debug)]
pub enum Prepared<'s> {
    /// The snapshot exists (maybe built meanwhile by another process): its path.
    Ready(PathBuf),
    /// It does not: fill [`SnapshotBuilder::path`], then commit.
    Build(SnapshotBuilder<'s>),
}

/// A snapshot being built; holds the snapshot's lock until committed or dropped. A
/// builder dropped without commit removes its temp dir.
#[derive(Debug)]
pub struct SnapshotBuilder<'s> {
    store: &'s Store,
    chain_id: Digest,
    temp: PathBuf,
    committed: bool,
    _lock: FileLock,
}

impl Store {
    /// Where the snapshot `chain_id` lives (whether or not it exists).
    pub fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(SNAPSHOTS_DIR).join(chain_id.hex())
    }

    /// Where the sidecar of snapshot `chain_id` lives.
    pub fn snapshot_sidecar_path(&self, chain_id: &Digest) -> PathBuf {
        self.root
            .join(SNAPSHOTS_DIR)
            .join(format!("{}.json", chain_id.hex()))
    }

    /// The lock file guarding the building and removal of snapshot `chain_id`.
    pub(crate) fn snapshot_lock_path(&self, chain_id: &Digest) -> PathBuf {
        self.root
            .join(LOCKS_DIR)
            .join(format!("snap-{}.lock", chain_id.hex()))
    }

    /// Whether the snapshot `chain_id` exists.
    pub fn has_snapshot(&self, chain_id: &Digest) -> bool {
        self.snapshot_path(chain_id).is_dir()
    }

    /// The snapshot `chain_id` as a source of hard links for a new snapshot (see
    /// `executor::copy`): there, with a sidecar whose fingerprint leaves a file's ctime
    /// out (linking to a file moves its ctime). Whether each file is the one wanted is
    /// the caller's to check. Also gives how the layer's blob was cut, when the
    /// snapshot was written as it (`layers::patch`).
    pub fn link_source(&self, chain_id: &Digest) -> Option<(PathBuf, Option<Box<LayerChunks>>)> {
        let path = self.snapshot_path(chain_id);
        match read_sidecar(&self.snapshot_sidecar_path(chain_id)) {
            Ok(Sidecar::Valid(meta))
                if meta.chain_id == *chain_id
                    && meta.fingerprint_version() == FingerprintVersion::Mtime
                    && path.is_dir() =>
            {
                Some((path, meta.layer_chunks))
            }
            _ => None,
        }
    }

    /// Gets the snapshot `chain_id`, or the right to build it. Waits while another
    /// process (or thread) is building the same snapshot, then reports it ready. A
    /// snapshot this process has not used yet is checked against its sidecar first;
    /// a damaged one is removed and handed out to be built again.
    pub fn prepare_snapshot(&self, chain_id: &Digest) -> Result<Prepared<'_>> {
        let path = self.snapshot_path(chain_id);
        if path.is_dir() && self.snapshot_intact(chain_id)? {
            return Ok(Prepared::Ready(path));
        }
        let lock = FileLock::exclusive(&self.snapshot_lock_path(chain_id))?;
        if path.is_dir() {
            if self.snapshot_intact(chain_id)? {
                return Ok(Prepared::Ready(path));
            }
            self.discard_snapshot(chain_id)?;
        }
        let temp = self.temp_path("snap");
        fs::create_dir(&temp).map_err(Error::fs("create snapshot dir", &temp))?;
        Ok(Prepared::Build(SnapshotBuilder {
            store: self,
            chain_id: *chain_id,
            temp,
            committed: false,
            _lock: lock,
        }))
    }

    /// Whether the snapshot `chain_id` matches its sidecar: remembered once true, so a
    /// snapshot is fingerprinted at most once per process.
    fn snapshot_intact(&self, chain_id: &Digest) -> Result<bool> {
        if self.verified_snapshots().contains(chain_id) {
            return Ok(true);
        }
        let Sidecar::Valid(meta) = read_sidecar(&self.snapshot_sidecar_path(chain_id))? else {
            return Ok(false);
        };
        let intact = meta.chain_id == *chain_id
            && fingerprint(&self.snapshot_path(chain_id), meta.fingerprint_version())?.digest
                == meta.fingerprint;
        if intact {
            self.verified_snapshots().insert(*chain_id);
        }
        Ok(intact)
    }

    /// Removes snapshot `chain_id` and its sidecar (the caller holds its lock): the
    /// directory is first renamed into the work dir, so it disappears at once.
    pub(crate) fn discard_snapshot(&self, chain_id: &Digest) -> Result<()> {
        self.verified_snapshots().remove(chain_id);
        let path = self.snapshot_path(chain_id);
        let doomed = self.temp_path("bad-snap");
        match fs::rename(&path, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::fs("move aside", &path)(e)),
        }
        let sidecar = self.snapshot_sidecar_path(chain_id);
        match fs::remove_file(&sidecar) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::fs("remove", &sidecar)(e)),
        }
        layout::sync_parent(&path)?;
        match fs::remove_dir_all(&doomed) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::fs("remove", &doomed)(e))
            }
            _ => Ok(()),
        }
    }

    fn verified_snapshots(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<Digest>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SnapshotBuilder<'_> {
    /// The directory to fill (in the work dir, on the store's filesystem).
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The chain ID being built.
    pub fn chain_id(&self) -> &Digest {
        &self.chain_id
    }

    /// Fingerprints the content, writes the sidecar describing `info` (durably) and
    /// renames the directory into place; returns the snapshot's path. If the snapshot
    /// appeared meanwhile (a process that did not take the lock), the existing one is
    /// kept and ours removed.
    ///
    /// The content is not flushed here (`syncfs` writes back the whole filesystem: a
    /// build flushes once, at its end, for all its snapshots): a snapshot is a cache of
    /// its layer blob, which is durable. After a crash, a snapshot whose entries did not
    /// all reach the disk no longer matches the fingerprint in its sidecar, so its
    /// first use discards it and makes it again.
    pub fn commit(mut self, info: &SnapshotInfo) -> Result<PathBuf> {
        let dest = self.store.snapshot_path(&self.chain_id);
        let print = fingerprint(&self.temp, FingerprintVersion::Mtime)?;
        if dest.is_dir() {
            // Lost a race: keep the existing snapshot (and its sidecar); Drop removes ours.
            return Ok(dest);
        }
        let meta = SnapshotMeta::new(self.chain_id, info, print);
        let bytes = layout::encode(&meta, "snapshot sidecar")?;
        let sidecar = self.store.snapshot_sidecar_path(&self.chain_id);
        layout::write_atomic(self.store.work_dir(), &sidecar, &bytes)?;
        match renameat_with(CWD, &self.temp, CWD, &dest, RenameFlags::NOREPLACE) {
            Ok(()) => {
                self.committed = true;
                layout::sync_parent(&dest)?;
                self.store.verified_snapshots().insert(self.chain_id);
            }
            Err(Errno::EXIST | Errno::NOTEMPTY) => {
                // Lost a race: keep the existing snapshot; Drop removes ours.
            }
            Err(e) => return Err(Error::fs("rename snapshot into place", &dest)(e.into())),
        }
        Ok(dest)
    }
}

impl Drop for SnapshotBuilder<'_> {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: what is left goes with the work dir.
            let _ = fs::remove_dir_all(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn info() -> SnapshotInfo {
        SnapshotInfo {
            parent: None,
            diff_id: Digest::of(b"chain"),
            source_date_epoch: None,
            skip: Vec::new(),
            layer_chunks: None,
        }
    }

    #[test]
    fn a_modified_snapshot_is_handed_out_for_rebuilding() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"chain");
        let Prepared::Build(builder) = store.prepare_snapshot(&id).unwrap() else {
            panic!("expected a builder");
        };
        fs::write(builder.path().join("f"), b"0123").unwrap();
        builder.commit(&info()).unwrap();
        assert!(store.snapshot_sidecar_path(&id).is_file());
        // This process checked it at commit; another one checks it at first use.
        std::thread::sleep(Duration::from_millis(5));
        fs::write(store.snapshot_path(&id).join("f"), b"0124").unwrap();
        assert!(matches!(
            store.prepare_snapshot(&id).unwrap(),
            Prepared::Ready(_)
        ));
        let other = Store::open(dir.path()).unwrap();
        let Prepared::Build(again) = other.prepare_snapshot(&id).unwrap() else {
            panic!("a modified snapshot must be rebuilt");
        };
        assert!(!store.has_snapshot(&id) && !store.snapshot_sidecar_path(&id).exists());
        fs::write(again.path().join("f"), b"0123").unwrap();
        again.commit(&info()).unwrap();
        // No sidecar (an old store, or removed): rebuilt as well.
        fs::remove_file(store.snapshot_sidecar_path(&id)).unwrap();
        let third = Store::open(dir.path()).unwrap();
        assert!(matches!(
            third.prepare_snapshot(&id).unwrap(),
            Prepared::Build(_)
        ));
    }

    #[test]
    fn chain_id_matches_known_vector() {
        // Independently computed with coreutils:
        //   printf 'sha256:<a> sha256:<b>' | sha256sum
        let a = Digest::of(b"layer a");
        let b = Digest::of(b"layer b");
        let c = Digest::of(b"layer c");
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(&[a]), Some(a));
        let ab: Digest = "sha256:96097a2f877d2a7d46e93242c3e704909aa0d4486b8e4a03c8d91739d51f35c8"
            .parse()
            .unwrap();
        let abc: Digest = "sha256:eb60e3bb7bee074fb571fcbd9d3494f1ab5477da651e899915c6ee6bfb985b4f"
            .parse()
            .unwrap();
        assert_eq!(chain_ids(&[a, b, c]), vec![a, ab, abc]);
    }

    #[test]
    fn build_commit_then_ready() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"chain");
        assert!(!store.has_snapshot(&id));
        let Prepared::Build(builder) = store.prepare_snapshot(&id).unwrap() else {
            panic!("expected a builder");
        };
        fs::write(builder.path().join("etc"), b"x").unwrap();
        let path = builder.commit(&info()).unwrap();
        assert_eq!(path, store.snapshot_path(&id));
        assert_eq!(fs::read(path.join("etc")).unwrap(), b"x");
        assert!(matches!(store.prepare_snapshot(&id).unwrap(), Prepared::Ready(p) if p == path));
        assert_eq!(fs::read_dir(store.work_dir()).unwrap().count(), 0);
    }

    #[test]
    fn dropped_builder_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"chain");
        let Prepared::Build(builder) = store.prepare_snapshot(&id).unwrap() else {
            panic!("expected a builder");
        };
        fs::create_dir(builder.path().join("d")).unwrap();
        drop(builder);
        assert!(!store.has_snapshot(&id));
        assert_eq!(fs::read_dir(store.work_dir()).unwrap().count(), 0);
    }

    #[test]
    fn concurrent_preparers_build_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        Store::open(&root).unwrap();
        let id = Digest::of(b"shared chain");
        let builds = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let store = Store::open(&root).unwrap();
                    match store.prepare_snapshot(&id).unwrap() {
                        Prepared::Build(b) => {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            fs::write(b.path().join("f"), b"x").unwrap();
                            b.commit(&info()).unwrap();
                        }
                        Prepared::Ready(p) => assert!(p.join("f").is_file()),
                    };
                });
            }
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn losing_a_race_keeps_the_existing_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"chain");
        let Prepared::Build(builder) = store.prepare_snapshot(&id).unwrap() else {
            panic!("expected a builder");
        };
        fs::write(builder.path().join("ours"), b"").unwrap();
        // Someone who did not take the lock got there first.
        fs::create_dir(store.snapshot_path(&id)).unwrap();
        fs::write(store.snapshot_path(&id).join("theirs"), b"").unwrap();
        let path = builder.commit(&info()).unwrap();
        assert!(path.join("theirs").exists() && !path.join("ours").exists());
        assert_eq!(fs::read_dir(store.work_dir()).unwrap().count(), 0);
    }
}
