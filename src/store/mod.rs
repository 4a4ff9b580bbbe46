//! The on-disk store: content-addressed blobs, image names, extracted snapshots, locks.
//!
//! The store directory is itself a valid OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/`), so `skopeo copy oci:<root>:app:1 ...` reads it directly; beside
//! that it holds `snapshots/`, `cache/`, `locks/`, `tmp/` and an optional `config.json`
//! (see [`layout`]).
//!
//! Invariants:
//! - crash safety: every file is written under this process's `tmp/<id>/`, fsynced and
//!   renamed into place; a record (`index.json` entry, snapshot) is written only after
//!   everything it points to exists;
//! - concurrency: several processes share a store through `flock` locks: blob commits
//!   are idempotent renames, `index.json` is rewritten under `locks/index.lock`, a
//!   snapshot is built under `locks/snap-<hex>.lock`;
//! - lazy blobs (`lazy.rs`): an image's blob may be absent when a record says which
//!   registry repository holds it (fetched by the registry module on first use);
//! - a work dir whose process died is removed by the next [`Store::open`];
//! - integrity: a snapshot is fingerprinted at commit and checked at its first use in a
//!   process (`snapmeta.rs`, its walk reading directories ahead on other threads:
//!   `treewalk.rs`); [`check`] verifies the whole store (`rbuild store check`).
//!
//! - garbage collection: a build holds `locks/gc.lock` shared, a prune exclusively
//!   (`gc.rs`); [`usage`] measures what the store holds, exactly (`du -sB1`).
//!
//! Does not: apply layers (the layers module fills snapshot directories), talk to the
//! network, or decide what is garbage (the cache module's prune does). `check` is the
//! one part that reads layers back (it recomputes snapshot diff IDs with the layers
//! module's tar writer).

mod blobs;
pub mod check;
mod direct;
mod error;
mod gc;
mod ids;
pub mod layout;
mod lazy;
mod lock;
mod names;
mod snapmeta;
mod snapshots;
#[cfg(test)]
pub(crate) mod testutil;
mod treewalk;
pub mod usage;
mod workdir;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

pub use blobs::{BlobWriter, HashedBlobWriter, MAX_JSON_BLOB};
pub use error::{Error, Result};
pub use gc::{ImageRoots, StoreConfig, CONFIG_FILE, GC_LOCK};
pub use ids::{UnnamedImage, IMAGE_ID_ANNOTATION};
pub use lazy::LazyBlob;
pub use lock::FileLock;
pub use names::{ImageName, NamedImage, CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION};
pub use snapmeta::{
    fingerprint, read_sidecar, Fingerprint, FingerprintVersion, Sidecar, SnapshotInfo, SnapshotMeta,
};
pub use snapshots::{chain_id, chain_ids, Prepared, SnapshotBuilder};

use workdir::WorkDir;

/// An open store. Cheap to share by reference across threads (`Send + Sync`); each
/// `Store` value owns one work dir under `tmp/`, removed when it is dropped.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    work: WorkDir,
    /// Snapshots whose fingerprint this process has checked (or made).
    verified: std::sync::Mutex<std::collections::HashSet<Digest>>,
}

impl Store {
    /// Opens the store at `root`, creating it (and its parents) if needed, checking the
    /// layout version if it exists, and removing work dirs of processes that died.
    pub fn open(root: &Path) -> Result<Store> {
        Self::open_with(root, true)
    }

    /// Opens the store without collecting dead work dirs, so that `store check` can
    /// report them.
    pub fn open_for_check(root: &Path) -> Result<Store> {
        Self::open_with(root, false)
    }

