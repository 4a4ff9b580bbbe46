//! Snapshot sidecars (`snapshots/<chain-hex>.json`) and snapshot fingerprints.
//!
//! A sidecar says what a snapshot directory is: the layer's diff ID, the parent chain,
//! how the layer's tar was written from the directory (the `SOURCE_DATE_EPOCH` clamp,
//! and the directories an overlay copied up that the layer leaves out), and a
//! fingerprint of the directory taken at commit. `rbuild store check` recomputes the
//! diff ID from the directory with this; a build compares the fingerprint once per
//! snapshot before using it as a lower (see [`Store::prepare_snapshot`]).
//!
//! The fingerprint is SHA-256 over every entry below the snapshot root (not the root,
//! whose ctime changes when it is renamed into place), in sorted depth-first order:
//! the path and `lstat`'s mode, size, inode and ctime (seconds and nanoseconds). Any
//! write, truncate, chmod, chown, xattr change, rename, link or unlink through the
//! filesystem changes a ctime or the entry list, and ctime cannot be set from user
//! space. The ctime of an inode also moves when a link to it *outside* the snapshot
//! goes, so a snapshot must be settled before it is committed: overlayfs makes every
//! whiteout a link of one inode in its workdir, and a native step root shares
//! hardlinked files with the snapshot made from it; the executor removes both first. Cost: one `lstat` per entry, no file content read (~10-30 ms for a 10,000-file
//! Debian base on this machine's ext4); it does not see damage below the filesystem (a
//! bad disk block), which only the diff ID recomputation of `store check` finds.
//!
//! The sidecar is written before the directory is renamed into place, so a snapshot
//! directory always has one; a crash in between leaves a sidecar without a directory,
//! which the next commit of that chain overwrites and `store check` reports as a
//! leftover.
//!
//! [`Store::prepare_snapshot`]: super::Store::prepare_snapshot

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use crate::digest::{Digest, Hasher};
use crate::fs_error::FsError;

/// The sidecar format version.
pub const SIDECAR_VERSION: u32 = 1;

/// What the caller knows about a snapshot it commits: the layer it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The chain below (`None` for a base layer).
    pub parent: Option<Digest>,
    /// The diff ID of the layer the snapshot holds.
    pub diff_id: Digest,
    /// The mtime clamp the layer's tar was written with from this directory (`None`
    /// when the directory was made from the layer, whose mtimes are already clamped).
    pub source_date_epoch: Option<i64>,
    /// Directories (relative paths) that are in the directory but not in the layer:
    /// overlay copy-ups whose metadata equals the layer below.
    pub skip: Vec<PathBuf>,
}

/// The sidecar of a committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMeta {
    pub version: u32,
    pub chain_id: Digest,
    #[serde(default)]
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    #[serde(default)]
    pub source_date_epoch: Option<i64>,
    /// [`SnapshotInfo::skip`], each path escaped (`%XX` for bytes outside printable ASCII).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// [`fingerprint`] of the directory at commit.
    pub fingerprint: Digest,
    /// How many entries the fingerprint covers.
    pub entries: u64,
}

impl SnapshotMeta {
    /// The sidecar for `info` and a directory with fingerprint `print`.
    pub(crate) fn new(chain_id: Digest, info: &SnapshotInfo, print: Fingerprint) -> Self {
        SnapshotMeta {
            version: SIDECAR_VERSION,
            chain_id,
            parent: info.parent,
            diff_id: info.diff_id,
            source_date_epoch: info.source_date_epoch,
            skip: info.skip.iter().map(|p| escape_path(p)).collect(),
            fingerprint: print.digest,
            entries: print.entries,
        }
    }

    /// The skipped directories as paths.
    pub fn skip_paths(&self) -> Vec<PathBuf> {
        self.skip.iter().map(|s| unescape_path(s)).collect()
    }

    /// Whether the chain ID follows from the parent and the diff ID (OCI ChainID).
    pub fn chain_is_consistent(&self) -> bool {
        let expected = match self.parent {
            None => self.diff_id,
            Some(parent) => Digest::of(format!("{parent} {}", self.diff_id).as_bytes()),
        };
        expected == self.chain_id
    }
}

/// How reading a sidecar went.
#[derive(Debug)]
pub enum Sidecar {
    /// Parsed, of this version.
    Valid(SnapshotMeta),
    /// No sidecar file.
    Missing,
    /// There is a file, but it is torn, foreign or of another version.
    Invalid(String),
}

