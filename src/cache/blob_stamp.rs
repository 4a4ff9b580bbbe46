//! Blob stamps: is a record's layer blob still the file that was verified?
//!
//! A record keeps the `stat` identity of its blob file (inode, size, mtime and ctime
//! with nanoseconds) from when the record was written. On a hit the blob is `stat`ed
//! again: an equal stamp means nobody wrote to, replaced or truncated the file (a write
//! moves mtime and ctime; ctime cannot be set from user space), so the blob is used
//! without reading it. A different stamp (the blob was rewritten, restored, or copied
//! in by another tool) costs one streamed re-hash: equal digest, the record gets the
//! new stamp; different digest, the blob is damaged.
//!
//! Cost per hit: one `stat`. It cannot see damage below the filesystem (a bad disk
//! block): `rbuild store check` re-hashes every blob for that.

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher};

/// The `stat` identity of a blob file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobStamp {
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
}

impl BlobStamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &Metadata) -> Self {
        BlobStamp {
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }

    /// The stamp of the file at `path`, `None` if it cannot be `stat`ed.
    pub fn read(path: &Path) -> Option<Self> {
        fs::metadata(path).ok().map(|m| Self::of(&m))
    }
}

/// What a blob is, compared with what a record expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Same stamp as recorded: used without reading.
    Unchanged,
    /// Stamp changed, content re-hashed and right: the new stamp.
    Verified(BlobStamp),
    /// Not there (or unreadable).
    Missing,
    /// Wrong size, or content that does not hash to the digest. The stamp is that of
    /// the file judged, so a caller removing it can make sure it is still that file.
    Damaged(BlobStamp),
}

/// Judges the blob file at `path` against its `digest`, `size` and the stamp
/// `recorded` (if the record has one).
pub fn judge(path: &Path, digest: &Digest, size: u64, recorded: Option<&BlobStamp>) -> BlobState {
    let Ok(mut file) = File::open(path) else {
        return BlobState::Missing;
    };
    let Ok(meta) = file.metadata() else {
        return BlobState::Missing;
    };
    let stamp = BlobStamp::of(&meta);
    if stamp.size != size {
        return BlobState::Damaged(stamp);
    }
    if recorded == Some(&stamp) {
        return BlobState::Unchanged;
    }
    match hash_reader(&mut file) {
        Some(actual) if actual == *digest => BlobState::Verified(stamp),
        Some(_) => BlobState::Damaged(stamp),
        None => BlobState::Missing,
    }
}

/// SHA-256 of what `reader` yields, streamed in 1 MiB chunks; `None` on a read error.
fn hash_reader(reader: &mut impl Read) -> Option<Digest> {
    let mut hasher = Hasher::new(std::io::sink());
    std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 20, reader),
        &mut hasher,
    )
    .ok()?;
    Some(hasher.finish().0)
}

/// Removes the damaged blob at `path` if it is still the file that was judged (a
/// process may have replaced it with a good copy meanwhile).
pub fn remove_damaged(path: &Path, judged: &BlobStamp) {
    if BlobStamp::read(path).is_some_and(|now| now.ino == judged.ino) {
        // Best effort: a blob left behind is judged again at the next use.
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_is_found_a_rewrite_is_restamped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        fs::write(&path, b"0123456789").unwrap();
        let digest = Digest::of(b"0123456789");
        let stamp = BlobStamp::read(&path).unwrap();
        assert_eq!(
            judge(&path, &digest, 10, Some(&stamp)),
            BlobState::Unchanged
        );
        assert_eq!(judge(&path, &digest, 10, None), BlobState::Verified(stamp));
        assert!(matches!(
            judge(&path, &digest, 9, Some(&stamp)),
            BlobState::Damaged(_)
        ));
        std::thread::sleep(std::time::Duration::from_millis(5));
        fs::write(&path, b"0123456789").unwrap();
        assert!(matches!(
            judge(&path, &digest, 10, Some(&stamp)),
            BlobState::Verified(s) if s != stamp
        ));
        fs::write(&path, b"0123456780").unwrap();
        let BlobState::Damaged(judged) = judge(&path, &digest, 10, Some(&stamp)) else {
            panic!("a flipped byte must be found");
        };
        remove_damaged(&path, &judged);
        assert!(!path.exists());
        assert_eq!(judge(&path, &digest, 10, None), BlobState::Missing);
    }
}
