//! Where a layer's gzip stream is cut into independently compressed chunks: at tar
//! entry boundaries chosen by the entries themselves, so that a change to one file
//! changes the chunk holding it and no other (the chunks before and after it start
//! and end at the same entries, hold the same bytes and compress to the same bytes).
//!
//! The cut rule reads only the uncompressed stream, so a layer written from a tree and
//! the same tar compressed later are cut alike:
//! - the stream is parsed as tar: 512-byte header blocks (checksum checked), their
//!   contents (a header-only type has none, as Go's reader has it), PAX `x` records
//!   (their `size` overrides the next header's); extension headers (`x`, GNU `L`/`K`)
//!   belong to the entry that follows them, so a logical entry starts at its first
//!   header block;
//! - before a logical entry whose first header block hashes to `h`, the stream is cut
//!   when the chunk so far holds at least [`MIN_CHUNK`] bytes and
//!   `h % TARGET_CHUNK < length of the entry before`: a cut follows an entry with a
//!   probability proportional to its length, so chunks average about
//!   `MIN_CHUNK + TARGET_CHUNK` bytes whatever the file sizes, and the decision
//!   depends on two neighbouring entries only;
//! - a chunk never exceeds [`MAX_CHUNK`] (a large file is cut inside its content);
//! - a block that is not a valid header (the end-of-archive zeros, or a stream that is
//!   not tar) ends the parsing: from there on the stream is cut every
//!   [`TARGET_CHUNK`] bytes (the first cut [`TARGET_CHUNK`] past that block, so the
//!   end of an archive stays in its last chunk).
//!
//! Every cut is at a multiple of 512 bytes from the start in a well-formed tar.

/// The least a chunk holds before it may be cut at an entry boundary.
pub(crate) const MIN_CHUNK: u64 = 128 << 10;
/// The mean distance between entry-boundary cuts beyond [`MIN_CHUNK`].
pub(crate) const TARGET_CHUNK: u64 = 512 << 10;
/// The most a chunk holds in a tar stream.
pub(crate) const MAX_CHUNK: u64 = 2 << 20;
/// PAX data longer than this is not searched for a `size` record (no writer of ours
/// makes one; the cut rule stays defined).
const PAX_MAX: u64 = 64 << 10;
const BLOCK: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a header block.
    Header,
    /// Passing `left` bytes of content and padding.
    Skip(u64),
    /// Collecting `left` bytes of PAX data (padding included) of `len` data bytes.
    Pax { left: u64, len: u64 },
    /// Not a tar (any more): fixed cuts.
    Raw,
}

/// The cut rule's state over one stream.
#[derive(Debug)]
pub(crate) struct Chunker {
    pos: u64,
    chunk_start: u64,
    state: State,
    hdr: [u8; BLOCK],
    hdr_len: usize,
    /// Where the current logical entry started, and the length of the one before.
    entry_start: u64,
    prev_len: u64,
    /// An extension header was read and its entry's main header is still to come.
    in_ext: bool,
    pax: Vec<u8>,
    pax_size: Option<u64>,
    /// Where the stream stopped being tar.
    raw_from: u64,
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker {
            pos: 0,
            chunk_start: 0,
            state: State::Header,
            hdr: [0; BLOCK],
            hdr_len: 0,
            entry_start: 0,
            prev_len: 0,
            in_ext: false,
            pax: Vec::new(),
            pax_size: None,
            raw_from: 0,
        }
    }
}

impl Chunker {
    /// Reads the start of `buf`: how many bytes it took, and the stream offset of a cut
    /// when one was decided (it stops there; the cut is at or before the bytes taken,
    /// at most one header block back). Takes at least one byte of a non-empty `buf`
    /// unless it returns a cut.
    pub(crate) fn step(&mut self, buf: &[u8]) -> (usize, Option<u64>) {
        let mut i = 0;
        while i < buf.len() {
            let mut end = self.chunk_start + MAX_CHUNK;
            if self.state == State::Raw {
                end = end.min(self.chunk_start.max(self.raw_from) + TARGET_CHUNK);
            }
            let room = end.saturating_sub(self.pos);
            if room == 0 {
                self.chunk_start = self.pos;
                return (i, Some(self.pos));
            }
            let rest = &buf[i..];
            let want = room.min(rest.len() as u64) as usize;
            let (took, cut) = self.advance(&rest[..want]);
            i += took;
            self.pos += took as u64;
            if let Some(at) = cut {
                return (i, Some(at));
            }
        }
        (i, None)
    }

