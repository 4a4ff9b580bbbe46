//! The tar reader of the applier: USTAR, GNU and PAX headers into one [`EntryHeader`]
//! per entry, content streamed.
//!
//! The `tar` crate decodes the 512-byte headers (octal and base-256 numbers, the USTAR
//! prefix); the meta entries around them are ours: PAX `x` records are parsed by their
//! length prefix, so binary values such as `security.capability` may contain newlines
//! (the `tar` crate splits records at newlines and rejects those); `g` global headers are
//! skipped; GNU `L`/`K` long names are honoured.
//!
//! Invariants: meta entries are bounded ([`MAX_META`]) so a hostile layer cannot make us
//! buffer gigabytes; content is never buffered; after the end-of-archive block nothing
//! more is read here (the caller drains the stream for its digest).

use std::io::{self, Read};

/// The largest PAX or GNU long-name payload accepted (xattrs are at most 64 KiB each).
const MAX_META: u64 = 16 << 20;
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
    pub(crate) fn next_entry(&mut self) -> io::Result<Option<EntryHeader>> {
        self.skip_rest()?;
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let (mut long_name, mut long_link) = (None, None);
        loop {
            let mut block = [0u8; BLOCK as usize];
            if self.done || !read_block(&mut self.inner, &mut block)? {
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true; // end of archive (the second zero block is optional)
                return Ok(None);
            }
            let h = tar::Header::from_byte_slice(&block);
            if !header_checksum_ok(&block) {
                return Err(invalid("tar header checksum mismatch"));
            }
            let size = numeric(&block[124..136], h.entry_size())
                .ok_or_else(|| invalid("bad size field"))?;
            let kind = match block[156] {
                0 => b'0',
                k => k,
            };
            match kind {
                b'x' | b'g' | b'L' | b'K' => {
                    let data = self.read_meta(size)?;
                    match kind {
                        b'x' => pax.extend(parse_pax(&data)?),
                        b'L' => long_name = Some(trim_nul(data)),
                        b'K' => long_link = Some(trim_nul(data)),
                        _ => {} // global headers: nothing in them matters for layers
                    }
                    continue;
                }
                _ => {}
            }
            let mut e = EntryHeader {
                name: long_name
                    .take()
                    .unwrap_or_else(|| h.path_bytes().into_owned()),
                link: long_link.take().unwrap_or_else(|| {
                    h.link_name_bytes()
                        .map(|l| l.into_owned())
                        .unwrap_or_default()
                }),
                kind,
                mode: numeric(&block[100..108], h.mode().map(u64::from))
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| invalid("bad mode field"))?
                    & 0o7777,
                uid: numeric(&block[108..116], h.uid()).ok_or_else(|| invalid("bad uid field"))?,
                gid: numeric(&block[116..124], h.gid()).ok_or_else(|| invalid("bad gid field"))?,
                size,
                mtime: (
                    numeric(&block[136..148], h.mtime())
                        .ok_or_else(|| invalid("bad mtime field"))? as i64,
                    0,
                ),
                dev: (
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                ),
                xattrs: Vec::new(),
            };
            for (k, v) in pax {
                apply_pax(&mut e, k, v)?;
            }
            // Only regular files carry content; hardlinks, dirs etc. have none to apply
            // but may still declare a size that must be skipped.
            self.remaining = e.size;
            self.padding = (BLOCK - e.size % BLOCK) % BLOCK;
            return Ok(Some(e));
        }
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

    fn read_meta(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(invalid("tar meta entry over 16 MiB"));
        }
        let mut data = vec![0u8; size as usize];
        self.inner.read_exact(&mut data)?;
        self.remaining = 0;
        self.padding = (BLOCK - size % BLOCK) % BLOCK;
        self.skip_rest()?;
        Ok(data)
    }

    /// Skips what is left of the current entry and its padding.
    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self.remaining + self.padding;
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
        sec -= 1;
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
}
