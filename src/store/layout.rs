//! The store's directory layout and its crash-safe file primitives.
//!
//! ```text
//! <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}   (OCI image-layout spec)
//! <root>/index.json          OCI index; named images carry org.opencontainers.image.ref.name
//! <root>/unnamed.json        images without a name (not GC roots; see `ids.rs`)
//! <root>/blobs/sha256/<hex>  content-addressed blobs
//! <root>/snapshots/<hex>/    extracted layer stacks, named by chain ID
//! <root>/snapshots/<hex>.used  touched when the snapshot is used (its last use)
//! <root>/cache/              op cache records (owned by the cache module)
//! <root>/locks/              flock files: index.lock, snap-<hex>.lock, gc.lock
//! <root>/config.json         optional settings: {"maxStoreSize": "10GiB",
//!                             "insecureRegistries": ["registry.lan:5000"]}
//! <root>/tmp/<id>/ + <id>.lock   one work dir per running process
//! ```
//!
//! Every file is written in the process's work dir, fsynced, renamed into place, and
//! its parent directory fsynced: a reader sees the old file or the new one, never a
//! torn one, and after a crash the rename is either durable or never happened.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use crate::fs_error::FsError;
use crate::image::{canonical_json, Index};

/// `oci-layout`, the marker file of an OCI image layout.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// `index.json`, the entry point of an OCI image layout.
pub const INDEX_FILE: &str = "index.json";
/// The images without a name (an OCI index, not part of the layout), relative to
/// the root.
pub const UNNAMED_FILE: &str = "unnamed.json";
/// Where blobs live, relative to the root.
pub const BLOBS_DIR: &str = "blobs/sha256";
/// Where extracted snapshots live, relative to the root.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Where the cache module keeps its records, relative to the root.
pub const CACHE_DIR: &str = "cache";
/// Where per-process work dirs live, relative to the root.
pub const TMP_DIR: &str = "tmp";
/// Where lock files live, relative to the root.
pub const LOCKS_DIR: &str = "locks";
/// The lock serializing read-modify-write of `index.json`, relative to the root.
pub const INDEX_LOCK: &str = "locks/index.lock";

/// The only image-layout version defined by the OCI image spec.
const LAYOUT_VERSION: &str = "1.0.0";

