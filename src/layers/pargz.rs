//! A parallel, deterministic gzip writer (pigz's block design on `flate2` + zlib-rs).
//!
//! The input is cut into chunks where `tar_chunks.rs` says (at tar entry boundaries the
//! entries choose, at most 2 MiB apart). Each chunk is compressed as raw deflate on its
//! own, with no dictionary from the chunk before, as `pigz --independent` does: 0.3 %
//! more bytes than primed 1 MiB blocks for a 68 MB tree of Python and Perl libraries
//! (17.39 MB against 17.34 MB). A chunk ends with a sync flush, which byte-aligns it;
//! the chunks are concatenated in order, an empty final block (`03 00`) closes the
//! deflate stream, and the CRC-32 (combined from per-chunk CRCs) and length close the
//! single gzip member. A chunk's compressed bytes are a function of its bytes and the
//! level only, so a chunk an earlier layer already holds can be copied from it
//! ([`KnownChunks`]).
//!
//! Invariants:
//! - the output depends only on the input bytes and the level: cuts are decided by the
//!   bytes, never by write boundaries or timing, and a chunk compresses the same way on
//!   a worker, inline or copied from a layer written by this format ([`FORMAT`]), so
//!   neither the thread count nor a copied chunk changes the bytes;
//! - the gzip header is fixed (no name, mtime 0, XFL 0, OS 255 "unknown", as Go writes);
//! - memory is bounded: at most `2 * threads` chunks in flight, plus their outputs;
//! - a layer of one chunk is compressed inline and starts no thread;
//! - a chunk whose bytes look random (order-0 entropy above [`STORE_ENTROPY`] bits per
//!   byte: compressed or encrypted data, which deflate cannot shrink by more than about
//!   half a percent) is written as stored deflate blocks instead of being squeezed:
//!   the same valid gzip stream at the cost of a byte histogram, not of a level-6
//!   search that finds nothing (`gzip -6` spends ~17 s per GiB of random data here).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress};

use super::tar_chunks::{Chunker, MAX_CHUNK};

/// The version of the stream layout (cut rule, independent chunks, stored random
/// chunks): a chunk index of another version is not a source of [`KnownChunks`].
pub(crate) const FORMAT: u32 = 1;
/// gzip header: magic, CM=deflate, no flags, mtime 0, XFL 0, OS 255.
pub(crate) const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// An empty fixed-Huffman block with BFINAL set: ends the deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];
/// Bits per byte above which a chunk is stored rather than compressed.
const STORE_ENTROPY: f64 = 7.95;
/// The largest stored deflate block (RFC 1951: LEN is 16 bits).
const STORED_MAX: usize = 65_535;

/// One chunk of a written stream: its uncompressed and compressed lengths and the
/// CRC-32 of its uncompressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkInfo {
    pub(crate) ulen: u64,
    pub(crate) clen: u64,
    pub(crate) crc: u32,
}

/// Chunks an earlier layer of the same [`FORMAT`] and level holds: one whose bytes
/// equal a new chunk's gives its compressed bytes instead of a compression.
pub(crate) trait KnownChunks {
    /// The compressed bytes of the known chunk whose bytes are exactly `data` (CRC-32
    /// `crc`), if there is one.
    fn compressed(&mut self, data: &[u8], crc: u32) -> Option<Vec<u8>>;
}

/// A compressed chunk and what the writer needs back from the worker.
struct Done {
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    ulen: u64,
    input: Vec<u8>,
}

struct Job {
    input: Vec<u8>,
    reply: mpsc::SyncSender<io::Result<Done>>,
}

struct Pool {
    jobs: Option<mpsc::SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

/// The gzip writer; call [`ParGzWriter::finish_indexed`] to complete the stream.
pub(crate) struct ParGzWriter<'k, W: Write> {
    /// `None` only after `finish`.
    sink: Option<W>,
    header_done: bool,
    level: u32,
    threads: usize,
    chunker: Chunker,
    block: Vec<u8>,
    pending: VecDeque<mpsc::Receiver<io::Result<Done>>>,
    pool: Option<Pool>,
    inline: Option<Compress>,
    free: Vec<Vec<u8>>,
    crc: crc32fast::Hasher,
    len: u64,
    started: bool,
    chunks: Vec<ChunkInfo>,
    known: Option<&'k mut dyn KnownChunks>,
    copied: usize,
    /// The stream offset of `block`'s first byte.
    block_start: u64,
}

