//! The stat cache: content digests of context files, reused while a file's
//! (size, mtime, ctime, inode, device) stay the same, so a rebuild with no change does
//! not read the context again.
//!
//! One file per context directory, `<store>/cache/stat/<sha256 of the path>.bin`, in a
//! small binary format (a magic line, then fixed-width records after each path), read
//! once at the start of a build and written back (atomically) only when it changed.
//! `ctime` is part of the check: it changes with every write, chmod or rename, even
//! when a tool restores the mtime.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::Result;
use crate::digest::Digest;
use crate::store::Store;

const MAGIC: &[u8] = b"rbuild-stat-v1\n";
/// size, mtime s+ns, ctime s+ns, inode, device, digest.
const FIXED: usize = 8 + 8 + 4 + 8 + 4 + 8 + 8 + 32;

/// A fast hash for the paths of one's own context (no untrusted peer chooses them): the
/// map is probed once per context file on every build.
#[derive(Default)]
struct PathHasher(u64);

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Entries = HashMap<String, (Stamp, Digest), std::hash::BuildHasherDefault<PathHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, u32),
    ctime: (i64, u32),
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Stamp {
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec() as u32),
            ctime: (meta.ctime(), meta.ctime_nsec() as u32),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

/// Digests of the files of one context directory.
#[derive(Debug)]
pub struct StatCache {
    file: PathBuf,
    entries: Entries,
    dirty: bool,
    /// Files read (hashed) in this build, for the report and the tests.
    pub hashed: usize,
}

impl StatCache {
    /// The stat cache of `context` in `store` (empty when missing or unreadable).
    pub fn load(store: &Store, context: &Path) -> Self {
        let id = Digest::of(context.as_os_str().as_encoded_bytes());
        let file = store
            .cache_dir()
            .join("stat")
            .join(format!("{}.bin", id.hex()));
        let entries = fs::read(&file)
            .ok()
            .and_then(|bytes| decode(&bytes))
            .unwrap_or_default();
        StatCache {
            file,
            entries,
            dirty: false,
            hashed: 0,
        }
    }

    /// The content digest of context file `rel` (at `host`, with `meta` from the walk):
    /// from the cache when its stamp matches, else read and hashed.
    pub fn digest(&mut self, rel: &str, host: &Path, meta: &Metadata) -> io::Result<Digest> {
        let stamp = Stamp::of(meta);
        if let Some((s, d)) = self.entries.get(rel) {
            if *s == stamp {
                return Ok(*d);
            }
        }
        let digest = hash_file(host)?;
        self.hashed += 1;
        self.entries.insert(rel.to_owned(), (stamp, digest));
        self.dirty = true;
        Ok(digest)
    }

    /// Writes the cache back if anything changed.
    pub fn save(&mut self, store: &Store) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(dir) = self.file.parent() {
            fs::create_dir_all(dir).map_err(|source| super::CacheError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        crate::store::layout::write_atomic(store.work_dir(), &self.file, &encode(&self.entries))?;
        self.dirty = false;
        Ok(())
    }
}

/// SHA-256 of a file's bytes.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_bytes(hasher.finalize().into()))
}

fn encode(entries: &Entries) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + entries.len() * (FIXED + 40));
    out.extend_from_slice(MAGIC);
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (path, (s, d)) in sorted {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&s.size.to_le_bytes());
        out.extend_from_slice(&s.mtime.0.to_le_bytes());
        out.extend_from_slice(&s.mtime.1.to_le_bytes());
        out.extend_from_slice(&s.ctime.0.to_le_bytes());
        out.extend_from_slice(&s.ctime.1.to_le_bytes());
        out.extend_from_slice(&s.ino.to_le_bytes());
        out.extend_from_slice(&s.dev.to_le_bytes());
        out.extend_from_slice(d.as_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Entries> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    // About 50 bytes of path per record: reserve once instead of rehashing as it grows.
    let mut out = Entries::with_capacity_and_hasher(rest.len() / (FIXED + 50), Default::default());
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        let path = std::str::from_utf8(take(&mut rest, len)?).ok()?.to_owned();
        let fixed = take(&mut rest, FIXED)?;
        let u64_at = |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(fixed[i..i + 4].try_into().unwrap_or_default());
        let stamp = Stamp {
            size: u64_at(0),
            mtime: (u64_at(8) as i64, u32_at(16)),
            ctime: (u64_at(20) as i64, u32_at(28)),
            ino: u64_at(32),
            dev: u64_at(40),
        };
        let digest: [u8; 32] = fixed[48..80].try_into().ok()?;
        out.insert(path, (stamp, Digest::from_bytes(digest)));
    }
    Some(out)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_reused_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        let file = ctx.join("a.txt");
        fs::write(&file, "one").unwrap();
        let meta = fs::symlink_metadata(&file).unwrap();
        let mut cache = StatCache::load(&store, &ctx);
        let d1 = cache.digest("a.txt", &file, &meta).unwrap();
        assert_eq!(d1, Digest::of(b"one"));
        assert_eq!(cache.hashed, 1);
        cache.save(&store).unwrap();

        let mut again = StatCache::load(&store, &ctx);
        assert_eq!(again.digest("a.txt", &file, &meta).unwrap(), d1);
        assert_eq!(again.hashed, 0, "unchanged: not read again");

        fs::write(&file, "two").unwrap();
        let meta = fs::symlink_metadata(&file).unwrap();
        assert_eq!(
            again.digest("a.txt", &file, &meta).unwrap(),
            Digest::of(b"two")
        );
        assert_eq!(again.hashed, 1);
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut entries = Entries::default();
        let stamp = Stamp {
            size: 3,
            mtime: (-5, 7),
            ctime: (1_700_000_000, 999_999_999),
            ino: 42,
            dev: 9,
        };
        entries.insert("dir/ü.txt".to_owned(), (stamp, Digest::of(b"x")));
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes), Some(entries));
        assert_eq!(decode(b"nope"), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "truncated");
    }
}
