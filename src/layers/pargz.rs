//! A parallel, deterministic gzip writer (pigz's block design on `flate2` + zlib-rs).
//!
//! The input is cut into fixed [`BLOCK_SIZE`] blocks. Each block is compressed as raw
//! deflate primed with the last 32 KiB of the block before it (so the ratio matches a
//! serial stream closely) and ends with a sync flush, which byte-aligns it; the blocks
//! are concatenated in order, an empty final block (`03 00`) closes the deflate stream,
//! and the CRC-32 (combined from per-block CRCs) and length close the gzip member.
//!
//! Invariants:
//! - the output depends only on the input bytes and the level: block boundaries are
//!   byte offsets, never write boundaries or timing, and a block compresses the same
//!   way on a worker or inline, so the thread count never changes the bytes;
//! - the gzip header is fixed (no name, mtime 0, XFL 0, OS 255 "unknown", as Go writes);
//! - memory is bounded: at most `2 * threads` blocks in flight, plus their outputs;
//! - a layer smaller than one block is compressed inline and starts no thread;
//! - a block whose bytes look random (order-0 entropy above [`STORE_ENTROPY`] bits per
//!   byte: compressed or encrypted data, which deflate cannot shrink by more than about
//!   half a percent) is written as stored deflate blocks instead of being squeezed:
//!   the same valid gzip stream at the cost of a byte histogram, not of a level-6
//!   search that finds nothing (`gzip -6` spends ~17 s per GiB of random data here).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress};

/// Bytes of input per independently compressed block.
pub(crate) const BLOCK_SIZE: usize = 1 << 20;
/// The deflate window: how much of the previous block primes the next.
const DICT_SIZE: usize = 32 * 1024;
/// gzip header: magic, CM=deflate, no flags, mtime 0, XFL 0, OS 255.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// An empty fixed-Huffman block with BFINAL set: ends the deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];
/// Bits per byte above which a block is stored rather than compressed.
const STORE_ENTROPY: f64 = 7.95;
/// The largest stored deflate block (RFC 1951: LEN is 16 bits).
const STORED_MAX: usize = 65_535;

/// A compressed block and what the writer needs back from the worker.
struct Done {
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    input: Vec<u8>,
}

struct Job {
    input: Vec<u8>,
    dict: Vec<u8>,
    reply: mpsc::SyncSender<io::Result<Done>>,
}

struct Pool {
    jobs: Option<mpsc::SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

/// The gzip writer; call [`ParGzWriter::finish`] to complete the stream.
pub(crate) struct ParGzWriter<W: Write> {
    /// `None` only after `finish`.
    sink: Option<W>,
    header_done: bool,
    level: u32,
    threads: usize,
    block: Vec<u8>,
    dict: Vec<u8>,
    pending: VecDeque<mpsc::Receiver<io::Result<Done>>>,
    pool: Option<Pool>,
    inline: Option<Compress>,
    free: Vec<Vec<u8>>,
    crc: crc32fast::Hasher,
    len: u64,
    started: bool,
}

impl<W: Write> ParGzWriter<W> {
    /// A writer at `level` (0-9) using up to `threads` worker threads.
    pub(crate) fn new(sink: W, level: u32, threads: usize) -> Self {
        ParGzWriter {
            sink: Some(sink),
            header_done: false,
            level: level.min(9),
            threads: threads.max(1),
            block: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            pending: VecDeque::new(),
            pool: None,
            inline: None,
            free: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            started: false,
        }
    }

    /// Compresses what is buffered, writes the trailer and returns the sink.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() || !self.started {
            self.dispatch(true)?;
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
        self.sink
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    fn sink(&mut self) -> io::Result<&mut W> {
        self.sink
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    /// Sends the current block to be compressed (or compresses it inline).
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let next = self
            .free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_SIZE));
        let input = std::mem::replace(&mut self.block, next);
        let tail = input.len().saturating_sub(DICT_SIZE);
        let dict = std::mem::replace(&mut self.dict, input[tail..].to_vec());
        // A stream that is a single block never starts the pool.
        let use_pool = self.threads > 1 && !(last && self.pool.is_none());
        self.started = true;
        if !use_pool {
            let c = self
                .inline
                .get_or_insert_with(|| Compress::new(Compression::new(self.level), false));
            let done = compress_block(c, input, &dict)?;
            return self.emit(done);
        }
        if self.pool.is_none() {
            self.pool = Some(start_pool(self.threads, self.level));
        }
        let (reply, rx) = mpsc::sync_channel(1);
        let job = Job { input, dict, reply };
        let sent = self
            .pool
            .as_ref()
            .and_then(|p| p.jobs.as_ref())
            .map(|tx| tx.send(job).is_ok());
        if sent != Some(true) {
            return Err(io::Error::other("gzip worker pool stopped"));
        }
        self.pending.push_back(rx);
        while self.pending.len() >= 2 * self.threads {
            if let Some(rx) = self.pending.pop_front() {
                self.emit(recv(&rx)?)?;
            }
        }
        Ok(())
    }

    /// Writes one compressed block in order.
    fn emit(&mut self, done: Done) -> io::Result<()> {
        if !self.header_done {
            self.sink()?.write_all(&HEADER)?;
            self.header_done = true;
        }
        self.sink()?.write_all(&done.out)?;
        self.crc.combine(&done.crc);
        self.len += done.input.len() as u64;
        let mut input = done.input;
        input.clear();
        self.free.push(input);
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

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-block would change block boundaries (and the output): only the
        // already compressed bytes are flushed.
        self.sink()?.flush()
    }
}

impl<W: Write> Drop for ParGzWriter<W> {
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
                    let result = compress_block(&mut c, job.input, &job.dict);
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

/// Compresses one block as raw deflate ending byte-aligned (a sync flush, or stored
/// blocks, which are byte-aligned by construction).
fn compress_block(c: &mut Compress, input: Vec<u8>, dict: &[u8]) -> io::Result<Done> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&input);
    let out = if looks_random(&input) {
        stored_blocks(&input)
    } else {
        deflate_block(c, &input, dict)?
    };
    Ok(Done { out, crc, input })
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

/// Raw deflate of `input` primed with `dict`, ending in a sync flush.
fn deflate_block(c: &mut Compress, input: &[u8], dict: &[u8]) -> io::Result<Vec<u8>> {
    c.reset();
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(input.len() / 2 + 4096);
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
