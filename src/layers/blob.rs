//! One streaming pass from a change set to a content-addressed layer blob:
//!
//! ```text
//! tar writer -> buffer -> sha256 (diff ID) -> compressor -> sha256 + count (digest, size) -> sink
//! ```
//!
//! Invariants: both digests are computed over exactly the bytes that pass (the diff ID
//! over the uncompressed tar, the digest over what the sink receives); nothing holds a
//! whole file or the whole layer in memory; the same tree and options give the same
//! bytes, so the same digests.

use std::cell::RefCell;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use super::changes::{tree_changes, upperdir_changes, ChangeSet};
use super::compress::{Compression, Encoder};
use super::diff::diff;
use super::error::{Error, Result};
use super::pargz::{ChunkInfo, KnownChunks};
use super::patch::{self, writer_id, Entries, Known, LayerChunks, PatchBase};
use super::tar_write::{write_tar_with, TarOptions, Unchanged};
use crate::digest::{Digest, Hasher};

/// A written layer: what a manifest and a config need to reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the blob as written (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// OCI media type; see [`super::docker_media_type`] for Docker manifests.
    pub media_type: &'static str,
}

impl LayerBlob {
    /// The blob's descriptor, as a manifest lists it.
    pub fn descriptor(&self) -> crate::image::LayerDescriptor {
        crate::image::LayerDescriptor {
            digest: self.digest,
            size: self.size,
            media_type: self.media_type.to_owned(),
        }
    }
}

/// How to write a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Compression of the blob (gzip level 6 by default).
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: clamp every mtime in the tar to at most this.
    pub source_date_epoch: Option<i64>,
    /// Worker threads for gzip (0 means one per available core). The output is the same
    /// for any value.
    pub threads: usize,
}

/// Where the entries of a layer come from.
#[derive(Debug, Clone, Copy)]
pub enum Changes<'a> {
    /// An overlay upperdir: whiteouts and opaque directories are translated.
    Upperdir(&'a Path),
    /// A whole directory tree, every entry added (e.g. `FROM scratch` + `COPY`).
    Tree(&'a Path),
    /// The difference between two trees (`--snapshotter=native`).
    Diff {
        /// The tree before the step.
        lower: &'a Path,
        /// The tree after the step.
        upper: &'a Path,
    },
}

impl Changes<'_> {
    /// The change set, in tar order.
    pub fn collect(&self) -> Result<ChangeSet> {
        match *self {
            Changes::Upperdir(p) => upperdir_changes(p),
            Changes::Tree(p) => tree_changes(p),
            Changes::Diff { lower, upper } => diff(lower, upper),
        }
    }
}

/// Writes the layer of `source` to `sink` in one pass and returns its identity.
pub fn write_layer(
    source: Changes<'_>,
    opts: &WriteOptions,
    sink: impl Write,
) -> Result<LayerBlob> {
    write_changes(&source.collect()?, opts, sink)
}

/// Writes the layer of an already collected change set. The returned digest and size
/// are those of exactly the bytes written to `sink` (a store's hashed blob writer
/// relies on it).
pub fn write_changes(set: &ChangeSet, opts: &WriteOptions, sink: impl Write) -> Result<LayerBlob> {
    Ok(write_indexed(set, opts, sink, None)?.blob)
}

/// A layer written, and how its gzip stream was cut (what a later patch reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The layer.
    pub blob: LayerBlob,
    /// Its chunks, for a gzip layer.
    pub chunks: Option<LayerChunks>,
    /// How many chunks were copied from the earlier layer of a patch.
    pub copied: usize,
}

/// [`write_changes`], with the chunk index; with `base`, a patch of that earlier
/// layer (`patch.rs`) when it was written the same way (same gzip level, writer and
/// mtime clamp), else a full write. The bytes are the same either way.
pub fn write_indexed(
    set: &ChangeSet,
    opts: &WriteOptions,
    sink: impl Write,
    base: Option<PatchBase<'_>>,
) -> Result<Written> {
    if opts.compression == Compression::None {
        let blob = write_uncompressed(set, opts, sink)?;
        return Ok(Written {
            blob,
            chunks: None,
            copied: 0,
        });
    }
    let compatible = |b: &PatchBase<'_>| {
        let c = b.chunks;
        opts.compression == (Compression::Gzip { level: c.level })
            && c.writer == writer_id()
            && c.source_date_epoch == opts.source_date_epoch
    };
    let old = match base.filter(compatible) {
        Some(b) => Some(RefCell::new(
            patch::open(b).map_err(|source| Error::ReadLayer { source })?,
        )),
        None => None,
    };
    let mut known = old.as_ref().map(Known);
    let mut entries = old.as_ref().map(Entries);
    let known = known.as_mut().map(|k| k as &mut dyn KnownChunks);
    let (blob, chunks, copied) = compressed_pass(opts, sink, known, |plain| {
        let unchanged = entries.as_mut().map(|e| e as &mut dyn Unchanged);
        tar_into(set, opts, plain, unchanged)
    })?;
    let chunks = chunks.map(|c| LayerChunks {
        blob: blob.digest,
        writer: writer_id(),
        level: match opts.compression {
            Compression::Gzip { level } => level,
            _ => 0,
        },
        source_date_epoch: opts.source_date_epoch,
        chunks: c.iter().map(|c| (c.ulen, c.clen, c.crc)).collect(),
    });
    Ok(Written {
        blob,
        chunks,
        copied,
    })
}

