//! The stat cache's file: a magic line, the moment the entries were recorded, then one
//! record per trusted entry (path length and path, then fixed-width fields), little
//! endian, sorted by path, each path once. Any other bytes, an older magic included,
//! read as no cache.

use super::entry::{Entry, Stamp, Time};
use super::table::Entries;
use crate::digest::Digest;

pub(super) const MAGIC: &[u8] = b"rbuild-stat-v2\n";
/// The recording moment after the magic line: seconds, nanoseconds.
pub(super) const MOMENT: usize = 8 + 4;
/// size, mtime s+ns, ctime s+ns, inode, device, digest.
const FIXED: usize = 8 + 8 + 4 + 8 + 4 + 8 + 8 + 32;

/// The file: magic, `moment`, then the trusted entries sorted by path.
pub(super) fn encode(moment: Time, entries: &Entries) -> Vec<u8> {
    let sorted = entries.sorted();
    let mut out = Vec::with_capacity(MAGIC.len() + MOMENT + sorted.len() * (4 + FIXED + 40));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&moment.0.to_le_bytes());
    out.extend_from_slice(&moment.1.to_le_bytes());
    let trusted = sorted.into_iter().filter(|(_, e)| e.trusted);
    for (
        path,
        Entry {
            stamp: s, digest, ..
        },
    ) in trusted
    {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
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
pub(super) fn decode(bytes: &[u8]) -> Option<(Time, Entries)> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let head = take(&mut rest, MOMENT)?;
    let moment = (
        i64::from_le_bytes(head[..8].try_into().ok()?),
        u32::from_le_bytes(head[8..].try_into().ok()?),
    );
    // About 50 bytes of path per record.
    let mut out = Entries::with_capacity(rest.len() / (4 + FIXED + 50), rest.len());
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        let path = std::str::from_utf8(take(&mut rest, len)?).ok()?;
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
        // Sorted, each path once, or not a file this cache wrote.
        out.push_loaded(path.as_bytes(), entry).then_some(())?;
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
