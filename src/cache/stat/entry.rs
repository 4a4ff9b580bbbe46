//! What the stat cache remembers of a file: its stamp (size, mtime, ctime, inode,
//! device), its digest, and whether the stamp is old enough to be trusted.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::Digest;

/// How much older than its recording moment an entry's mtime and ctime must be for the
/// entry to be trusted. File timestamps come from the kernel's coarse clock (updated
/// once a jiffy, 1-10 ms behind the clock the moment is read from) truncated to the
/// filesystem's granularity: 1 ns on ext4, xfs, btrfs and tmpfs, but 1 s on ext4 with
/// 128-byte inodes, HFS+ or some NFS servers, 2 s for FAT. A write after the moment
/// can repeat a stamp only if that stamp is within one granule and one tick of the
/// moment; 3 s covers the coarsest of these with room for a small clock difference
/// with a file server. Its cost: a file changed in the 3 s before a build is read once
/// more by the next build.
pub(super) const RACY_MARGIN: Duration = Duration::from_secs(3);

/// A point in time as file timestamps are: seconds and nanoseconds since the epoch.
pub(super) type Time = (i64, u32);

/// A fast hash for the paths of one's own context (no untrusted peer chooses them): the
/// map is probed once per context file on every build.
#[derive(Default)]
pub(super) struct PathHasher(u64);

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) size: u64,
    pub(super) mtime: Time,
    pub(super) ctime: Time,
    pub(super) ino: u64,
    pub(super) dev: u64,
}

impl Stamp {
    pub(super) fn of(meta: &impl MetadataExt) -> Self {
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
    pub(super) fn is_racy(&self, moment: Time) -> bool {
        let limit = earlier(moment, RACY_MARGIN);
        self.mtime >= limit || self.ctime >= limit
    }
}

/// A file's recorded digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) stamp: Stamp,
    pub(super) digest: Digest,
    /// Usable without reading the file while the stamp matches: recorded with a stamp
    /// safely older than its recording moment, or read by this process.
    pub(super) trusted: bool,
}

/// `t` as seconds and nanoseconds since the epoch (negative before it).
pub(super) fn time_of(t: SystemTime) -> Time {
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
pub(super) fn earlier(t: Time, d: Duration) -> Time {
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
