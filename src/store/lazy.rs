//! Lazy blobs: a blob an image in the store names but that stays in a registry until
//! something reads its content. `<store>/cache/lazy/<hex>.json` records where it is
//! (registry, repository) with its size and media type; the blob file is absent.
//! The registry module fetches it on first use (digest checked) and then removes the
//! record; a push to the same registry mounts it without fetching. A record that does
//! not parse or names another digest is treated as absent (the blob is then missing).

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::Store;
use crate::digest::Digest;
use crate::fs_error::FsError;

/// Where a lazy blob can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LazyBlob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    /// `team/cache`.
    pub repository: String,
}

impl LazyBlob {
    /// `registry/repository`, for messages.
    pub fn remote(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl Store {
    fn lazy_dir(&self) -> PathBuf {
        self.cache_dir().join("lazy")
    }

    pub(crate) fn lazy_path(&self, digest: &Digest) -> PathBuf {
        self.lazy_dir().join(format!("{}.json", digest.hex()))
    }

    /// Records that blob `blob.digest` may be fetched from a registry instead of being
    /// kept here (nothing when the blob is already present).
    pub fn add_lazy(&self, blob: &LazyBlob) -> Result<()> {
        if self.has_blob(&blob.digest) {
            return Ok(());
        }
        let dir = self.lazy_dir();
        std::fs::create_dir_all(&dir).map_err(Error::fs("create", &dir))?;
        let path = self.lazy_path(&blob.digest);
        let text = serde_json::to_vec(blob).unwrap_or_default();
        let mut temp = tempfile::NamedTempFile::new_in(self.work_dir())
            .map_err(Error::fs("create a temp file in", self.work_dir()))?;
        temp.write_all(&text).map_err(Error::fs("write", &path))?;
        temp.persist(&path)
            .map_err(|e| e.error)
            .map_err(Error::fs("rename into", &path))?;
        Ok(())
    }

    /// The lazy record of `digest`, when the blob is absent and its record sound.
    pub fn lazy_blob(&self, digest: &Digest) -> Option<LazyBlob> {
        if self.has_blob(digest) {
            return None;
        }
        let bytes = std::fs::read(self.lazy_path(digest)).ok()?;
        let blob: LazyBlob = serde_json::from_slice(&bytes).ok()?;
        (blob.digest == *digest).then_some(blob)
    }

    /// Whether blob `digest` is here or lazy (an image may name it).
    pub fn has_blob_or_lazy(&self, digest: &Digest) -> bool {
        self.has_blob(digest) || self.lazy_blob(digest).is_some()
    }

    /// The size of blob `digest`: its file's, or its lazy record's; an error when it
    /// is neither here nor lazy.
    pub fn blob_or_lazy_size(&self, digest: &Digest) -> Result<u64> {
        match self.lazy_blob(digest) {
            Some(lazy) => Ok(lazy.size),
            None => self.blob_size(digest),
        }
    }

    /// Forgets the lazy record of `digest` (fetched, or no longer needed).
    pub fn remove_lazy(&self, digest: &Digest) {
        let _ = std::fs::remove_file(self.lazy_path(digest));
    }

    /// The digests with a lazy record (sound or not), sorted.
    pub fn lazy_digests(&self) -> Vec<Digest> {
        let Ok(entries) = std::fs::read_dir(self.lazy_dir()) else {
            return Vec::new();
        };
        let mut digests: Vec<Digest> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let hex = name.strip_suffix(".json")?;
                format!("sha256:{hex}").parse().ok()
            })
            .collect();
        digests.sort();
        digests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lazy(digest: Digest) -> LazyBlob {
        LazyBlob {
            digest,
            size: 5,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            registry: "127.0.0.1:5000".into(),
            repository: "team/cache".into(),
        }
    }

    #[test]
    fn a_lazy_record_lives_until_the_blob_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        assert_eq!(store.lazy_blob(&d), None);
        store.add_lazy(&lazy(d)).unwrap();
        assert_eq!(store.lazy_blob(&d), Some(lazy(d)));
        assert_eq!(store.blob_or_lazy_size(&d).unwrap(), 5);
        assert_eq!(store.lazy_digests(), vec![d]);
        assert_eq!(lazy(d).remote(), "127.0.0.1:5000/team/cache");
        store.remove_lazy(&d);
        assert_eq!(store.lazy_blob(&d), None);
        assert!(store.lazy_digests().is_empty());
        assert!(store.blob_or_lazy_size(&d).is_err());
    }

    #[test]
    fn a_record_naming_another_digest_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, other) = (Digest::of(b"a"), Digest::of(b"b"));
        store.add_lazy(&lazy(other)).unwrap();
        std::fs::rename(store.lazy_path(&other), store.lazy_path(&d)).unwrap();
        assert_eq!(store.lazy_blob(&d), None);
    }
}