/// Reads the sidecar at `path`.
pub fn read_sidecar(path: &Path) -> Result<Sidecar> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Sidecar::Missing),
        Err(e) => return Err(Error::fs("read", path)(e)),
    };
    match serde_json::from_slice::<SnapshotMeta>(&bytes) {
        Ok(meta) if meta.version == SIDECAR_VERSION => Ok(Sidecar::Valid(meta)),
        Ok(meta) => Ok(Sidecar::Invalid(format!("version {}", meta.version))),
        Err(e) => Ok(Sidecar::Invalid(e.to_string())),
    }
}

/// A directory's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub digest: Digest,
    pub entries: u64,
}

/// Fingerprints the tree below `root` (see the module doc). Iterative, so a deep tree
/// cannot overflow the stack.
pub fn fingerprint(root: &Path) -> Result<Fingerprint> {
    let mut hasher = Hasher::new(std::io::sink());
    let mut entries = 0u64;
    let mut stack: Vec<PathBuf> = children(root, Path::new(""))?;
    while let Some(rel) = stack.pop() {
        let host = root.join(&rel);
        let meta = fs::symlink_metadata(&host).map_err(Error::fs("stat", &host))?;
        let mut record = rel.as_os_str().as_bytes().to_vec();
        record.push(0);
        for n in [
            u64::from(meta.mode()),
            meta.size(),
            meta.ino(),
            meta.ctime() as u64,
            meta.ctime_nsec() as u64,
        ] {
            record.extend_from_slice(&n.to_le_bytes());
        }
        // invariant: writing to a hasher over `io::sink` cannot fail.
        let _ = hasher.write_all(&record);
        entries += 1;
        if meta.is_dir() {
            stack.extend(children(root, &rel)?);
        }
    }
    let (digest, _, _) = hasher.finish();
    Ok(Fingerprint { digest, entries })
}

/// The children of `root/rel` as relative paths, sorted descending (popped ascending).
fn children(root: &Path, rel: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(rel);
    let mut names: Vec<OsString> = Vec::new();
    for entry in fs::read_dir(&dir).map_err(Error::fs("read directory", &dir))? {
        names.push(
            entry
                .map_err(Error::fs("read directory", &dir))?
                .file_name(),
        );
    }
    names.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    Ok(names.into_iter().map(|n| rel.join(n)).collect())
}

/// A path as JSON-safe text: bytes outside printable ASCII, and `%`, become `%XX`.
pub fn escape_path(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && b != b'%' || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`escape_path`]; a malformed escape is kept as it is.
pub fn unescape_path(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_sees_writes_but_not_reads_or_renames_of_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("a");
        fs::create_dir_all(root.join("d/e")).unwrap();
        fs::write(root.join("d/e/f"), b"0123").unwrap();
        let before = fingerprint(&root).unwrap();
        assert_eq!(before.entries, 3);
        let _ = fs::read(root.join("d/e/f")).unwrap();
        let moved = t.path().join("b");
        fs::rename(&root, &moved).unwrap();
        assert_eq!(fingerprint(&moved).unwrap(), before);
        // Same size, one byte different: the ctime moves.
        std::thread::sleep(std::time::Duration::from_millis(5));
        fs::write(moved.join("d/e/f"), b"0124").unwrap();
        assert_ne!(fingerprint(&moved).unwrap(), before);
    }

    #[test]
    fn paths_escape_losslessly() {
        for p in ["usr/bin", "a b/100%", "\u{e9}t\u{e9}"] {
            assert_eq!(unescape_path(&escape_path(Path::new(p))), Path::new(p));
        }
        let raw = PathBuf::from(OsString::from_vec(vec![b'x', 0xff, b'\n']));
        assert_eq!(escape_path(&raw), "x%FF%0A");
        assert_eq!(unescape_path(&escape_path(&raw)), raw);
    }

    #[test]
    fn chain_consistency() {
        let d = Digest::of(b"d");
        let info = SnapshotInfo {
            parent: None,
            diff_id: d,
            source_date_epoch: None,
            skip: Vec::new(),
        };
        let print = Fingerprint {
            digest: d,
            entries: 0,
        };
        let mut meta = SnapshotMeta::new(d, &info, print);
        assert!(meta.chain_is_consistent());
        meta.parent = Some(Digest::of(b"p"));
        assert!(!meta.chain_is_consistent());
    }
}
