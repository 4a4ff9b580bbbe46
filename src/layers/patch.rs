//! A layer written by patching an earlier one: the one-file edit of a large COPY.
//!
//! When a COPY misses the cache because some of its files changed, the files that did
//! not are hard links to the snapshot its last build made (`executor::copy::Reuse`).
//! Such a file is the inode the last layer's entry of the same name was written from,
//! so that entry's bytes (headers and content) are the bytes this layer would write
//! for it. The patch writes the new tar with those entries copied from the last
//! layer's stream (no file opened, no stat, no xattr read), and the gzip writer copies
//! every chunk whose bytes equal one of the last layer's chunks instead of compressing
//! it (`pargz.rs`: a chunk's compressed bytes depend on its bytes only, and chunks are
//! cut where the entries say, so the chunks around a changed file stay the same).
//!
//! What the last layer gives is checked, not trusted:
//! - its chunks are read through the chunk index saved with its snapshot; each one
//!   must inflate on its own to exactly the length and CRC-32 the index gives, using
//!   exactly its compressed bytes, or the patch fails (and the caller writes the layer
//!   in full);
//! - an entry is copied only when it is the next entry of the last layer's stream, has
//!   the same name, is a regular file, and the new file is an inode the copy linked
//!   from the snapshot made from that layer;
//! - a compressed chunk is copied only when its uncompressed bytes are equal, byte for
//!   byte, to the new chunk's.
//!
//! The result is the blob a full write gives, byte for byte: both digests are computed
//! over the bytes written, as always (`blob.rs`).

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::{mpsc, Arc};

use flate2::{Decompress, FlushDecompress, Status};
use serde::{Deserialize, Serialize};

use super::pargz::{KnownChunks, FORMAT, HEADER};
use super::tar_write::Unchanged;
use crate::digest::Digest;

/// How a gzip layer blob was cut into chunks: what a later patch copies from. Saved
/// with the snapshot of the layer (`store::snapmeta`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerChunks {
    /// The blob the chunks are of.
    pub blob: Digest,
    /// The writer: the stream layout version and the program version (a compressor
    /// of another version may compress the same bytes differently).
    pub writer: String,
    /// The gzip level.
    pub level: u32,
    /// The mtime clamp the tar was written with.
    #[serde(default)]
    pub source_date_epoch: Option<i64>,
    /// Per chunk: uncompressed length, compressed length, CRC-32.
    pub chunks: Vec<(u64, u64, u32)>,
}

/// The writer identity [`LayerChunks::writer`] records.
pub(crate) fn writer_id() -> String {
    format!("pargz{FORMAT} rbuild {}", env!("CARGO_PKG_VERSION"))
}

/// The earlier layer a patch copies from.
#[derive(Debug)]
pub struct PatchBase<'a> {
    /// Its blob, open.
    pub blob: File,
    /// Its chunks.
    pub chunks: &'a LayerChunks,
    /// Inode numbers of the files the new tree shares with the snapshot made from it.
    pub linked: HashSet<u64>,
}

/// One chunk of the earlier layer: its bytes, and where its compressed bytes are.
struct OldChunk {
    data: Vec<u8>,
    offset: u64,
    clen: usize,
    crc: u32,
    /// The CRC-32 of the compressed bytes as inflated: they are read again to be
    /// copied, and must be the same.
    comp_crc: u32,
}

/// Chunks kept behind the one being read, for [`KnownChunks`] (the gzip writer sees
/// the stream later than the tar writer: a buffer and one header block behind).
const KEEP_BEHIND: usize = 3;
/// Chunks inflated ahead of the reader.
const AHEAD: usize = 1;
/// The furthest the reader looks past its offset: an entry's headers and PAX data
/// (read up to 1 MiB), or one piece of its content.
const LOOK_AHEAD: u64 = 4 << 20;

/// The earlier layer's uncompressed stream, read entry by entry.
pub(crate) struct OldStream {
    rx: mpsc::Receiver<io::Result<OldChunk>>,
    /// Chunks in order: `window[0]` starts at stream offset `window_start`.
    window: VecDeque<Rc<OldChunk>>,
    window_start: u64,
    /// The offset of the next entry.
    pos: u64,
    ended: bool,
    linked: HashSet<u64>,
    blob: Arc<File>,
}

