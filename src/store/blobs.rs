//! Content-addressed blobs: `blobs/sha256/<hex>`, written through the work dir.
//!
//! A blob is streamed into a temp file while being hashed ([`Hasher`]), written past
//! the page cache (`direct.rs`), fsynced, and renamed to its digest's path. Committing
//! a blob that already exists is a no-op (the content is by definition the same), so
//! concurrent writers of one blob never conflict.
//! A temp file that is not committed is removed on drop, and with the work dir after a
//! crash; a digest mismatch leaves nothing behind.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::direct::DirectFile;
use super::error::{Error, Result};
use super::layout::{self, BLOBS_DIR};
use super::Store;
use crate::digest::{Digest, Hasher};
use crate::fs_error::FsError;

/// JSON blobs (manifests, configs, indexes) larger than this are refused by
/// [`Store::read_blob`]: they are read whole, and no real one comes near it.
pub const MAX_JSON_BLOB: u64 = 64 << 20;

/// A blob being written; hashes and counts the bytes as they pass.
pub struct BlobWriter<'s> {
    out: Hasher<TempBlob<'s>>,
}

/// A blob being written whose writer hashes the same bytes itself (a layer's
/// compressed pass does): it is not hashed twice. The caller names the digest at
/// [`HashedBlobWriter::commit`].
pub struct HashedBlobWriter<'s> {
    temp: TempBlob<'s>,
}

/// The temp file under a blob writer: counts the bytes, writes them past the page
/// cache ([`DirectFile`]), and is removed unless it is committed.
struct TempBlob<'s> {
    store: &'s Store,
    temp: PathBuf,
    out: Option<DirectFile>,
    len: u64,
}

impl std::fmt::Debug for BlobWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("temp", &self.temp_path())
            .finish()
    }
}

impl<'s> BlobWriter<'s> {
    /// The temp file the blob is being written to.
    pub fn temp_path(&self) -> &Path {
        &self.out.get_ref().temp
    }

    /// Finishes the blob: fsyncs it and moves it to `blobs/sha256/<hex>`. With
    /// `expected`, a different digest is an error and the temp file is removed.
    /// Returns the digest and the size in bytes.
    pub fn commit(self, expected: Option<Digest>) -> Result<(Digest, u64)> {
        let (digest, _, mut temp) = self.out.finish();
        if let Some(expected) = expected.filter(|e| *e != digest) {
            return Err(Error::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        temp.commit(digest)
    }
}

impl<'s> HashedBlobWriter<'s> {
    /// Finishes the blob as `digest` of `size` bytes, which the caller computed over
    /// exactly the bytes it wrote here: fsyncs it and moves it to `blobs/sha256/<hex>`.
    /// A different byte count is an error (the temp file is removed).
    pub fn commit(mut self, digest: Digest, size: u64) -> Result<(Digest, u64)> {
        if self.temp.len != size {
            return Err(Error::SizeMismatch {
                digest,
                expected: size,
                actual: self.temp.len,
            });
        }
        self.temp.commit(digest)
    }
}

impl TempBlob<'_> {
    fn commit(&mut self, digest: Digest) -> Result<(Digest, u64)> {
        let result = self.finish(digest);
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }

    fn finish(&mut self, digest: Digest) -> Result<(Digest, u64)> {
        // invariant: `out` is only taken here, and the writers' `commit` consume them.
        let out = self.out.take().expect("blob writer used after commit");
        let file = out.finish().map_err(Error::fs("write", &self.temp))?;
        file.sync_all().map_err(Error::fs("fsync", &self.temp))?;
        drop(file);
        let dest = self.store.blob_path(&digest);
        if dest.is_file() {
            // Already there (the content is the same by definition): drop ours.
            let _ = fs::remove_file(&self.temp);
            return Ok((digest, self.len));
        }
        fs::rename(&self.temp, &dest).map_err(Error::fs("rename into place", &dest))?;
        layout::sync_parent(&dest)?;
        Ok((digest, self.len))
    }
}

impl Write for TempBlob<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        let n = out.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for HashedBlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TempBlob<'_> {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Store {
    /// Starts writing a blob.
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>> {
        Ok(BlobWriter {
            out: Hasher::new(self.temp_blob()?),
        })
    }