/// Compresses the uncompressed layer tar `tar` as `opts` says, in one pass: the blob
/// [`write_changes`] gives for the tree the tar holds, byte for byte (the encoders'
/// output does not depend on how the input is cut). `opts.source_date_epoch` is not
/// applied: the tar is taken as it is.
pub fn compress_tar(tar: impl Read, opts: &WriteOptions, sink: impl Write) -> Result<LayerBlob> {
    let pass = compressed_pass(opts, sink, None, |mut plain| {
        copy_all(tar, &mut plain)?;
        Ok(plain)
    })?;
    Ok(pass.0)
}

/// The hashing writer the uncompressed tar goes into, in front of the encoder.
type Plain<'k, W> = Hasher<Encoder<'k, Hasher<W>>>;

/// One compressed pass into `sink`: `fill` writes the uncompressed tar into the
/// hasher it is given (the diff ID) in front of the encoder (which copies the chunks
/// `known` has) and the blob's hasher. Also gives a gzip stream's chunks and how many
/// were copied.
fn compressed_pass<'k, W: Write>(
    opts: &WriteOptions,
    sink: W,
    known: Option<&'k mut dyn KnownChunks>,
    fill: impl FnOnce(Plain<'k, W>) -> Result<Plain<'k, W>>,
) -> Result<(LayerBlob, Option<Vec<ChunkInfo>>, usize)> {
    let blob_error = |source| Error::WriteBlob { source };
    let compressed = Hasher::new(sink);
    let mut encoder =
        Encoder::new(opts.compression, compressed, threads(opts)).map_err(blob_error)?;
    if let Some(known) = known {
        encoder = encoder.with_known(known);
    }
    let (diff_id, _, encoder) = fill(Hasher::new(encoder))?.finish();
    let (compressed, chunks, copied) = encoder.finish_indexed().map_err(blob_error)?;
    let (digest, size, mut sink) = compressed.finish();
    sink.flush().map_err(blob_error)?;
    let blob = LayerBlob {
        digest,
        diff_id,
        size,
        media_type: opts.compression.media_type(),
    };
    Ok((blob, chunks, copied))
}

/// Copies `from` into `to` through a buffer of 256 KiB (reads fail as
/// [`Error::ReadLayer`], writes as [`Error::WriteBlob`]).
fn copy_all(mut from: impl Read, to: &mut impl Write) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(Error::ReadLayer { source }),
        };
        to.write_all(&buf[..n])
            .map_err(|source| Error::WriteBlob { source })?;
    }
}

/// Worker threads for `opts`: 0 means one per available core.
fn threads(opts: &WriteOptions) -> usize {
    match opts.threads {
        0 => crate::cpus::available(),
        n => n,
    }
}

/// Writes the tar of `set` into `out` (buffered) and returns `out`; the entries
/// `unchanged` has are copied from an earlier layer.
fn tar_into<W: Write>(
    set: &ChangeSet,
    opts: &WriteOptions,
    out: W,
    unchanged: Option<&mut dyn Unchanged>,
) -> Result<W> {
    let mut tar = BufWriter::with_capacity(256 * 1024, out);
    let tar_opts = TarOptions {
        source_date_epoch: opts.source_date_epoch,
    };
    write_tar_with(set, &tar_opts, &mut tar, unchanged)?;
    tar.into_inner().map_err(|e| Error::WriteBlob {
        source: e.into_error(),
    })
}

/// An uncompressed layer: the blob is the tar, so one hash gives the diff ID and the
/// digest (hashing the same bytes twice costs ~0.6 s per GiB).
fn write_uncompressed(set: &ChangeSet, opts: &WriteOptions, sink: impl Write) -> Result<LayerBlob> {
    let (digest, size, mut sink) = tar_into(set, opts, Hasher::new(sink), None)?.finish();
    sink.flush().map_err(|source| Error::WriteBlob { source })?;
    Ok(LayerBlob {
        digest,
        diff_id: digest,
        size,
        media_type: opts.compression.media_type(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn digests_cover_the_bytes_and_repeat() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("d")).unwrap();
        fs::write(t.path().join("d/f"), vec![7u8; 300_000]).unwrap();
        // Several gzip blocks and zstd jobs, some compressible, some not.
        let mut x = 1u64;
        let varied: Vec<u8> = (0..3_500_000u32)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 3 == 0 {
                    (x >> 56) as u8
                } else {
                    (i % 251) as u8
                }
            })
            .collect();
        fs::write(t.path().join("d/g"), varied).unwrap();
        for compression in [
            Compression::None,
            Compression::default(),
            Compression::zstd(),
        ] {
            let opts = WriteOptions {
                compression,
                ..WriteOptions::default()
            };
            let mut a = Vec::new();
            let blob = write_layer(Changes::Tree(t.path()), &opts, &mut a).unwrap();
            assert_eq!(blob.digest, Digest::of(&a));
            assert_eq!(blob.size, a.len() as u64);
            assert_eq!(blob.media_type, compression.media_type());
            let mut tar = Vec::new();
            let plain = WriteOptions {
                compression: Compression::None,
                ..opts.clone()
            };
            write_layer(Changes::Tree(t.path()), &plain, &mut tar).unwrap();
            assert_eq!(blob.diff_id, Digest::of(&tar));
            let mut b = Vec::new();
            assert_eq!(
                write_layer(Changes::Tree(t.path()), &opts, &mut b).unwrap(),
                blob
            );
            assert_eq!(a, b);
            // The tar compressed afterwards is the same blob, cut any way.
            let mut c = Vec::new();
            let odd = OddReads(std::io::Cursor::new(&tar));
            let later = compress_tar(odd, &opts, &mut c).unwrap();
            assert_eq!(later, blob);
            assert_eq!(c, a);
        }
    }

    /// A reader that hands out 7777 bytes at a time.
    struct OddReads<R>(R);

    impl<R: std::io::Read> std::io::Read for OddReads<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7777);
            self.0.read(&mut buf[..n])
        }
    }
}