/// Starts inflating the chunks of `base` on a thread of its own (which ends when the
/// stream does, or when the returned reader is dropped).
pub(crate) fn open(base: PatchBase<'_>) -> io::Result<OldStream> {
    let size = base.blob.metadata()?.len();
    let chunks = base.chunks.chunks.clone();
    let body: u64 = chunks.iter().map(|c| c.1).sum();
    if size != HEADER.len() as u64 + body + 10 {
        return Err(io::Error::other(
            "the chunk index does not match the blob's size",
        ));
    }
    let (tx, rx) = mpsc::sync_channel(AHEAD);
    let blob = Arc::new(base.blob);
    let reader = Arc::clone(&blob);
    std::thread::spawn(move || {
        let blob = reader;
        let mut off = HEADER.len() as u64;
        for (ulen, clen, crc) in chunks {
            let chunk = read_chunk(&blob, off, ulen, clen, crc);
            let failed = chunk.is_err();
            if tx.send(chunk).is_err() || failed {
                return;
            }
            off += clen;
        }
    });
    Ok(OldStream {
        rx,
        window: VecDeque::new(),
        window_start: 0,
        pos: 0,
        ended: false,
        linked: base.linked,
        blob,
    })
}

/// Reads and inflates one chunk, checking it against the index.
fn read_chunk(blob: &File, off: u64, ulen: u64, clen: u64, crc: u32) -> io::Result<OldChunk> {
    let bad = || {
        io::Error::other(format!(
            "the chunk at byte {off} of the earlier layer does not match its index"
        ))
    };
    let (ulen, clen) = (
        usize::try_from(ulen).map_err(|_| bad())?,
        usize::try_from(clen).map_err(|_| bad())?,
    );
    if ulen > (64 << 20) || clen > (64 << 20) {
        return Err(bad());
    }
    let mut comp = vec![0u8; clen];
    blob.read_exact_at(&mut comp, off)?;
    let mut data = Vec::with_capacity(ulen);
    let mut d = Decompress::new(false);
    // One more byte of room than expected: a chunk that inflates to more is caught.
    data.reserve_exact(ulen + 1);
    let status = d
        .decompress_vec(&comp, &mut data, FlushDecompress::Sync)
        .map_err(|_| bad())?;
    let whole = d.total_in() == clen as u64 && data.len() == ulen;
    if !whole || status == Status::StreamEnd || crc32fast::hash(&data) != crc {
        return Err(bad());
    }
    Ok(OldChunk {
        data,
        offset: off,
        clen,
        crc,
        comp_crc: crc32fast::hash(&comp),
    })
}

/// One entry of the earlier layer's stream.
struct OldEntry {
    name: Vec<u8>,
    typeflag: u8,
    /// Its whole length: header blocks, extension data, content, padding.
    len: u64,
}

impl OldStream {
    /// Makes the window hold the stream up to offset `end`; false at the stream's end,
    /// or when `end` is further ahead than an entry's headers can reach (a header
    /// claiming a huge extension never pulls the whole layer into memory).
    fn fill(&mut self, end: u64) -> io::Result<bool> {
        if end.saturating_sub(self.pos) > LOOK_AHEAD {
            return Ok(false);
        }
        while self.window_end() < end {
            if self.ended {
                return Ok(false);
            }
            match self.rx.recv() {
                Ok(chunk) => self.window.push_back(Rc::new(chunk?)),
                Err(_) => self.ended = true,
            }
        }
        Ok(true)
    }

    fn window_end(&self) -> u64 {
        self.window_start + self.window.iter().map(|c| c.data.len() as u64).sum::<u64>()
    }

    /// A copy of `len` bytes from stream offset `at` (at or after the window's start),
    /// or `None` when the stream (or the look-ahead) ends before them.
    fn bytes(&mut self, at: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
        if !self.fill(at + len)? {
            return Ok(None);
        }
        let end = at + len;
        let mut out = Vec::with_capacity(len as usize);
        let mut start = self.window_start;
        for chunk in &self.window {
            let chunk_end = start + chunk.data.len() as u64;
            let (from, to) = (at.max(start), end.min(chunk_end));
            if from < to {
                out.extend_from_slice(&chunk.data[(from - start) as usize..(to - start) as usize]);
            }
            start = chunk_end;
        }
        Ok(Some(out))
    }

