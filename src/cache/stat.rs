//! The stat cache: content digests of context files, reused while a file's
//! (size, mtime, ctime, inode, device) stay the same, so a rebuild with no change does
//! not read the context again.
//!
//! One file per context directory, `<store>/cache/stat/<sha256 of the path>.bin`, in a
//! small binary format (a magic line, the moment the entries were recorded, then
//! fixed-width records after each path), read once at the start of a build and written
//! back (atomically) only when it changed. `ctime` is part of the check: it changes
//! with every write, chmod or rename, even when a tool restores the mtime.
//!
//! Racily clean entries (git's term, see `is_racy_timestamp` in git's `read-cache.c`):
//! a file's timestamps come from a clock that ticks coarsely (a jiffy, or the
//! filesystem's granularity), so a file rewritten with the same size in the tick in
//! which a build read it keeps its whole stamp. An entry is therefore trusted only when
//! its mtime and ctime are older than the moment it was recorded by more than
//! [`RACY_MARGIN`]; any other entry is read again by the next build that needs it, and
//! trusted once a build records it with a stamp that old.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use super::error::Result;
use crate::digest::Digest;
use crate::store::Store;

const MAGIC: &[u8] = b"rbuild-stat-v2\n";
/// The recording moment after the magic line: seconds, nanoseconds.
const MOMENT: usize = 8 + 4;
/// size, mtime s+ns, ctime s+ns, inode, device, digest.
const FIXED: usize = 8 + 8 + 4 + 8 + 4 + 8 + 8 + 32;

/// How much older than its recording moment an entry's mtime and ctime must be for the
/// entry to be trusted. File timestamps come from the kernel's coarse clock (updated
/// once a jiffy, 1-10 ms behind the clock the moment is read from) truncated to the
/// filesystem's granularity: 1 ns on ext4, xfs, btrfs and tmpfs, but 1 s on ext4 with
/// 128-byte inodes, HFS+ or some NFS servers, 2 s for FAT. A write after the moment
/// can repeat a stamp only if that stamp is within one granule and one tick of the
/// moment; 3 s covers the coarsest of these with room for a small clock difference
/// with a file server. Its cost: a file changed in the 3 s before a build is read once
/// more by the next build.
const RACY_MARGIN: Duration = Duration::from_secs(3);

/// A point in time as file timestamps are: seconds and nanoseconds since the epoch.
type Time = (i64, u32);

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

type Entries = HashMap<String, Entry, std::hash::BuildHasherDefault<PathHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: Time,
    ctime: Time,
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

    /// Whether a write after `moment` could leave this stamp unchanged: its mtime or
    /// ctime is not older than `moment` by [`RACY_MARGIN`].
    fn is_racy(&self, moment: Time) -> bool {
        let limit = earlier(moment, RACY_MARGIN);
        self.mtime >= limit || self.ctime >= limit
    }
}

/// A file's recorded digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    stamp: Stamp,
    digest: Digest,
    /// Usable without reading the file while the stamp matches: recorded with a stamp
    /// safely older than its recording moment, or read by this process.
    trusted: bool,
}

/// Digests of the files of one context directory.
#[derive(Debug)]
pub struct StatCache {
    file: PathBuf,
    entries: Entries,
    /// When this process started using the cache, before it read any file: what
    /// [`StatCache::save`] records.
    moment: Time,
    dirty: bool,
    /// Files read (hashed) in this build, for the report and the tests.
    pub hashed: usize,
}

impl StatCache {
    /// The stat cache of `context` in `store` (empty when missing, unreadable or of an
    /// older format).
    pub fn load(store: &Store, context: &Path) -> Self {
        Self::load_at(store, context, time_of(SystemTime::now()))
    }

    /// [`StatCache::load`] at `moment` (now, but for the tests).
    fn load_at(store: &Store, context: &Path, moment: Time) -> Self {
        let id = Digest::of(context.as_os_str().as_encoded_bytes());
        let file = store
            .cache_dir()
            .join("stat")
            .join(format!("{}.bin", id.hex()));
        let entries = fs::read(&file)
            .ok()
            .and_then(|bytes| decode(&bytes))
            .map(|(_, entries)| entries)
            .unwrap_or_default();
        StatCache {
            file,
            entries,
            moment,
            dirty: false,
            hashed: 0,
        }
    }

