//! Where an export writes: a tar stream ([`TarSink`]) or a directory ([`DirSink`]).
//!
//! Both take the same three calls (directory, small file, blob from the store), so the
//! OCI layout is described once. Blobs are streamed from the store in 64 KiB chunks
//! and re-hashed on the way: memory stays bounded whatever the layer sizes, and a blob
//! that rotted on disk fails the export instead of producing a broken image.
//!
//! Tar entries are deterministic: ustar headers, mode 0644/0755, uid/gid 0, mtime 0,
//! so the same image gives the same archive bytes.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::fs_error::FsError;
use crate::image::Descriptor;
use crate::publish::error::{Error, Result};
use crate::store::{layout::BLOBS_DIR, Store};

const BLOCK: usize = 512;
const CHUNK: usize = 64 << 10;

/// A destination for the files of an export.
pub(crate) trait Sink {
    /// Adds a directory (`path` relative, without trailing slash).
    fn dir(&mut self, path: &str) -> Result<()>;
    /// Adds a small file.
    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()>;
    /// Adds the blob `desc` at `blobs/sha256/<hex>`, streamed from the store.
    fn blob(&mut self, store: &Store, desc: &Descriptor) -> Result<()>;
}

/// The path of a blob inside an OCI layout.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("{BLOBS_DIR}/{}", digest.hex())
}

/// Streams the blob `desc` from the store into `out`, checking its size and digest.
fn copy_blob(store: &Store, desc: &Descriptor, out: &mut dyn Write) -> Result<()> {
    let actual = store.blob_size(&desc.digest)?;
    if actual != desc.size {
        return Err(Error::BlobSize {
            digest: desc.digest,
            expected: desc.size,
            actual,
        });
    }
    let path = store.blob_path(&desc.digest);
    let mut file = store.open_blob(&desc.digest)?.take(desc.size);
    let mut hasher = Hasher::new(out);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::fs("read", &path)(e)),
        };
        hasher
            .write_all(&buf[..n])
            .map_err(|source| Error::Output { source })?;
    }
    let (digest, len, _) = hasher.finish();
    if len != desc.size || digest != desc.digest {
        // A short read means the file shrank under us: corrupt as well.
        return Err(Error::BlobCorrupt {
            digest: desc.digest,
            actual: digest,
        });
    }
    Ok(())
}

/// Writes a tar stream.
pub(crate) struct TarSink<W: Write> {
    out: W,
}

impl<W: Write> TarSink<W> {
    pub(crate) fn new(out: W) -> Self {
        TarSink { out }
    }

    fn header(&mut self, path: &str, size: u64, kind: tar::EntryType) -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(path)
            .map_err(|source| Error::Output { source })?;
        header.set_size(size);
        header.set_entry_type(kind);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        self.write(header.as_bytes())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|source| Error::Output { source })
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem == 0 {
            return Ok(());
        }
        self.write(&[0u8; BLOCK][..BLOCK - rem])
    }

    /// Ends the archive (two zero blocks), flushes, and returns the writer.
    pub(crate) fn finish(mut self) -> Result<W> {
        self.write(&[0u8; 2 * BLOCK])?;
        self.out
            .flush()
            .map_err(|source| Error::Output { source })?;
        Ok(self.out)
    }
}

impl<W: Write> Sink for TarSink<W> {
    fn dir(&mut self, path: &str) -> Result<()> {
        self.header(&format!("{path}/"), 0, tar::EntryType::Directory)
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.header(path, bytes.len() as u64, tar::EntryType::Regular)?;
        self.write(bytes)?;
        self.pad(bytes.len() as u64)
    }

    fn blob(&mut self, store: &Store, desc: &Descriptor) -> Result<()> {
        self.header(&blob_path(&desc.digest), desc.size, tar::EntryType::Regular)?;
        copy_blob(store, desc, &mut self.out)?;
        self.pad(desc.size)
    }
}

/// Writes into a directory, which must be empty or absent.
pub(crate) struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// Creates `root` (and parents) if needed; refuses a non-empty directory.
    pub(crate) fn create(root: &Path) -> Result<DirSink> {
        match fs::read_dir(root) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(Error::DestinationNotEmpty {
                        path: root.to_owned(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(root).map_err(Error::fs("create directory", root))?;
            }
            Err(e) => return Err(Error::fs("read directory", root)(e)),
        }
        Ok(DirSink {
            root: root.to_owned(),
        })
    }
}

impl Sink for DirSink {
    fn dir(&mut self, path: &str) -> Result<()> {
        let p = self.root.join(path);
        fs::create_dir_all(&p).map_err(Error::fs("create directory", &p))
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let p = self.root.join(path);
        fs::write(&p, bytes).map_err(Error::fs("write", &p))
    }

    fn blob(&mut self, store: &Store, desc: &Descriptor) -> Result<()> {
        let p = self.root.join(blob_path(&desc.digest));
        let file = File::create(&p).map_err(Error::fs("create", &p))?;
        let mut out = BufWriter::with_capacity(CHUNK, file);
        let result = copy_blob(store, desc, &mut out)
            .and_then(|()| out.flush().map_err(Error::fs("write", &p)));
        if result.is_err() {
            let _ = fs::remove_file(&p);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_entries_are_padded_and_terminated() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (digest, size) = store.put_bytes(b"blob content").unwrap();
        let desc = Descriptor::new("application/octet-stream", digest, size);
        let mut sink = TarSink::new(Vec::new());
        sink.dir("blobs").unwrap();
        sink.file("a.json", b"{}").unwrap();
        sink.blob(&store, &desc).unwrap();
        let bytes = sink.finish().unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                assert_eq!(e.header().mtime().unwrap(), 0);
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (e.path().unwrap().display().to_string(), body)
            })
            .collect();
        assert_eq!(entries[0].0, "blobs/");
        assert_eq!(entries[1], ("a.json".to_owned(), b"{}".to_vec()));
        assert_eq!(entries[2], (blob_path(&digest), b"blob content".to_vec()));
    }

    #[test]
    fn corrupt_blob_fails_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (digest, size) = store.put_bytes(b"blob content").unwrap();
        fs::write(store.blob_path(&digest), b"blob CONTENT").unwrap();
        let desc = Descriptor::new("application/octet-stream", digest, size);
        let err = TarSink::new(Vec::new()).blob(&store, &desc).unwrap_err();
        assert!(
            matches!(err, Error::BlobCorrupt { digest: d, .. } if d == digest),
            "{err}"
        );
        let out = tempfile::tempdir().unwrap();
        let mut sink = DirSink::create(out.path()).unwrap();
        sink.dir("blobs/sha256").unwrap();
        assert!(sink.blob(&store, &desc).is_err());
        assert!(!out.path().join(blob_path(&digest)).exists());
    }
}