    /// The entry at the current offset, if the stream has one there.
    fn peek(&mut self) -> io::Result<Option<OldEntry>> {
        let start = self.pos;
        let mut at = start;
        let mut long_name = None;
        loop {
            let Some(block) = self.bytes(at, 512)? else {
                return Ok(None);
            };
            let Ok(block) = <[u8; 512]>::try_from(block) else {
                return Ok(None);
            };
            let Some(h) = super::tar_chunks::parse_header(&block) else {
                return Ok(None);
            };
            at += 512;
            let padded = h.size.div_ceil(512) * 512;
            if h.typeflag == b'x' {
                let Some(data) = self.bytes(at, h.size.min(1 << 20))? else {
                    return Ok(None);
                };
                long_name = super::tar_chunks::pax_value(&data, b"path").or(long_name);
                at += padded;
                continue;
            }
            if matches!(h.typeflag, b'L' | b'K' | b'g') {
                return Ok(None); // not written by this writer: nothing is copied
            }
            let name = long_name.unwrap_or_else(|| field(&block[..100]).to_vec());
            let content = if matches!(h.typeflag, b'1'..=b'6') {
                0
            } else {
                padded
            };
            return Ok(Some(OldEntry {
                name,
                typeflag: h.typeflag,
                len: at + content - start,
            }));
        }
    }

    /// Moves past `len` bytes, dropping chunks no longer needed.
    fn advance(&mut self, len: u64) {
        self.pos += len;
        let mut end = self.window_start;
        let mut behind = 0;
        for chunk in &self.window {
            end += chunk.data.len() as u64;
            if end > self.pos {
                break;
            }
            behind += 1;
        }
        for _ in KEEP_BEHIND..behind {
            if let Some(chunk) = self.window.pop_front() {
                self.window_start += chunk.data.len() as u64;
            }
        }
    }

    /// The next piece of at most `left` bytes from the current offset (within one
    /// chunk), moved past: the caller writes it once no borrow is held, as the gzip
    /// writer it feeds looks at the window too.
    fn take(&mut self, left: u64) -> io::Result<(Rc<OldChunk>, std::ops::Range<usize>)> {
        if !self.fill(self.pos + 1)? {
            return Err(io::Error::other("the earlier layer ended inside an entry"));
        }
        let mut start = self.window_start;
        for chunk in &self.window {
            let end = start + chunk.data.len() as u64;
            if self.pos < end {
                let from = (self.pos - start) as usize;
                let to = (end.min(self.pos + left) - start) as usize;
                let chunk = Rc::clone(chunk);
                self.advance((to - from) as u64);
                return Ok((chunk, from..to));
            }
            start = end;
        }
        Err(io::Error::other("the earlier layer ended inside an entry"))
    }

    /// The length of the next entry when it is the regular file `name` and `ino` is
    /// linked from the snapshot of this layer.
    fn copyable(&mut self, name: &[u8], ino: u64) -> io::Result<Option<u64>> {
        if !self.linked.contains(&ino) {
            return Ok(None);
        }
        Ok(match self.peek()? {
            Some(e) if e.name == name && matches!(e.typeflag, b'0' | 0) => Some(e.len),
            _ => None,
        })
    }

    /// Passes over the next entry if it is named `name` (chunk by chunk: a large
    /// file's entry is never held whole).
    fn pass(&mut self, name: &[u8]) -> io::Result<()> {
        let Some(e) = self.peek()? else {
            return Ok(());
        };
        if e.name != name {
            return Ok(());
        }
        let mut left = e.len;
        while left > 0 {
            let (_, range) = self.take(left)?;
            left -= range.len() as u64;
        }
        Ok(())
    }
}

/// The [`KnownChunks`] view of an [`OldStream`] shared with the tar writer.
pub(crate) struct Known<'a>(pub(crate) &'a std::cell::RefCell<OldStream>);

impl KnownChunks for Known<'_> {
    fn compressed(&mut self, data: &[u8], crc: u32) -> Option<Vec<u8>> {
        let old = self.0.try_borrow().ok()?;
        let chunk = old.window.iter().find(|c| c.crc == crc && c.data == data)?;
        // Read again (the page cache has it): the window holds no compressed bytes.
        let mut comp = vec![0u8; chunk.clen];
        old.blob.read_exact_at(&mut comp, chunk.offset).ok()?;
        (crc32fast::hash(&comp) == chunk.comp_crc).then_some(comp)
    }
}

/// The [`Unchanged`] view of an [`OldStream`] shared with the gzip writer.
pub(crate) struct Entries<'a>(pub(crate) &'a std::cell::RefCell<OldStream>);

impl Unchanged for Entries<'_> {
    fn copy(&mut self, name: &[u8], ino: u64, out: &mut dyn Write) -> io::Result<bool> {
        let Some(mut left) = self.0.borrow_mut().copyable(name, ino)? else {
            return Ok(false);
        };
        while left > 0 {
            let (chunk, range) = self.0.borrow_mut().take(left)?;
            left -= range.len() as u64;
            out.write_all(&chunk.data[range])?;
        }
        Ok(true)
    }

    fn pass(&mut self, name: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().pass(name)
    }
}

/// A NUL-terminated header field.
fn field(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
