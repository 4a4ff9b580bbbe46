//! Cache records: `<store>/cache/records/<key hex>.json`, one per step result.
//!
//! A record says what a step with that key produced: a layer (blob digest, size, media
//! type, diff ID) or none. The configuration change of a step is not stored: the plan
//! computes it from the Dockerfile, so a hit only needs the layer. A record is written
//! (temp file, fsync, rename) only after its blob is in the store, so a crash leaves
//! either no record or a complete one; a record whose blob is missing or damaged is
//! treated as a miss and replaced. A record also keeps its blob's stamp
//! (`blob_stamp.rs`): on a hit a changed stamp means a re-hash, and a damaged blob is
//! removed with the record, so the step runs again and writes a good one. The record
//! file's modification time is its last use (touched on every hit), which is what
//! pruning orders by.

use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::blob_stamp::{judge, remove_damaged, BlobStamp, BlobState};
use super::error::{CacheError, Result};
use super::key::{CacheKey, KEY_VERSION};
use crate::digest::Digest;
use crate::store::Store;

/// The layer a step made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRecord {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
    /// The chain ID of the layer stack it tops (its snapshot's name), so that a prune
    /// keeps the snapshots that records use. Absent in records written before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Digest>,
}

impl LayerRecord {
    /// The blob's descriptor.
    pub fn descriptor(&self) -> crate::image::LayerDescriptor {
        crate::image::LayerDescriptor {
            digest: self.digest,
            size: self.size,
            media_type: self.media_type.clone(),
        }
    }
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// [`KEY_VERSION`] of the key.
    pub version: String,
    pub key: CacheKey,
    /// `None`: the step changed nothing (no layer).
    pub layer: Option<LayerRecord>,
    /// When the step ran (RFC 3339): a hit keeps it in the image's history, so a
    /// rebuild without changes gives the same image.
    #[serde(default)]
    pub created: Option<String>,
    /// The layer blob file's stamp when it was last verified (set by [`Records::put`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_stamp: Option<BlobStamp>,
}

impl Record {
    /// A record for `key`.
    pub fn new(key: CacheKey, layer: Option<LayerRecord>) -> Self {
        Record {
            version: KEY_VERSION.to_owned(),
            key,
            layer,
            created: None,
            blob_stamp: None,
        }
    }
}

/// The record store of one image store.
pub struct Records<'a> {
    store: &'a Store,
    dir: PathBuf,
}

impl<'a> Records<'a> {
    /// The records of `store` (the directory is made on first write).
    pub fn new(store: &'a Store) -> Self {
        Records {
            dir: store.cache_dir().join("records"),
            store,
        }
    }

    /// Where the record of `key` lives.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The record of `key`, if there is a usable one: readable, of this version, for
    /// this key, and with its blob in the store. A hit refreshes its last-use time.
    pub fn get(&self, key: &CacheKey) -> Result<Option<Record>> {
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
            return Ok(None); // torn or foreign: a miss, rewritten by the next put
        };
        if record.version != KEY_VERSION || record.key != *key {
            return Ok(None);
        }
        let mut record = record;
        if let Some(layer) = &record.layer {
            let blob = self.store.blob_path(&layer.digest);
            match judge(&blob, &layer.digest, layer.size, record.blob_stamp.as_ref()) {
                BlobState::Unchanged => {}
                BlobState::Verified(stamp) => {
                    record.blob_stamp = Some(stamp);
                    self.write(&record)?;
                }
                BlobState::Missing => return Ok(None),
                BlobState::Damaged(stamp) => {
                    remove_damaged(&blob, &stamp);
                    self.remove(key)?;
                    return Ok(None);
                }
            }
        }
        let now = fs::FileTimes::new().set_modified(SystemTime::now());
        if let Ok(file) = fs::File::options().write(true).open(&path) {
            let _ = file.set_times(now);
        }
        Ok(Some(record))
    }

    /// Writes `record` (atomically; the blob must already be in the store) with the
    /// blob's current stamp.
    pub fn put(&self, record: &Record) -> Result<()> {
        let mut record = record.clone();
        record.blob_stamp = record
            .layer
            .as_ref()
            .and_then(|l| BlobStamp::read(&self.store.blob_path(&l.digest)));
        self.write(&record)
    }

    fn write(&self, record: &Record) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|source| CacheError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let bytes = serde_json::to_vec(record).map_err(|e| CacheError::Encode {
            reason: e.to_string(),
        })?;
        crate::store::layout::write_atomic(self.store.work_dir(), &self.path(&record.key), &bytes)?;
        Ok(())
    }

    /// Every record file: its key (from the file name) and the record, `None` when
    /// the file cannot be used (torn, foreign, another key version, another key).
    pub fn list(&self) -> Result<Vec<(String, Option<Record>)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(CacheError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| CacheError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".json") else {
                out.push((name, None));
                continue;
            };
            let record = fs::read(entry.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
                .filter(|r| r.version == KEY_VERSION && r.key.hex() == hex);
            out.push((hex.to_owned(), record));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes the record of `key` (a damaged one, or when pruning).
    pub fn remove(&self, key: &CacheKey) -> Result<()> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CacheError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_need_their_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let records = Records::new(&store);
        let key = Digest::of(b"step");
        assert_eq!(records.get(&key).unwrap(), None);
        let empty = Record::new(key, None);
        records.put(&empty).unwrap();
        assert_eq!(records.get(&key).unwrap(), Some(empty));

        let (digest, size) = store.put_bytes(b"layer bytes").unwrap();
        let key2 = Digest::of(b"step 2");
        let with_layer = Record::new(
            key2,
            Some(LayerRecord {
                digest,
                size,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                diff_id: digest,
                chain: Some(digest),
            }),
        );
        records.put(&with_layer).unwrap();
        let got = records.get(&key2).unwrap().unwrap();
        assert_eq!(got.layer, with_layer.layer);
        assert!(got.blob_stamp.is_some());
        let listed = records.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|(_, r)| r.is_some()));
        fs::remove_file(store.blob_path(&digest)).unwrap();
        assert_eq!(
            records.get(&key2).unwrap(),
            None,
            "a missing blob is a miss"
        );
    }

    #[test]
    fn a_damaged_blob_is_a_miss_and_goes_with_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let records = Records::new(&store);
        let (digest, size) = store.put_bytes(b"layer bytes").unwrap();
        let key = Digest::of(b"step");
        let layer = LayerRecord {
            digest,
            size,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            diff_id: digest,
            chain: None,
        };
        records.put(&Record::new(key, Some(layer))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        fs::write(store.blob_path(&digest), b"layer bytez").unwrap();
        assert_eq!(records.get(&key).unwrap(), None);
        assert!(!store.has_blob(&digest), "the damaged blob is removed");
        assert!(!records.path(&key).exists(), "and its record");
    }

    #[test]
    fn torn_or_foreign_records_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let records = Records::new(&store);
        let key = Digest::of(b"k");
        records.put(&Record::new(key, None)).unwrap();
        fs::write(records.path(&key), b"{\"version\":").unwrap();
        assert_eq!(records.get(&key).unwrap(), None);
        let other = Record::new(Digest::of(b"other"), None);
        fs::write(records.path(&key), serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(
            records.get(&key).unwrap(),
            None,
            "a record under the wrong key"
        );
    }
}
