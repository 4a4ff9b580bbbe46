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
//! the path and `lstat`'s mode, size and inode, then for a directory its ctime
//! (seconds and nanoseconds) and for any other entry its mtime (seconds and
//! nanoseconds), owner and group. A directory's ctime moves with any entry made,
//! removed or renamed in it, and with its own chmod, chown or xattr change; a file's
//! write or truncate moves its mtime (and size), and a chmod or chown shows in its
//! mode or owner. A file's ctime is left out so that a snapshot may share a file's
//! inode with another snapshot (a COPY step's unchanged files are hard links to its
//! last snapshot's: `executor::copy`): a link made or removed elsewhere moves the
//! ctime of the inode but changes nothing the snapshot holds. Sidecars of version 1
//! recorded the ctime of every entry ([`FingerprintVersion::Ctime`]); they are still
//! read and checked that way, and such a snapshot is never a link source. Cost: one
//! `lstat` per entry, no file content read (~10-30 ms for a 10,000-file Debian base on
//! this machine's ext4); it does not see damage below the filesystem (a bad disk
//! block), which only the diff ID recomputation of `store check` finds.
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
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::treewalk::{walk_sorted, Stat};
use crate::digest::{Digest, Hasher};
use crate::fs_error::FsError;
use crate::layers::LayerChunks;

/// The sidecar format version: 2 since fingerprints leave a file's ctime out.
pub const SIDECAR_VERSION: u32 = 2;

