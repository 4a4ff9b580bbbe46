//! Layer compression: the [`Compression`] choice, its media types, the streaming
//! encoders used by the blob writer and the decoders used by the applier.
//!
//! Invariants: encoders are deterministic for a given input and [`Compression`] value
//! (gzip: fixed header and fixed block boundaries, see `pargz.rs`; zstd: a fixed worker
//! count, no checksum, no content size); memory use does not grow with the layer size.

use std::io::{self, Read, Write};

use super::pargz::{ChunkInfo, KnownChunks, ParGzWriter};

/// OCI media type of an uncompressed layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI media type of a gzip layer.
pub const MEDIA_TYPE_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI media type of a zstd layer.
pub const MEDIA_TYPE_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker v2 schema 2 media type of an uncompressed layer.
pub const DOCKER_MEDIA_TYPE_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker v2 schema 2 media type of a gzip layer.
pub const DOCKER_MEDIA_TYPE_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// gzip level used by [`Compression::default`] (zlib's default, as BuildKit uses).
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// zstd level used by [`Compression::zstd`] (zstd's default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// zstd worker threads. Fixed, not the core count, so that output does not depend on
/// the machine.
const ZSTD_WORKERS: u32 = 2;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip at `level` 0-9 (1 fastest, 9 smallest).
    Gzip {
        /// Compression level.
        level: u32,
    },
    /// zstd at `level` 1-22.
    Zstd {
        /// Compression level.
        level: i32,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip {
            level: DEFAULT_GZIP_LEVEL,
        }
    }
}

impl Compression {
    /// zstd at its default level.
    pub fn zstd() -> Self {
        Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        }
    }

    /// The OCI layer media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::None => MEDIA_TYPE_TAR,
            Compression::Gzip { .. } => MEDIA_TYPE_GZIP,
            Compression::Zstd { .. } => MEDIA_TYPE_ZSTD,
        }
    }

    /// The compression a layer media type (OCI or Docker) names, with default levels;
    /// `None` for a media type that is not a layer.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            MEDIA_TYPE_TAR | DOCKER_MEDIA_TYPE_TAR | NONDIST_TAR => Some(Compression::None),
            MEDIA_TYPE_GZIP | DOCKER_MEDIA_TYPE_GZIP | NONDIST_GZIP | DOCKER_FOREIGN_GZIP => {
                Some(Compression::default())
            }
            MEDIA_TYPE_ZSTD | NONDIST_ZSTD => Some(Compression::zstd()),
            _ => None,
        }
    }
}

/// Non-distributable (foreign) layer types, deprecated by the OCI spec and still met in
/// the wild: the same tar streams, fetched from the descriptor's `urls` when the
/// registry does not have them.
const NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const NONDIST_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
const NONDIST_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The Docker v2 schema 2 equivalent of an OCI layer media type. zstd has none: Docker
/// manifests cannot carry zstd layers.
pub fn docker_media_type(oci_media_type: &str) -> Option<&'static str> {
    match oci_media_type {
        MEDIA_TYPE_TAR => Some(DOCKER_MEDIA_TYPE_TAR),
        MEDIA_TYPE_GZIP => Some(DOCKER_MEDIA_TYPE_GZIP),
        _ => None,
    }
}

/// A streaming compressor in front of `W`.
pub(crate) enum Encoder<'k, W: Write> {
    Plain(W),
    Gzip(Box<ParGzWriter<'k, W>>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<'k, W: Write> Encoder<'k, W> {
    /// The encoder for `c`; gzip uses up to `threads` workers (output is the same for
    /// any count).
    pub(crate) fn new(c: Compression, sink: W, threads: usize) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::Plain(sink),
            Compression::Gzip { level } => {
                Encoder::Gzip(Box::new(ParGzWriter::new(sink, level, threads)))
            }
            Compression::Zstd { level } => {
                let mut z = zstd::stream::write::Encoder::new(sink, level)?;
                z.multithread(ZSTD_WORKERS)?;
                z.include_checksum(false)?;
                z.include_contentsize(false)?;
                Encoder::Zstd(z)
            }
        })
    }

    /// A gzip encoder copies the chunks `known` has instead of compressing them (the
    /// others ignore it).
    pub(crate) fn with_known(self, known: &'k mut dyn KnownChunks) -> Self {
        match self {
            Encoder::Gzip(g) => Encoder::Gzip(Box::new(g.with_known(known))),
            other => other,
        }
    }

    /// Ends the stream and returns the sink.
    #[cfg(test)]
    pub(crate) fn finish(self) -> io::Result<W> {
        Ok(self.finish_indexed()?.0)
    }

    /// Ends the stream: the sink, a gzip stream's chunks and how many were copied.
    pub(crate) fn finish_indexed(self) -> io::Result<(W, Option<Vec<ChunkInfo>>, usize)> {
        match self {
            Encoder::Plain(w) => Ok((w, None, 0)),
            Encoder::Gzip(g) => {
                let (w, chunks, copied) = g.finish_indexed()?;
                Ok((w, Some(chunks), copied))
            }
            Encoder::Zstd(z) => Ok((z.finish()?, None, 0)),
        }
    }
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
        }
    }

    /// Flushes a plain sink only: a flush inside a compressed stream would end a block
    /// early and make the bytes depend on when callers flush. `finish` writes it all.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(_) | Encoder::Zstd(_) => Ok(()),
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Which compression a stream starting with `head` has.
pub(crate) fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&GZIP_MAGIC) {
        Compression::default()
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::zstd()
    } else {
        Compression::None
    }
}