    /// The content digest of context file `rel` (at `host`, with `meta` from the walk):
    /// from the cache when its entry is trusted and its stamp matches, else read and
    /// hashed.
    pub fn digest(&mut self, rel: &str, host: &Path, meta: &Metadata) -> io::Result<Digest> {
        self.digest_stamped(rel, Stamp::of(meta), || File::open(host))
    }

    /// Like [`StatCache::digest`], reading the file (when it must be read) through
    /// `open`: the executor opens context files below the context directory and only
    /// if they are still the files the walk saw.
    pub fn digest_opened(
        &mut self,
        rel: &str,
        meta: &Metadata,
        open: impl FnOnce() -> io::Result<File>,
    ) -> io::Result<Digest> {
        self.digest_stamped(rel, Stamp::of(meta), open)
    }

    fn digest_stamped(
        &mut self,
        rel: &str,
        stamp: Stamp,
        open: impl FnOnce() -> io::Result<File>,
    ) -> io::Result<Digest> {
        if let Some(entry) = self.entries.get(rel) {
            if entry.trusted && entry.stamp == stamp {
                return Ok(entry.digest);
            }
        }
        let digest = hash_reader(open()?)?;
        self.hashed += 1;
        let entry = Entry {
            stamp,
            digest,
            trusted: true,
        };
        self.entries.insert(rel.to_owned(), entry);
        self.dirty = true;
        Ok(digest)
    }

    /// Writes the cache back if anything changed, recorded at the moment this process
    /// started using it. Racy entries of the file it loaded that were not read again
    /// are left out: under the new moment they could look trusted.
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
        let bytes = encode(self.moment, &self.entries);
        crate::store::layout::write_atomic(store.work_dir(), &self.file, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

/// SHA-256 of a file's bytes.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    hash_reader(File::open(path)?)
}

/// SHA-256 of what `file` reads.
pub fn hash_reader(mut file: File) -> io::Result<Digest> {
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

/// `t` as seconds and nanoseconds since the epoch (negative before it).
fn time_of(t: SystemTime) -> Time {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (secs, nanos) = (d.as_secs() as i64, d.subsec_nanos());
            match nanos {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// `t` minus `d`.
fn earlier(t: Time, d: Duration) -> Time {
    let (mut secs, mut nanos) = (
        t.0.saturating_sub(d.as_secs() as i64),
        i64::from(t.1) - i64::from(d.subsec_nanos()),
    );
    if nanos < 0 {
        secs = secs.saturating_sub(1);
        nanos += 1_000_000_000;
    }
    (secs, nanos as u32)
}

/// The file: magic, `moment`, then the trusted entries sorted by path.
fn encode(moment: Time, entries: &Entries) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + MOMENT + entries.len() * (FIXED + 40));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&moment.0.to_le_bytes());
    out.extend_from_slice(&moment.1.to_le_bytes());
    let mut sorted: Vec<_> = entries.iter().filter(|(_, e)| e.trusted).collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (
        path,
        Entry {
            stamp: s, digest, ..
        },
    ) in sorted
    {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&s.size.to_le_bytes());
        out.extend_from_slice(&s.mtime.0.to_le_bytes());
        out.extend_from_slice(&s.mtime.1.to_le_bytes());
        out.extend_from_slice(&s.ctime.0.to_le_bytes());
        out.extend_from_slice(&s.ctime.1.to_le_bytes());
        out.extend_from_slice(&s.ino.to_le_bytes());
        out.extend_from_slice(&s.dev.to_le_bytes());
        out.extend_from_slice(digest.as_bytes());
    }
    out
}