impl<'k, W: Write> ParGzWriter<'k, W> {
    /// A writer at `level` (0-9) using up to `threads` worker threads.
    pub(crate) fn new(sink: W, level: u32, threads: usize) -> Self {
        ParGzWriter {
            sink: Some(sink),
            header_done: false,
            level: level.min(9),
            threads: threads.max(1),
            chunker: Chunker::default(),
            block: Vec::with_capacity(MAX_CHUNK as usize),
            pending: VecDeque::new(),
            pool: None,
            inline: None,
            free: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            started: false,
            chunks: Vec::new(),
            known: None,
            copied: 0,
            block_start: 0,
        }
    }

    /// An empty chunk buffer: one that went through before, or a new one that holds
    /// the largest chunk (chunks vary in length: buffers of one size are reused, not
    /// reallocated, and the allocator keeps no trail of sizes).
    fn buffer(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_CHUNK as usize))
    }

    /// Copies the chunks `known` has instead of compressing them.
    pub(crate) fn with_known(mut self, known: &'k mut dyn KnownChunks) -> Self {
        self.known = Some(known);
        self
    }

    /// Compresses what is buffered and writes the trailer: the sink, the chunks
    /// written and how many were copied.
    pub(crate) fn finish_indexed(mut self) -> io::Result<(W, Vec<ChunkInfo>, usize)> {
        if !self.block.is_empty() || !self.started {
            let last = std::mem::take(&mut self.block);
            self.dispatch(last, true)?;
        }
        while let Some(rx) = self.pending.pop_front() {
            self.emit(recv(&rx)?)?;
        }
        self.stop_pool();
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        let len = self.len as u32; // ISIZE is the length modulo 2^32 (RFC 1952)
        let sink = self.sink()?;
        sink.write_all(&FINAL_BLOCK)?;
        sink.write_all(&crc.to_le_bytes())?;
        sink.write_all(&len.to_le_bytes())?;
        sink.flush()?;
        let sink = self
            .sink
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        Ok((sink, std::mem::take(&mut self.chunks), self.copied))
    }

    fn sink(&mut self) -> io::Result<&mut W> {
        self.sink
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    /// Sends one chunk to be compressed (or compresses or copies it inline).
    fn dispatch(&mut self, input: Vec<u8>, last: bool) -> io::Result<()> {
        self.started = true;
        if let Some(done) = self.copy_known(&input) {
            let (reply, rx) = mpsc::sync_channel(1);
            let _ = reply.send(Ok(Done { input, ..done }));
            self.pending.push_back(rx);
            return self.drain(0);
        }
        // A stream that is a single chunk never starts the pool.
        let use_pool = self.threads > 1 && !(last && self.pool.is_none());
        if !use_pool {
            self.drain(0)?;
            let c = self
                .inline
                .get_or_insert_with(|| Compress::new(Compression::new(self.level), false));
            let done = compress_block(c, input)?;
            return self.emit(done);
        }
        if self.pool.is_none() {
            self.pool = Some(start_pool(self.threads, self.level));
        }
        let (reply, rx) = mpsc::sync_channel(1);
        let job = Job { input, reply };
        let sent = self
            .pool
            .as_ref()
            .and_then(|p| p.jobs.as_ref())
            .map(|tx| tx.send(job).is_ok());
        if sent != Some(true) {
            return Err(io::Error::other("gzip worker pool stopped"));
        }
        self.pending.push_back(rx);
        self.drain(2 * self.threads - 1)
    }

    /// The known compressed bytes of `input`, if [`KnownChunks`] has them.
    fn copy_known(&mut self, input: &[u8]) -> Option<Done> {
        let known = self.known.as_mut()?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(input);
        let out = known.compressed(input, crc.clone().finalize())?;
        self.copied += 1;
        Some(Done {
            out,
            crc,
            ulen: input.len() as u64,
            input: Vec::new(),
        })
    }

    /// Emits finished chunks in order until at most `keep` are pending.
    fn drain(&mut self, keep: usize) -> io::Result<()> {
        while self.pending.len() > keep {
            if let Some(rx) = self.pending.pop_front() {
                self.emit(recv(&rx)?)?;
            }
        }
        Ok(())
    }

    /// Writes one compressed chunk in order.
    fn emit(&mut self, done: Done) -> io::Result<()> {
        if !self.header_done {
            self.sink()?.write_all(&HEADER)?;
            self.header_done = true;
        }
        self.sink()?.write_all(&done.out)?;
        let ulen = done.ulen;
        self.crc.combine(&done.crc);
        self.len += ulen;
        self.chunks.push(ChunkInfo {
            ulen,
            clen: done.out.len() as u64,
            crc: done.crc.finalize(),
        });
        let mut input = done.input;
        input.clear();
        if input.capacity() > 0 {
            self.free.push(input);
        }
        Ok(())
    }

    fn stop_pool(&mut self) {
        if let Some(mut pool) = self.pool.take() {
            pool.jobs = None; // workers see the channel close and exit
            for w in pool.workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}

impl<W: Write> Write for ParGzWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut taken = 0;
        while taken == 0 && !buf.is_empty() {
            let (n, cut) = self.chunker.step(buf);
            self.block.extend_from_slice(&buf[..n]);
            taken = n;
            if let Some(at) = cut {
                // The block holds the stream from `at - split` on; the cut is at most
                // one header block back from its end.
                let split = (at - self.block_start) as usize;
                self.block_start = at;
                let mut next = self.buffer();
                next.extend_from_slice(&self.block[split..]);
                self.block.truncate(split);
                let chunk = std::mem::replace(&mut self.block, next);
                if !chunk.is_empty() {
                    self.dispatch(chunk, false)?;
                }
            }
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-chunk would change the cuts (and the output): only the already
        // compressed bytes are flushed.
        self.sink()?.flush()
    }
}

impl<W: Write> Drop for ParGzWriter<'_, W> {
    fn drop(&mut self) {
        self.pending.clear();
        self.stop_pool();
    }
}
fn recv(rx: &mpsc::Receiver<io::Result<Done>>) -> io::Result<Done> {
    rx.recv()
        .unwrap_or_else(|_| Err(io::Error::other("gzip worker died")))
}

