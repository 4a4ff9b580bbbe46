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

mod fields;

use std::io::{self, Read};

use super::error::{Error, HeaderProblem, Result};
pub use fields::header_checksum_ok;
use fields::{invalid, numeric, parse_pax, parse_pax_time, trim_nul};

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

#[cfg(test)]
mod tests;