/// The diff ID of the layer blob `r` of compression `hint` (detected when `None`): the
/// digest of its uncompressed tar stream, for a blob that is not applied (one applied
/// gets it from the applier's pass).
pub fn diff_id_of<R: Read>(r: R, hint: Option<Compression>) -> io::Result<crate::digest::Digest> {
    let mut hasher = crate::digest::Hasher::new(io::sink());
    io::copy(&mut decoder(r, hint)?, &mut hasher)?;
    Ok(hasher.finish().0)
}

/// A decompressing reader over `r`; with `hint` `None` the format is detected from the
/// first bytes (read in full even if the stream delivers them one by one, then put back
/// in front). gzip streams may have several members (pigz, concatenated blobs).
pub(crate) fn decoder<'a, R: Read + 'a>(
    mut r: R,
    hint: Option<Compression>,
) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; ZSTD_MAGIC.len()];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let c = hint.unwrap_or_else(|| detect(&head[..n]));
    let stream = io::Cursor::new(head).take(n as u64).chain(r);
    Ok(match c {
        Compression::None => Box::new(stream),
        Compression::Gzip { .. } => Box::new(flate2::bufread::MultiGzDecoder::new(
            io::BufReader::with_capacity(256 * 1024, stream),
        )),
        Compression::Zstd { .. } => Box::new(zstd::stream::read::Decoder::new(stream)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: words from a small vocabulary, xorshift-chosen.
        let words: [&[u8]; 6] = [b"layer ", b"tar ", b"overlay ", b"rbuild\n", b"0", b"x"];
        let (mut x, mut out) = (0x9E3779B97F4A7C15u64, Vec::with_capacity(len));
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(words[(x % 6) as usize]);
            if x % 5 == 0 {
                out.push((x >> 32) as u8);
            }
        }
        out.truncate(len);
        out
    }

    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn encode(c: Compression, data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut e = Encoder::new(c, Vec::new(), threads).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            e.write_all(piece).unwrap();
        }
        e.finish().unwrap()
    }

    fn decode(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decoder(blob, None).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn every_compression_round_trips() {
        let data = sample(3 * super::super::tar_chunks::MAX_CHUNK as usize + 12345);
        for c in [
            Compression::None,
            Compression::Gzip { level: 1 },
            Compression::default(),
            Compression::zstd(),
        ] {
            let blob = encode(c, &data, 2, 100_000);
            assert_eq!(decode(&blob), data, "{c:?}");
            assert_eq!(detect(&blob).media_type(), c.media_type());
            // A stream that delivers one byte per read is still detected.
            let mut out = Vec::new();
            decoder(OneByte(&blob), None)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == data, "{c:?} one byte at a time");
            let diff_id = diff_id_of(&blob[..], Some(c)).unwrap();
            assert_eq!(diff_id, crate::digest::Digest::of(&data), "{c:?} diff ID");
        }
        assert_eq!(decode(&encode(Compression::default(), b"", 2, 1)), b"");
    }

    #[test]
    fn gzip_bytes_do_not_depend_on_threads_or_write_sizes() {
        let data = sample(2 * super::super::tar_chunks::MAX_CHUNK as usize + 77);
        let a = encode(Compression::default(), &data, 1, 4096);
        let b = encode(Compression::default(), &data, 2, 1_000_003);
        let c = encode(Compression::default(), &data, 3, 512);
        assert!(a == b && b == c);
        // Fixed header: no mtime, no name, OS 255; and GNU gzip agrees it is valid.
        assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut flate = flate2::read::GzDecoder::new(&a[..]);
        let mut out = Vec::new();
        flate.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    /// xorshift bytes: what compressed or encrypted files look like to deflate.
    fn random(len: usize) -> Vec<u8> {
        let mut x = 0x2545F4914F6CDD1Du64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn random_blocks_are_stored_and_text_around_them_compressed() {
        let block = super::super::tar_chunks::TARGET_CHUNK as usize;
        let mut data = sample(block);
        data.extend(random(2 * block + 999));
        data.extend(sample(block / 2));
        assert!(super::super::pargz::looks_random(&random(block)));
        assert!(!super::super::pargz::looks_random(&sample(block)));
        let gz = encode(Compression::default(), &data, 2, 70_000);
        assert_eq!(gz, encode(Compression::default(), &data, 1, 4096));
        // Stored: the random part costs 5 bytes per 64 KiB, the text still shrinks.
        let random_part = 2 * block + 999;
        assert!(gz.len() < random_part + 2 * block / 5, "{}", gz.len());
        assert!(gz.len() > random_part, "{}", gz.len());
        let mut gnu = std::process::Command::new("gzip")
            .args(["-dc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = gnu.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&gz).unwrap());
        let out = gnu.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success() && out.stdout == data,
            "GNU gzip reads it"
        );
    }

    #[test]
    fn zstd_is_deterministic_and_media_types_map() {
        let data = sample(500_000);
        assert_eq!(
            encode(Compression::zstd(), &data, 1, 999),
            encode(Compression::zstd(), &data, 2, 65536)
        );
        assert_eq!(
            docker_media_type(MEDIA_TYPE_GZIP),
            Some(DOCKER_MEDIA_TYPE_GZIP)
        );
        assert_eq!(docker_media_type(MEDIA_TYPE_ZSTD), None);
        assert_eq!(
            Compression::from_media_type(DOCKER_MEDIA_TYPE_GZIP),
            Some(Compression::default())
        );
    }
}
