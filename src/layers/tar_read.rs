//! The tar reader of the applier: USTAR, GNU and PAX headers into one [`EntryHeader`]
//! per entry, content streamed.
//!
//! The `tar` crate decodes the 512-byte headers (octal and base-256 numbers, the USTAR
//! prefix); the meta entries around them are ours: PAX `x` records are parsed by their
//! length prefix, so binary values such as `security.capability` may contain newlines
//! (the `tar` crate splits records at newlines and rejects those); `g` global headers are
//! skipped; GNU `L`/`K` long names are honoured.
//!
//! Invariants: meta entries are bounded ([`MAX_META`]) and apply to the next entry
//! only, so a hostile layer cannot make us buffer more than a few MiB whatever it holds;
//! entry sizes fit an `i64` ([`MAX_SIZE`]); content is never buffered; after the end-of-archive block nothing
//! more is read here (the caller drains the stream for its digest).

use std::io::{self, Read};

use super::error::{Error, HeaderProblem, Result};

/// The largest PAX or GNU long-name payload accepted: Go's `maxSpecialFileSize`, what
/// Docker and containerd read (xattrs are at most 64 KiB each).
const MAX_META: u64 = 1 << 20;
/// The largest entry size: Go reads sizes as `int64` and refuses what does not fit.
const MAX_SIZE: u64 = i64::MAX as u64;
const BLOCK: u64 = 512;

/// One entry's header with every meta entry applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    /// Entry name as in the archive (PAX `path` or GNU long name when present).
    pub name: Vec<u8>,
    /// Link target (symlinks, hardlinks).
    pub link: Vec<u8>,
    /// The type flag (`0`, `5`, `2`, ...; NUL is returned as `0`).
    pub kind: u8,
    /// Permission bits incl. setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content length.
    pub size: u64,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    /// Device major and minor.
    pub dev: (u32, u32),
    /// `SCHILY.xattr.*` records, in archive order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads entries one by one from a decompressed layer stream.