fn start_pool(threads: usize, level: u32) -> Pool {
    let (tx, rx) = mpsc::sync_channel::<Job>(threads);
    let rx = Arc::new(Mutex::new(rx));
    let workers = (0..threads)
        .map(|_| {
            let rx = Arc::clone(&rx);
            std::thread::spawn(move || {
                let mut c = Compress::new(Compression::new(level), false);
                loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let result = compress_block(&mut c, job.input);
                    let _ = job.reply.send(result);
                }
            })
        })
        .collect();
    Pool {
        jobs: Some(tx),
        workers,
    }
}

/// Compresses one chunk as raw deflate ending byte-aligned (a sync flush, or stored
/// blocks, which are byte-aligned by construction).
fn compress_block(c: &mut Compress, input: Vec<u8>) -> io::Result<Done> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&input);
    let out = if looks_random(&input) {
        stored_blocks(&input)
    } else {
        deflate_block(c, &input)?
    };
    Ok(Done {
        out,
        crc,
        ulen: input.len() as u64,
        input,
    })
}

/// Whether `input`'s order-0 entropy is above [`STORE_ENTROPY`] bits per byte.
pub(crate) fn looks_random(input: &[u8]) -> bool {
    if input.len() < 4096 {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in input {
        counts[b as usize] += 1;
    }
    let n = input.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy > STORE_ENTROPY
}

/// `input` as stored (uncompressed) deflate blocks, none final. The stream is
/// byte-aligned before them (every block here ends aligned), so each is the header
/// byte `00` (BFINAL 0, BTYPE 00, padding), LEN and its complement, then the bytes.
fn stored_blocks(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 5 * (input.len() / STORED_MAX + 1));
    for chunk in input.chunks(STORED_MAX) {
        let len = chunk.len() as u16; // at most STORED_MAX
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Raw deflate of `input` on its own, ending in a sync flush.
fn deflate_block(c: &mut Compress, input: &[u8]) -> io::Result<Vec<u8>> {
    c.reset();
    // deflate's bound (stored blocks, 5 bytes per 16 KiB, and the flush): no
    // reallocation, and the same size every time for a chunk of the same length.
    let mut out = Vec::with_capacity(input.len() + input.len() / 16_384 * 5 + 64);
    let start = c.total_in();
    loop {
        if out.len() == out.capacity() {
            out.reserve(64 * 1024);
        }
        let done_in = (c.total_in() - start) as usize;
        c.compress_vec(&input[done_in..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // zlib semantics: a sync flush is complete once output space is left over.
        if (c.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
            break;
        }
    }
    Ok(out)
}