    fn open_with(root: &Path, clean: bool) -> Result<Store> {
        layout::create_dirs(root)?;
        let tmp = root.join(layout::TMP_DIR);
        if clean {
            workdir::clean_stale(&tmp)?;
        }
        let work = WorkDir::create(&tmp)?;
        layout::ensure(root, work.path())?;
        Ok(Store {
            root: root.to_owned(),
            work,
            verified: Default::default(),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This process's work dir (`tmp/<id>/`): scratch space on the store's filesystem,
    /// removed when the store is dropped or, after a crash, by the next `open`.
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// The directory of op cache records (owned by the cache module).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join(layout::CACHE_DIR)
    }

    /// A fresh path in the work dir, for a temp file or dir named after `prefix`.
    pub(crate) fn temp_path(&self, prefix: &str) -> PathBuf {
        self.work.path().join(layout::unique_name(prefix))
    }
}

/// The default store root: `/var/lib/rbuild` for root, else `$XDG_DATA_HOME/rbuild`, else
/// `$HOME/.local/share/rbuild`; `None` when neither variable is set for a non-root user.
///
/// The caller (the CLI) reads the environment; `RBUILD_ROOT`/`--root` override this.
pub fn default_root(
    is_root: bool,
    xdg_data_home: Option<&OsStr>,
    home: Option<&OsStr>,
) -> Option<PathBuf> {
    if is_root {
        return Some(PathBuf::from("/var/lib/rbuild"));
    }
    // The XDG spec says a relative or empty value is to be ignored.
    if let Some(xdg) = xdg_data_home.map(Path::new).filter(|p| p.is_absolute()) {
        return Some(xdg.join("rbuild"));
    }
    home.filter(|h| !h.is_empty())
        .map(|h| Path::new(h).join(".local/share/rbuild"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_an_oci_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&root).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert_eq!(
            std::fs::read_to_string(root.join("index.json")).unwrap(),
            r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#
        );
        for d in ["blobs/sha256", "snapshots", "cache", "tmp", "locks"] {
            assert!(root.join(d).is_dir(), "{d}");
        }
        assert!(store.work_dir().starts_with(root.join("tmp")));
        // Reopening keeps everything and gives another work dir.
        let again = Store::open(&root).unwrap();
        assert_ne!(again.work_dir(), store.work_dir());
        assert!(store.work_dir().is_dir());
    }

    #[test]
    fn dropping_removes_the_work_dir() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let work = store.work_dir().to_owned();
        std::fs::write(work.join("f"), b"x").unwrap();
        drop(store);
        assert!(!work.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    const CRASH_ENV: &str = "RBUILD_TEST_CRASH_CHILD";

    #[test]
    fn a_crashed_process_leaves_nothing_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::tests::child_dies_mid_write", "--ignored"])
            .env(CRASH_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        let tmp = dir.path().join("tmp");
        // The child's work dir, lock file and half-written blob are still there...
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 2);
        // ...until the next open, which removes them.
        let store = Store::open(dir.path()).unwrap();
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left
            .iter()
            .all(|p| p.starts_with(store.work_dir()) || p.extension().is_some()));
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    /// Runs in a child process of [`a_crashed_process_leaves_nothing_after_reopen`]:
    /// exits without running destructors in the middle of writing a blob.
    #[test]
    #[ignore = "helper: run by a_crashed_process_leaves_nothing_after_reopen"]
    fn child_dies_mid_write() {
        use std::io::Write;
        let Some(root) = std::env::var_os(CRASH_ENV) else {
            return;
        };
        let store = Store::open(Path::new(&root)).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(&[1u8; 100_000]).unwrap();
        w.flush().unwrap();
        std::process::exit(3);
    }

    #[test]
    fn default_root_follows_xdg() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(
            default_root(true, os("/x"), os("/h")),
            Some("/var/lib/rbuild".into())
        );
        assert_eq!(
            default_root(false, os("/x"), os("/h")),
            Some("/x/rbuild".into())
        );
        assert_eq!(
            default_root(false, os("rel"), os("/h")),
            Some("/h/.local/share/rbuild".into())
        );
        assert_eq!(default_root(false, None, None), None);
    }
}