/// The recording moment and the entries, each trusted unless racy at that moment.
fn decode(bytes: &[u8]) -> Option<(Time, Entries)> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let head = take(&mut rest, MOMENT)?;
    let moment = (
        i64::from_le_bytes(head[..8].try_into().ok()?),
        u32::from_le_bytes(head[8..].try_into().ok()?),
    );
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
        let entry = Entry {
            stamp,
            digest: Digest::from_bytes(digest),
            trusted: !stamp.is_racy(moment),
        };
        out.insert(path, entry);
    }
    Some((moment, out))
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

    /// A store and a context directory holding `a.txt` = `content`.
    fn setup(content: &str) -> (tempfile::TempDir, Store, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        let file = ctx.join("a.txt");
        fs::write(&file, content).unwrap();
        (dir, store, ctx, file)
    }

    const T0: Time = (1_700_000_000, 250_000_000);

    fn at(t: Time, secs: i64) -> Time {
        (t.0 + secs, t.1)
    }

    /// A stamp of a 3-byte file with these times.
    fn stamp(mtime: Time, ctime: Time) -> Stamp {
        Stamp {
            size: 3,
            mtime,
            ctime,
            ino: 42,
            dev: 9,
        }
    }

    #[test]
    fn digests_are_reused_until_the_file_changes() {
        let (_dir, store, ctx, file) = setup("one");
        let meta = fs::symlink_metadata(&file).unwrap();
        let written = (meta.ctime(), meta.ctime_nsec() as u32);
        // Recorded by a build an hour after the file was written.
        let mut cache = StatCache::load_at(&store, &ctx, at(written, 3600));
        let d1 = cache.digest("a.txt", &file, &meta).unwrap();
        assert_eq!(d1, Digest::of(b"one"));
        assert_eq!(cache.hashed, 1);
        cache.save(&store).unwrap();

        let mut again = StatCache::load_at(&store, &ctx, at(written, 7200));
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
    fn a_file_rewritten_in_the_tick_it_was_read_is_hashed_again() {
        // A file written while the build that reads it runs: on a filesystem with coarse
        // timestamps, a rewrite with the same size in the same tick keeps its stamp. The
        // walk's metadata from before the rewrite stands for that stamp here (ctime
        // cannot be set back); the mtime is restored exactly, nanoseconds included.
        let (_dir, store, ctx, file) = setup("");
        let mut cache = StatCache::load(&store, &ctx);
        fs::write(&file, "one").unwrap();
        let meta = fs::symlink_metadata(&file).unwrap();
        assert_eq!(
            cache.digest("a.txt", &file, &meta).unwrap(),
            Digest::of(b"one")
        );
        cache.save(&store).unwrap();

        fs::write(&file, "two").unwrap();
        let times = fs::FileTimes::new().set_modified(meta.modified().unwrap());
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_times(times)
            .unwrap();
        let now = fs::symlink_metadata(&file).unwrap();
        assert_eq!(now.modified().unwrap(), meta.modified().unwrap());
        let mut next = StatCache::load(&store, &ctx);
        assert_eq!(
            next.digest("a.txt", &file, &meta).unwrap(),
            Digest::of(b"two"),
            "racily clean: read again"
        );
        assert_eq!(next.hashed, 1);
    }

    #[test]
    fn mtime_or_ctime_near_the_moment_makes_an_entry_racy() {
        let old = at(T0, -3600);
        assert!(!stamp(old, old).is_racy(T0));
        assert!(stamp(T0, old).is_racy(T0), "mtime in the same second");
        assert!(stamp(old, T0).is_racy(T0), "ctime in the same second");
        assert!(stamp(at(T0, 60), old).is_racy(T0), "mtime in the future");
        // The margin, to the nanosecond.
        let edge = earlier(T0, RACY_MARGIN);
        assert_eq!(edge, (T0.0 - 3, T0.1));
        assert!(stamp(edge, old).is_racy(T0));
        assert!(!stamp(earlier(edge, Duration::from_nanos(1)), old).is_racy(T0));
        assert!(stamp(old, edge).is_racy(T0));
        assert_eq!(
            earlier((5, 100), Duration::from_nanos(200)),
            (4, 999_999_900)
        );
    }

    #[test]
    fn a_racy_entry_is_read_again_then_trusted_once_old_enough() {
        let (_dir, store, ctx, file) = setup("one");
        // mtime set (touch -d) into the second the entry is recorded in; ctime old.
        let s = stamp(T0, at(T0, -3600));
        let mut first = StatCache::load_at(&store, &ctx, at(T0, 0));
        assert_eq!(
            first
                .digest_stamped("a.txt", s, || File::open(&file))
                .unwrap(),
            Digest::of(b"one")
        );
        first.save(&store).unwrap();

        // Rewritten with the same size and the same stamp.
        fs::write(&file, "two").unwrap();
        let mut second = StatCache::load_at(&store, &ctx, at(T0, 60));
        assert_eq!(
            second
                .digest_stamped("a.txt", s, || File::open(&file))
                .unwrap(),
            Digest::of(b"two")
        );
        assert_eq!(second.hashed, 1, "racy: read again");
        second.save(&store).unwrap();

        // Recorded a minute after its stamp: trusted, not read.
        let mut third = StatCache::load_at(&store, &ctx, at(T0, 120));
        assert_eq!(
            third
                .digest_stamped("a.txt", s, || File::open(&file))
                .unwrap(),
            Digest::of(b"two")
        );
        assert_eq!(third.hashed, 0, "old enough: trusted");
    }

    #[test]
    fn racy_entries_not_read_again_are_not_saved_under_a_later_moment() {
        let (_dir, store, ctx, file) = setup("one");
        let b = ctx.join("b.txt");
        fs::write(&b, "bbb").unwrap();
        let racy = stamp(T0, T0);
        let mut first = StatCache::load_at(&store, &ctx, T0);
        first
            .digest_stamped("a.txt", racy, || File::open(&file))
            .unwrap();
        first
            .digest_stamped("b.txt", stamp(T0, T0), || File::open(&b))
            .unwrap();
        first.save(&store).unwrap();

        // A later build that needs only b.txt (changed) saves the cache again...
        let mut second = StatCache::load_at(&store, &ctx, at(T0, 60));
        second
            .digest_stamped("b.txt", stamp(at(T0, 30), at(T0, 30)), || File::open(&b))
            .unwrap();
        second.save(&store).unwrap();

        // ...without a.txt's racy entry, which its moment would make look trusted.
        fs::write(&file, "two").unwrap();
        let mut third = StatCache::load_at(&store, &ctx, at(T0, 120));
        assert_eq!(
            third
                .digest_stamped("a.txt", racy, || File::open(&file))
                .unwrap(),
            Digest::of(b"two")
        );
        assert_eq!(third.hashed, 1);
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut entries = Entries::default();
        let entry = |stamp, trusted| Entry {
            stamp,
            digest: Digest::of(b"x"),
            trusted,
        };
        let old = stamp((-5, 7), (1_600_000_000, 999_999_999));
        entries.insert("dir/ü.txt".to_owned(), entry(old, true));
        entries.insert("racy".to_owned(), entry(stamp(T0, T0), true));
        entries.insert("untrusted".to_owned(), entry(old, false));
        let bytes = encode(T0, &entries);
        let (moment, back) = decode(&bytes).unwrap();
        assert_eq!(moment, T0);
        assert_eq!(back.len(), 2, "an untrusted entry is not written");
        assert_eq!(back["dir/ü.txt"], entries["dir/ü.txt"]);
        assert_eq!(
            back["racy"],
            entry(stamp(T0, T0), false),
            "racy at its moment"
        );
        assert_eq!(decode(b"nope"), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "truncated");
        assert_eq!(decode(&bytes[..MAGIC.len() + 4]), None, "no moment");
        let v1 = [
            b"rbuild-stat-v1\n".as_slice(),
            &bytes[MAGIC.len() + MOMENT..],
        ]
        .concat();
        assert_eq!(decode(&v1), None, "an older format is a miss");
    }
}