    /// Starts writing a blob that the caller hashes as it writes (see
    /// [`HashedBlobWriter`]).
    pub fn hashed_blob_writer(&self) -> Result<HashedBlobWriter<'_>> {
        Ok(HashedBlobWriter {
            temp: self.temp_blob()?,
        })
    }

    fn temp_blob(&self) -> Result<TempBlob<'_>> {
        let temp = self.temp_path("blob");
        let file = File::create(&temp).map_err(Error::fs("create", &temp))?;
        Ok(TempBlob {
            store: self,
            temp,
            out: Some(DirectFile::new(file)),
            len: 0,
        })
    }

    /// Stores `bytes` as a blob; returns its digest and size.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) {
            return Ok((digest, bytes.len() as u64));
        }
        let mut writer = self.blob_writer()?;
        let temp = writer.temp_path().to_owned();
        writer.write_all(bytes).map_err(Error::fs("write", &temp))?;
        writer.commit(Some(digest))
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS_DIR).join(digest.hex())
    }

    /// Whether the blob `digest` is in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens the blob `digest` for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| not_found_or(e, digest, &path, "open"))
    }

    /// The size in bytes of the blob `digest`.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| not_found_or(e, digest, &path, "stat"))
    }

    /// Reads a (JSON) blob whole and checks its digest; refuses blobs over
    /// [`MAX_JSON_BLOB`] bytes.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let size = self.blob_size(digest)?;
        if size > MAX_JSON_BLOB {
            return Err(Error::BlobTooLarge {
                digest: *digest,
                size,
                limit: MAX_JSON_BLOB,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        self.open_blob(digest)?
            .take(MAX_JSON_BLOB)
            .read_to_end(&mut bytes)
            .map_err(Error::fs("read", &path))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }
}

fn not_found_or(e: io::Error, digest: &Digest, path: &Path, op: &'static str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::BlobNotFound { digest: *digest }
    } else {
        Error::fs(op, path)(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn work_files(store: &Store) -> usize {
        fs::read_dir(store.work_dir()).unwrap().count()
    }

    #[test]
    fn streaming_commit_names_the_blob_by_digest() {
        let (_d, store) = store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (digest, size) = w.commit(None).unwrap();
        assert_eq!((digest, size), (Digest::of(b"hello world"), 11));
        assert_eq!(fs::read(store.blob_path(&digest)).unwrap(), b"hello world");
        assert_eq!(store.blob_size(&digest).unwrap(), 11);
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello world");
        assert_eq!(work_files(&store), 0);
    }

    #[test]
    fn digest_mismatch_leaves_nothing() {
        let (_d, store) = store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"actual").unwrap();
        let expected = Digest::of(b"expected");
        let err = w.commit(Some(expected)).unwrap_err();
        assert!(
            matches!(err, Error::DigestMismatch { expected: e, actual }
                if e == expected && actual == Digest::of(b"actual")),
            "{err}"
        );
        assert!(!store.has_blob(&Digest::of(b"actual")));
        assert!(!store.has_blob(&expected));
        assert_eq!(work_files(&store), 0);
        let blobs = store.root().join(BLOBS_DIR);
        assert_eq!(fs::read_dir(blobs).unwrap().count(), 0);
    }

    #[test]
    fn commit_is_idempotent() {
        let (_d, store) = store();
        let a = store.put_bytes(b"same").unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"same").unwrap();
        assert_eq!(w.commit(Some(a.0)).unwrap(), a);
        assert_eq!(store.put_bytes(b"same").unwrap(), a);
        assert_eq!(work_files(&store), 0);
    }

    #[test]
    fn a_hashed_writer_commits_under_the_callers_digest_and_checks_the_size() {
        let (_d, store) = store();
        let data = vec![5u8; 9 << 20]; // more than two direct-write chunks
        let mut w = store.hashed_blob_writer().unwrap();
        w.write_all(&data).unwrap();
        let d = Digest::of(&data);
        assert_eq!(
            w.commit(d, data.len() as u64).unwrap(),
            (d, data.len() as u64)
        );
        assert_eq!(fs::read(store.blob_path(&d)).unwrap(), data);

        let mut w = store.hashed_blob_writer().unwrap();
        w.write_all(b"four").unwrap();
        let err = w.commit(Digest::of(b"four"), 5).unwrap_err();
        assert!(
            matches!(
                err,
                Error::SizeMismatch {
                    expected: 5,
                    actual: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!store.has_blob(&Digest::of(b"four")));
        assert_eq!(work_files(&store), 0);
    }

    #[test]
    fn dropped_writer_removes_its_temp() {
        let (_d, store) = store();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(work_files(&store), 0);
    }

    #[test]
    fn missing_blob_is_named() {
        let (_d, store) = store();
        let d = Digest::of(b"nope");
        assert!(matches!(store.open_blob(&d), Err(Error::BlobNotFound { digest }) if digest == d));
        assert!(matches!(
            store.blob_size(&d),
            Err(Error::BlobNotFound { .. })
        ));
    }

    #[test]
    fn corrupt_blob_is_detected_on_read() {
        let (_d, store) = store();
        let (d, _) = store.put_bytes(b"{}").unwrap();
        fs::write(store.blob_path(&d), b"[]").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(Error::DigestMismatch { .. })
        ));
    }

    #[test]
    fn concurrent_writers_of_one_blob() {
        let (_d, store) = store();
        let data = vec![7u8; 300_000];
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let own = Store::open(store.root()).unwrap();
                    let mut w = own.blob_writer().unwrap();
                    for chunk in data.chunks(4096) {
                        w.write_all(chunk).unwrap();
                    }
                    w.commit(Some(Digest::of(&data))).unwrap();
                });
            }
        });
        assert_eq!(store.read_blob(&Digest::of(&data)).unwrap(), data);
    }
}