/// The content of `oci-layout`.
#[derive(Debug, Serialize, Deserialize)]
struct OciLayout {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// Creates the directories and marker files of a store at `root`, or checks those that
/// exist. Files are written through `tmp` (a work dir on the same filesystem).
pub(crate) fn ensure(root: &Path, tmp: &Path) -> Result<()> {
    let layout_path = root.join(OCI_LAYOUT_FILE);
    match fs::read(&layout_path) {
        Ok(bytes) => {
            let layout: OciLayout =
                crate::image::decode_json(&bytes).map_err(|source| Error::CorruptFile {
                    path: layout_path.clone(),
                    source,
                })?;
            if layout.image_layout_version != LAYOUT_VERSION {
                return Err(Error::LayoutVersion {
                    path: layout_path,
                    found: layout.image_layout_version,
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let layout = OciLayout {
                image_layout_version: LAYOUT_VERSION.to_owned(),
            };
            let bytes = encode(&layout, "oci-layout")?;
            write_atomic(tmp, &layout_path, &bytes)?;
        }
        Err(e) => return Err(Error::fs("read", &layout_path)(e)),
    }
    let index_path = root.join(INDEX_FILE);
    if !index_path.exists() {
        // Two processes racing here both write the same empty index; the second rename
        // could only drop a name the first process set in the meantime, so take the lock.
        let _lock = super::lock::FileLock::exclusive(&root.join(INDEX_LOCK))?;
        if !index_path.exists() {
            write_atomic(tmp, &index_path, &encode(&Index::default(), "index.json")?)?;
        }
    }
    Ok(())
}

/// Creates the directories of a store at `root` (idempotent), private to their owner.
pub(crate) fn create_dirs(root: &Path) -> Result<()> {
    fs::create_dir_all(root).map_err(Error::fs("create directory", root))?;
    make_private(root)?;
    for dir in [BLOBS_DIR, SNAPSHOTS_DIR, CACHE_DIR, TMP_DIR, LOCKS_DIR] {
        let path = root.join(dir);
        fs::create_dir_all(&path).map_err(Error::fs("create directory", &path))?;
    }
    for dir in [SNAPSHOTS_DIR, CACHE_DIR, TMP_DIR] {
        make_private(&root.join(dir))?;
    }
    Ok(())
}

/// Makes `dir` 0700 unless it already is (or stricter). The store holds image file
/// systems with setuid binaries, device nodes and files of any owner: readable by
/// other users, it would hand them root (Docker's data root is 0710, containerd's
/// snapshot directories 0700). A store another user owns is left as it is.
fn make_private(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(Error::fs("stat", dir))?;
    if meta.permissions().mode() & 0o077 == 0 || meta.uid() != rustix::process::geteuid().as_raw() {
        return Ok(());
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(Error::fs("make private (chmod 0700)", dir))
}

/// Reads and parses `index.json`.
pub(crate) fn read_index(root: &Path) -> Result<Index> {
    let path = root.join(INDEX_FILE);
    let bytes = fs::read(&path).map_err(Error::fs("read", &path))?;
    crate::image::decode_json(&bytes).map_err(|source| Error::CorruptFile { path, source })
}

/// Serializes a record through the image module's canonical JSON.
pub(crate) fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    canonical_json(value).map_err(|source| Error::Encode { what, source })
}

/// Writes `bytes` to `dest` atomically: a temp file in `tmp`, fsync, rename, fsync of
/// the destination directory.
pub(crate) fn write_atomic(tmp: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let temp = tmp.join(unique_name("file"));
    let result = (|| {
        let mut file = File::create(&temp).map_err(Error::fs("create", &temp))?;
        file.write_all(bytes).map_err(Error::fs("write", &temp))?;
        file.sync_all().map_err(Error::fs("fsync", &temp))?;
        fs::rename(&temp, dest).map_err(Error::fs("rename into place", dest))?;
        sync_parent(dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Fsyncs the directory containing `path`, making a rename into it durable.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Flushes the filesystem that holds `dir` (`syncfs`): once at the end of a build, for
/// the snapshots it made, which are not flushed one by one (see
/// [`super::SnapshotBuilder::commit`]). Without it, their writeback and journal work
/// is left to the next build: on this machine's ext4, ten back-to-back builds of a
/// small example slowed from 50 to 120 ms each.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    use std::os::fd::AsFd;
    let handle = File::open(dir).map_err(Error::fs("open directory", dir))?;
    rustix::fs::syncfs(handle.as_fd()).map_err(|e| Error::fs("sync", dir)(e.into()))
}

/// Fsyncs a directory.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(Error::fs("open directory", dir))?;
    handle.sync_all().map_err(Error::fs("fsync directory", dir))
}

/// A name no other call in any process will produce: pid, time and a counter.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        let dest = dir.path().join("f");
        write_atomic(&tmp, &dest, b"one").unwrap();
        write_atomic(&tmp, &dest, b"two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn wrong_layout_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        create_dirs(root).unwrap();
        fs::write(
            root.join(OCI_LAYOUT_FILE),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        let err = ensure(root, &root.join(TMP_DIR)).unwrap_err();
        assert!(
            matches!(err, Error::LayoutVersion { ref found, .. } if found == "2.0.0"),
            "{err}"
        );
    }

    #[test]
    fn a_store_is_private_to_its_owner_new_or_old() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let new = dir.path().join("new/store");
        create_dirs(&new).unwrap();
        for p in [
            &new,
            &new.join(SNAPSHOTS_DIR),
            &new.join(CACHE_DIR),
            &new.join(TMP_DIR),
        ] {
            assert_eq!(mode(p), 0o700, "{}", p.display());
        }
        // A store made 0755 by an older rbuild is tightened when opened.
        let old = dir.path().join("old");
        for d in ["", SNAPSHOTS_DIR, CACHE_DIR, TMP_DIR] {
            fs::create_dir_all(old.join(d)).unwrap();
            fs::set_permissions(old.join(d), fs::Permissions::from_mode(0o755)).unwrap();
        }
        create_dirs(&old).unwrap();
        assert_eq!(mode(&old), 0o700);
        assert_eq!(mode(&old.join(SNAPSHOTS_DIR)), 0o700);
        // Stricter modes are kept.
        fs::set_permissions(&old, fs::Permissions::from_mode(0o500)).unwrap();
        create_dirs(&old).unwrap();
        assert_eq!(mode(&old), 0o500);
        fs::set_permissions(&old, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("x"), unique_name("x"));
    }
}