pub(crate) struct TarReader<R> {
    inner: R,
    /// Content bytes of the current entry not yet read, then its padding.
    remaining: u64,
    padding: u64,
    done: bool,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// The underlying stream (positioned after the end-of-archive block when done).
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` at the end of the archive.
    ///
    /// Meta headers apply to the next entry only, as Go's `archive/tar` reads them
    /// (what Docker and containerd use): a later `x` header replaces the records of an
    /// earlier one, a later `L`/`K` the earlier long name; `g` records are read and
    /// dropped (containerd ignores global headers). Each meta entry is capped at
    /// [`MAX_META`], so one entry's metadata is bounded however many headers precede it.
    pub(crate) fn next_entry(&mut self) -> Result<Option<EntryHeader>> {
        self.skip_rest().map_err(read_err)?;
        let mut pending = Pending::default();
        loop {
            let mut block = [0u8; BLOCK as usize];
            if self.done || !read_block(&mut self.inner, &mut block).map_err(read_err)? {
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true; // end of archive (the second zero block is optional)
                return Ok(None);
            }
            if !header_checksum_ok(&block) {
                return Err(read_err(invalid("tar header checksum mismatch")));
            }
            let h = tar::Header::from_byte_slice(&block);
            let size = numeric(&block[124..136], h.entry_size())
                .ok_or_else(|| read_err(invalid("bad size field")))?;
            let kind = match block[156] {
                0 => b'0',
                k => k,
            };
            if matches!(kind, b'x' | b'g' | b'L' | b'K') {
                self.meta(h, kind, size, &mut pending)?;
                continue;
            }
            let e = entry_header(&block, h, kind, size, pending)?;
            if e.size > MAX_SIZE {
                return Err(Error::BadHeader {
                    entry: String::from_utf8_lossy(&e.name).into_owned(),
                    problem: HeaderProblem::SizeTooLarge { size: e.size },
                });
            }
            // Only regular files carry content; hardlinks, dirs etc. have none to apply
            // but may still declare a size that must be skipped.
            self.remaining = e.size;
            self.padding = padding(e.size);
            return Ok(Some(e));
        }
    }

    /// Reads a meta entry (`x`, `g`, `L`, `K`) into what applies to the next entry.
    fn meta(&mut self, h: &tar::Header, kind: u8, size: u64, pending: &mut Pending) -> Result<()> {
        if size > MAX_META {
            return Err(Error::BadHeader {
                entry: String::from_utf8_lossy(&h.path_bytes()).into_owned(),
                problem: HeaderProblem::MetaTooLarge {
                    kind: char::from(kind),
                    size,
                },
            });
        }
        let data = self.read_meta(size).map_err(read_err)?;
        match kind {
            b'x' => pending.pax = parse_pax(&data).map_err(read_err)?,
            b'L' => pending.long_name = Some(trim_nul(data)),
            b'K' => pending.long_link = Some(trim_nul(data)),
            _ => {} // global headers: nothing in them matters for layers
        }
        Ok(())
    }

    /// Reads from the current entry's content.
    pub(crate) fn read_content(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "layer ends inside an entry",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    /// The data of a meta entry (at most [`MAX_META`] bytes: checked by the caller).
    fn read_meta(&mut self, size: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(size).map_err(|_| invalid("tar meta entry too large"))?;
        let mut data = vec![0u8; len];
        self.inner.read_exact(&mut data)?;
        self.remaining = 0;
        self.padding = padding(size);
        self.skip_rest()?;
        Ok(data)
    }

    /// Skips what is left of the current entry and its padding.
    fn skip_rest(&mut self) -> io::Result<()> {
        // Both are bounded (sizes up to `MAX_SIZE`), but never trust a sum.
        let n = self.remaining.saturating_add(self.padding);
        if n > 0 {
            let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
            if copied != n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "layer ends inside an entry",
                ));
            }
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }
}

impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_content(buf)
    }
}

/// What meta headers said about the next entry.
#[derive(Default)]
struct Pending {
    pax: Vec<(Vec<u8>, Vec<u8>)>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

/// The header of a content entry, with the meta headers before it applied.
fn entry_header(
    block: &[u8; BLOCK as usize],
    h: &tar::Header,
    kind: u8,
    size: u64,
    pending: Pending,
) -> Result<EntryHeader> {
    let bad = |what| read_err(invalid(what));
    let mut e = EntryHeader {
        name: pending
            .long_name
            .unwrap_or_else(|| h.path_bytes().into_owned()),
        link: pending.long_link.unwrap_or_else(|| {
            h.link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default()
        }),
        kind,
        mode: numeric(&block[100..108], h.mode().map(u64::from))
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| bad("bad mode field"))?
            & 0o7777,
        uid: numeric(&block[108..116], h.uid()).ok_or_else(|| bad("bad uid field"))?,
        gid: numeric(&block[116..124], h.gid()).ok_or_else(|| bad("bad gid field"))?,
        size,
        mtime: (
            numeric(&block[136..148], h.mtime()).ok_or_else(|| bad("bad mtime field"))? as i64,
            0,
        ),
        dev: (
            h.device_major().ok().flatten().unwrap_or(0),
            h.device_minor().ok().flatten().unwrap_or(0),
        ),
        xattrs: Vec::new(),
    };
    for (k, v) in pending.pax {
        apply_pax(&mut e, k, v).map_err(read_err)?;
    }
    Ok(e)
}

/// The zero bytes after `size` bytes of data, up to the next block.
fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn read_err(source: io::Error) -> Error {
    Error::ReadLayer { source }
}

/// Reads one block; false at a clean EOF before it (an archive without end blocks).
fn read_block(r: &mut impl Read, block: &mut [u8; BLOCK as usize]) -> io::Result<bool> {
    let mut n = 0;
    while n < block.len() {
        match r.read(&mut block[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated tar header",
                ))
            }
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// Parses PAX records `"<len> <key>=<value>\n"` by their length prefix.
pub(crate) fn parse_pax(mut data: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !data.is_empty() && data[0] != 0 {
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("PAX record without length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("PAX record length is not a number"))?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(invalid("malformed PAX record"));
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| invalid("PAX record without `=`"))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

fn apply_pax(e: &mut EntryHeader, key: Vec<u8>, value: Vec<u8>) -> io::Result<()> {
    let num = |what| {
        std::str::from_utf8(&value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| invalid(what))
    };
    match key.as_slice() {
        b"path" => e.name = value,
        b"linkpath" => e.link = value,
        b"uid" => e.uid = num("bad PAX uid")?,
        b"gid" => e.gid = num("bad PAX gid")?,
        b"size" => e.size = num("bad PAX size")?,
        b"mtime" => e.mtime = parse_pax_time(&value).ok_or_else(|| invalid("bad PAX mtime"))?,
        k => {
            if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                e.xattrs.push((name.to_vec(), value));
            }
        }
    }
    Ok(())
}

/// A PAX time: `[-]seconds[.fraction]`, as (seconds, nanoseconds >= 0).
pub(crate) fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut sec: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().take(9).collect();
    let mut nsec: u32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    if secs.starts_with('-') && nsec > 0 {
        sec = sec.checked_sub(1)?;
        nsec = 1_000_000_000 - nsec;
    }
    Some((sec, nsec))
}

/// Whether a 512-byte block's header checksum field matches its bytes (the field itself
/// counted as spaces), which is what makes a block a tar header.
pub fn header_checksum_ok(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    let Ok(stored) = tar::Header::from_byte_slice(&block[..512]).cksum() else {
        return false;
    };
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    stored == sum
}

/// A numeric header field read as Go's `archive/tar` reads it (what Docker and
/// containerd accept): octal with leading and trailing spaces and NULs ignored, an
/// empty field being 0 (some writers leave uid, gid or mtime unset); a base-256 field
/// (high bit set) is left to the `tar` crate's reading, `parsed`.
fn numeric(field: &[u8], parsed: io::Result<u64>) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return parsed.ok();
    }
    let start = field.iter().position(|b| !matches!(b, b' ' | 0));
    let Some(start) = start else {
        return Some(0);
    };
    let end = field
        .iter()
        .rposition(|b| !matches!(b, b' ' | 0))
        .unwrap_or(start);
    let digits = std::str::from_utf8(&field[start..=end]).ok()?;
    u64::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::tar_write::pax_record;

    #[test]
    fn pax_records_with_binary_values() {
        let mut data = pax_record(b"SCHILY.xattr.security.capability", b"\x01\n\x00=\n");
        data.extend(pax_record(b"path", b"a/b"));
        let recs = parse_pax(&data).unwrap();
        assert_eq!(recs[0].1, b"\x01\n\x00=\n");
        assert_eq!(recs[1], (b"path".to_vec(), b"a/b".to_vec()));
        assert!(parse_pax(b"5 a=b\n").is_err());
        assert!(parse_pax(b"x a=b\n").is_err());
    }

    #[test]
    fn numeric_fields_read_as_go_reads_them() {
        let ok = || Ok(99);
        assert_eq!(numeric(b"0000644\0", ok()), Some(0o644));
        assert_eq!(numeric(b"  644 \0", ok()), Some(0o644));
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0", ok()), Some(0), "unset: 0");
        assert_eq!(numeric(b"        ", ok()), Some(0));
        assert_eq!(numeric(b"0009\0", ok()), None, "not octal");
        assert_eq!(numeric(b"\x80\0\0\x01", ok()), Some(99), "base-256");
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"7"), Some((7, 0)));
        assert_eq!(parse_pax_time(b"x"), None);
        assert_eq!(parse_pax_time(b"1.x"), None);
    }

    #[test]
    fn truncated_and_corrupt_archives_are_errors() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("f").unwrap();
        h.set_size(600);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &[7u8; 600][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut r = TarReader::new(&tar[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.name.as_slice(), e.size), (&b"f"[..], 600));
        assert!(r.next_entry().unwrap().is_none());
        let mut r = TarReader::new(&tar[..700]);
        r.next_entry().unwrap();
        assert!(r.next_entry().is_err());
        let mut bad = tar.clone();
        bad[0] = b'g';
        assert!(TarReader::new(&bad[..]).next_entry().is_err());
    }

    fn header(kind: u8, name: &str, size: usize) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_path(name).unwrap();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    /// A meta or file entry: header, data, padding.
    fn entry(kind: u8, name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = header(kind, name, data.len());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn first(tar: &[u8]) -> Result<Option<EntryHeader>> {
        TarReader::new(tar).next_entry()
    }

    /// As Go's archive/tar: a later `x` header replaces an earlier one's records
    /// (they do not pile up); `g` records are not applied to entries (containerd
    /// ignores global headers).
    #[test]
    fn consecutive_pax_headers_replace_each_other() {
        let tar = [
            entry(b'g', "global", &pax_record(b"SCHILY.xattr.user.g", b"1")),
            entry(
                b'x',
                "PaxHeaders/f",
                &pax_record(b"SCHILY.xattr.user.a", b"1"),
            ),
            entry(
                b'x',
                "PaxHeaders/f",
                &pax_record(b"SCHILY.xattr.user.b", b"2"),
            ),
            entry(b'0', "f", b"data"),
            entry(b'0', "g", b""),
        ]
        .concat();
        let mut r = TarReader::new(&tar[..]);
        let f = r.next_entry().unwrap().unwrap();
        assert_eq!(f.xattrs, [(b"user.b".to_vec(), b"2".to_vec())]);
        let g = r.next_entry().unwrap().unwrap();
        assert_eq!((g.name.as_slice(), g.xattrs.len()), (&b"g"[..], 0));
    }

    /// Go's `maxSpecialFileSize`: a PAX header or GNU long name over 1 MiB is refused
    /// before it is read, naming the header; exactly 1 MiB is accepted.
    #[test]
    fn meta_entries_over_one_mib_are_refused() {
        for kind in [b'x', b'g', b'L', b'K'] {
            let tar = header(kind, "meta-header", (1 << 20) + 1);
            let err = first(&tar).unwrap_err().to_string();
            assert!(
                err.contains("`meta-header`") && err.contains("1 MiB"),
                "{err}"
            );
        }
        let mut name = vec![b'n'; 1 << 20];
        name[0] = b'/';
        let tar = [
            entry(b'L', "././@LongLink", &name),
            entry(b'0', "short", b""),
        ]
        .concat();
        assert_eq!(first(&tar).unwrap().unwrap().name, name);
    }

    /// Sizes over `i64::MAX` (a PAX `size` record, a base-256 field) are refused as Go
    /// refuses them, not overflowed while skipping the entry.
    #[test]
    fn huge_sizes_are_errors() {
        let tar = [
            entry(
                b'x',
                "PaxHeaders/f",
                &pax_record(b"size", u64::MAX.to_string().as_bytes()),
            ),
            entry(b'0', "f", b""),
        ]
        .concat();
        let err = first(&tar).unwrap_err().to_string();
        assert!(err.contains("`f`") && err.contains("size"), "{err}");
        let mut base256 = entry(b'0', "big", b"");
        base256[124..136].copy_from_slice(&[0xff; 12]);
        let sum: u32 = base256[..512]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        base256[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let err = first(&base256).unwrap_err().to_string();
        assert!(err.contains("`big`") && err.contains("size"), "{err}");
        assert_eq!(parse_pax_time(b"-9223372036854775808.5"), None);
    }
}