    /// Takes bytes from `part` (which fits in the chunk) in the current state.
    fn advance(&mut self, part: &[u8]) -> (usize, Option<u64>) {
        match self.state {
            State::Raw => (part.len(), None),
            State::Skip(left) => {
                let n = left.min(part.len() as u64);
                self.state = if n == left {
                    State::Header
                } else {
                    State::Skip(left - n)
                };
                (n as usize, None)
            }
            State::Pax { left, len } => {
                let n = left.min(part.len() as u64) as usize;
                if len <= PAX_MAX {
                    let data_left = len.saturating_sub(self.pax.len() as u64) as usize;
                    self.pax.extend_from_slice(&part[..n.min(data_left)]);
                }
                if n as u64 == left {
                    self.pax_size = pax_size(&self.pax);
                    self.pax.clear();
                    self.state = State::Header;
                } else {
                    self.state = State::Pax {
                        left: left - n as u64,
                        len,
                    };
                }
                (n, None)
            }
            State::Header => {
                let n = (BLOCK - self.hdr_len).min(part.len());
                self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&part[..n]);
                self.hdr_len += n;
                if self.hdr_len < BLOCK {
                    return (n, None);
                }
                self.hdr_len = 0;
                // The block ends `n` bytes into `part`: it started at pos + n - 512.
                let start = (self.pos + n as u64).saturating_sub(BLOCK as u64);
                (n, self.header(start))
            }
        }
    }

    /// A complete header block starting at `start`: the next state, and a cut before it
    /// when it starts an entry and the rule says so.
    fn header(&mut self, start: u64) -> Option<u64> {
        let Some(h) = parse_header(&self.hdr) else {
            self.state = State::Raw;
            self.raw_from = start;
            return None;
        };
        let cut = (!self.in_ext).then(|| self.entry_boundary(start)).flatten();
        let padded = |n: u64| n.div_ceil(BLOCK as u64) * BLOCK as u64;
        match h.typeflag {
            b'x' | b'L' | b'K' => {
                self.in_ext = true;
                self.state = if h.typeflag == b'x' {
                    State::Pax {
                        left: padded(h.size),
                        len: h.size,
                    }
                } else {
                    State::Skip(padded(h.size))
                };
            }
            flag => {
                self.in_ext = false;
                let size = self.pax_size.take().unwrap_or(h.size);
                let content = if matches!(flag, b'1'..=b'6') { 0 } else { size };
                self.state = match padded(content) {
                    0 => State::Header,
                    n => State::Skip(n),
                };
            }
        }
        cut
    }

    /// A logical entry starts at `start`, its first header block in `self.hdr`.
    fn entry_boundary(&mut self, start: u64) -> Option<u64> {
        // The entry that ends here.
        self.prev_len = start - self.entry_start;
        self.entry_start = start;
        let chunk = start.checked_sub(self.chunk_start)?;
        let cut = chunk >= MIN_CHUNK && cut_hash(&self.hdr) % TARGET_CHUNK < self.prev_len;
        if cut {
            self.chunk_start = start;
        }
        cut.then_some(start)
    }
}

/// The fields of a valid header block the cut rule reads.
pub(crate) struct Header {
    pub(crate) typeflag: u8,
    pub(crate) size: u64,
}

/// A header block whose checksum holds (all zeros is not a header).
pub(crate) fn parse_header(block: &[u8; BLOCK]) -> Option<Header> {
    let stored = octal(&block[148..156])?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u64
            }
        })
        .sum();
    if sum != stored || block.iter().all(|&b| b == 0) {
        return None;
    }
    let size = numeric(&block[124..136])?;
    Some(Header {
        typeflag: block[156],
        size,
    })
}

/// A numeric field: octal (spaces and NULs around it), or base-256 when the first
/// byte's high bit is set.
fn numeric(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(&b) if b & 0x80 != 0 => {
            let mut v: u64 = u64::from(b & 0x7f);
            for &b in &field[1..] {
                v = v.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            Some(v)
        }
        _ => octal(field),
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    let digits = field
        .iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .take_while(|&&b| (b'0'..=b'7').contains(&b));
    let mut v: u64 = 0;
    let mut any = false;
    for &d in digits {
        v = v.checked_mul(8)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

/// The `size` record of PAX data (`"<len> size=<n>\n"`), if any.
fn pax_size(data: &[u8]) -> Option<u64> {
    let v = pax_value(data, b"size")?;
    std::str::from_utf8(&v).ok()?.parse().ok()
}

/// The value of the last `key` record of PAX data, if the records parse up to there.
pub(crate) fn pax_value(data: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let mut rest = data;
    let mut value = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let record = rest.get(space + 1..len)?;
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(v) = record.strip_prefix(key).and_then(|r| r.strip_prefix(b"=")) {
            value = Some(v.to_vec());
        }
        rest = &rest[len..];
    }
    value
}

/// The hash a cut decision reads: the name and prefix fields of an entry's first
/// header block (FNV-1a, then a 64-bit finalizer). Fixed forever: it decides the bytes
/// of every gzip layer.
fn cut_hash(block: &[u8; BLOCK]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in block[..100].iter().chain(&block[345..500]) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Every cut of `stream`, in order (the unit tests' and the patcher's view).
#[cfg(test)]
pub(crate) fn cuts(stream: &[u8], piece: usize) -> Vec<u64> {
    let mut c = Chunker::default();
    let mut out = Vec::new();
    for mut part in stream.chunks(piece.max(1)) {
        while !part.is_empty() {
            let (n, cut) = c.step(part);
            out.extend(cut);
            part = &part[n..];
        }
    }
    out
}

#[cfg(test)]
#[path = "tar_chunks_tests.rs"]
mod tests;