/// How a sidecar's fingerprint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintVersion {
    /// Version 1: the ctime of every entry.
    Ctime,
    /// Version 2: a directory's ctime; any other entry's mtime, owner and group.
    Mtime,
}

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
    /// How the layer's gzip blob was cut, when this directory was written as it (what
    /// a patch of the next build's layer copies from: `layers::patch`).
    pub layer_chunks: Option<Box<LayerChunks>>,
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
    /// [`SnapshotInfo::layer_chunks`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_chunks: Option<Box<LayerChunks>>,
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
            layer_chunks: info.layer_chunks.clone(),
        }
    }

    /// How this sidecar's fingerprint was taken.
    pub fn fingerprint_version(&self) -> FingerprintVersion {
        if self.version == 1 {
            FingerprintVersion::Ctime
        } else {
            FingerprintVersion::Mtime
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
        Ok(meta) if meta.version == 1 || meta.version == SIDECAR_VERSION => {
            Ok(Sidecar::Valid(meta))
        }
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

/// Fingerprints the tree below `root` (see the module doc). Each entry is `statx`ed by
/// name relative to its directory (no path walk per entry: a 100k-file snapshot is
/// checked before every build that uses it as a lower), with directories read ahead
/// on other threads (the store's `treewalk`).
pub fn fingerprint(root: &Path, version: FingerprintVersion) -> Result<Fingerprint> {
    let mut hasher = Hasher::new(std::io::sink());
    let mut entries = 0u64;
    walk_sorted(root, |rel, stat| {
        // invariant: writing to a hasher over `io::sink` cannot fail.
        let _ = hasher.write_all(&entry_record(rel, stat, version));
        entries += 1;
    })?;
    let (digest, _, _) = hasher.finish();
    Ok(Fingerprint { digest, entries })
}

/// What the fingerprint hashes of one entry (see the module doc).
fn entry_record(rel: &Path, stat: &Stat, version: FingerprintVersion) -> Vec<u8> {
    let mut record = rel.as_os_str().as_bytes().to_vec();
    record.push(0);
    let head = [u64::from(stat.mode), stat.size, stat.ino];
    let tail: &[u64] = if stat.is_dir() || version == FingerprintVersion::Ctime {
        &[stat.ctime.0 as u64, u64::from(stat.ctime.1)]
    } else {
        &[
            stat.mtime.0 as u64,
            u64::from(stat.mtime.1),
            u64::from(stat.uid),
            u64::from(stat.gid),
        ]
    };
    for n in head.iter().chain(tail) {
        record.extend_from_slice(&n.to_le_bytes());
    }
    record
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
    use crate::store::treewalk::PARALLEL_STAT;
    use std::ffi::OsStr;

    /// The fingerprint as version 1 sidecars recorded it: path-based `lstat` of each
    /// entry, depth-first, names ascending, the ctime of every entry.
    fn reference_fingerprint(root: &Path) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        fn walk(root: &Path, rel: &Path, hasher: &mut Hasher<std::io::Sink>, n: &mut u64) {
            let mut names: Vec<OsString> = fs::read_dir(root.join(rel))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                let rel = rel.join(name);
                let meta = fs::symlink_metadata(root.join(&rel)).unwrap();
                let mut record = rel.as_os_str().as_bytes().to_vec();
                record.push(0);
                for v in [
                    u64::from(meta.mode()),
                    meta.size(),
                    meta.ino(),
                    meta.ctime() as u64,
                    meta.ctime_nsec() as u64,
                ] {
                    record.extend_from_slice(&v.to_le_bytes());
                }
                hasher.write_all(&record).unwrap();
                *n += 1;
                if meta.is_dir() {
                    walk(root, &rel, hasher, n);
                }
            }
        }
        let mut hasher = Hasher::new(std::io::sink());
        let mut entries = 0;
        walk(root, Path::new(""), &mut hasher, &mut entries);
        let (digest, _, _) = hasher.finish();
        Fingerprint { digest, entries }
    }

    #[test]
    fn fingerprint_is_the_one_earlier_sidecars_recorded() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for d in ["a/b", "a-c", "a.d/e/f", "z"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "a/b/1",
            "a/2",
            "a-c/3",
            "a.d/e/f/4",
            "a0",
            "\u{e9}t\u{e9}",
            "z/.hidden",
        ] {
            fs::write(root.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("a/../../x", root.join("a/link")).unwrap();
        fs::write(root.join(OsStr::from_bytes(b"bad\xffname")), b"x").unwrap();
        // One directory large enough to be read on several threads.
        fs::create_dir(root.join("big")).unwrap();
        for i in 0..PARALLEL_STAT + 10 {
            fs::File::create(root.join(format!("big/{i}"))).unwrap();
        }
        let print = fingerprint(root, FingerprintVersion::Ctime).unwrap();
        assert_eq!(print, reference_fingerprint(root));
        let v2 = fingerprint(root, FingerprintVersion::Mtime).unwrap();
        assert_ne!(v2.digest, print.digest);
        assert_eq!(v2.entries, print.entries);
        assert_eq!(print.entries, 17 + PARALLEL_STAT as u64 + 10);
    }

    #[test]
    fn fingerprint_sees_writes_but_not_reads_or_renames_of_the_root() {
        for version in [FingerprintVersion::Ctime, FingerprintVersion::Mtime] {
            let t = tempfile::tempdir().unwrap();
            let root = t.path().join("a");
            fs::create_dir_all(root.join("d/e")).unwrap();
            fs::write(root.join("d/e/f"), b"0123").unwrap();
            let before = fingerprint(&root, version).unwrap();
            assert_eq!(before.entries, 3);
            let _ = fs::read(root.join("d/e/f")).unwrap();
            let moved = t.path().join("b");
            fs::rename(&root, &moved).unwrap();
            assert_eq!(fingerprint(&moved, version).unwrap(), before);
            // Same size, one byte different: the mtime and the ctime move.
            std::thread::sleep(std::time::Duration::from_millis(5));
            fs::write(moved.join("d/e/f"), b"0124").unwrap();
            assert_ne!(fingerprint(&moved, version).unwrap(), before, "{version:?}");
        }
    }

    #[test]
    fn a_version_2_fingerprint_ignores_links_made_elsewhere_but_sees_owner_mode_and_entries() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("snap");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/f"), b"0123").unwrap();
        let print = |v| fingerprint(&root, v).unwrap();
        let (v1, v2) = (
            print(FingerprintVersion::Ctime),
            print(FingerprintVersion::Mtime),
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        // Another snapshot links the file, then lets go of it: its ctime moves twice.
        let other = t.path().join("other-f");
        fs::hard_link(root.join("d/f"), &other).unwrap();
        fs::remove_file(&other).unwrap();
        assert_eq!(print(FingerprintVersion::Mtime), v2);
        assert_ne!(print(FingerprintVersion::Ctime), v1);
        // What the snapshot holds still shows: a mode, an owner, a new entry.
        fs::set_permissions(root.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap();
        let moded = print(FingerprintVersion::Mtime);
        assert_ne!(moded, v2);
        std::os::unix::fs::lchown(root.join("d/f"), Some(1), Some(1)).unwrap();
        let owned = print(FingerprintVersion::Mtime);
        assert_ne!(owned, moded);
        fs::write(root.join("d/g"), b"").unwrap();
        assert_ne!(print(FingerprintVersion::Mtime), owned);
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
            layer_chunks: None,
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
