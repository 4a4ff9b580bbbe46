//! The records' part of `rbuild store check`: every `cache/records/<key>.json` parses,
//! is of this key version and for the key its name says, and its layer blob is present,
//! intact (as the store's blob check found it) and of the recorded size.
//!
//! A record that fails is useless (a lookup treats it as a miss), so repair removes it;
//! it must run after the blob check and its repair, so records of removed blobs go too.

use std::fs;

use super::error::{CacheError, Result};
use super::key::KEY_VERSION;
use super::record::{Record, Records};
use crate::digest::Digest;
use crate::store::check::{removal, Finding, Report};
use crate::store::Store;

/// Checks every cache record of `store` against `report.blobs`, adding findings to
/// `report`; with `repair`, removes the records that fail.
pub fn check_records(store: &Store, repair: bool, report: &mut Report) -> Result<()> {
    let records = Records::new(store);
    let dir = store.cache_dir().join("records");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CacheError::Io { path: dir, source }),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let key = name
            .strip_suffix(".json")
            .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
        let problem = match key {
            None => Some("not a cache record (named `<key hex>.json`)".to_owned()),
            Some(key) => {
                report.checked.records += 1;
                judge(&records, &key, report)
            }
        };
        if let Some(problem) = problem {
            let object = key.map_or(name, |k| k.hex());
            let mut f = Finding::damage("record", object, &path, problem);
            if repair {
                f = f.repaired(removal(&path));
            }
            report.findings.push(f);
        }
    }
    Ok(())
}

/// What is wrong with the record of `key`, if anything.
fn judge(records: &Records<'_>, key: &Digest, report: &Report) -> Option<String> {
    let path = records.path(key);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) => return Some(format!("cannot read: {e}")),
    };
    let record: Record = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return Some(format!("torn or not a record: {e}")),
    };
    if record.version != KEY_VERSION {
        return Some(format!(
            "key version {:?}, this rbuild writes {KEY_VERSION:?}",
            record.version
        ));
    }
    if record.key != *key {
        return Some(format!("holds the record of key {}", record.key.hex()));
    }
    let layer = record.layer.as_ref()?;
    report
        .blob_ok(&layer.digest, layer.size)
        .err()
        .map(|e| format!("its layer {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::LayerRecord;

    #[test]
    fn records_of_missing_or_bad_blobs_and_torn_ones_are_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let records = Records::new(&store);
        let (good, size) = store.put_bytes(b"good layer").unwrap();
        let (bad, _) = store.put_bytes(b"bad layer!").unwrap();
        let layer = |digest| LayerRecord {
            digest,
            size,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            diff_id: digest,
            chain: None,
        };
        let keys: Vec<Digest> = (0..4u8).map(|i| Digest::of(&[i])).collect();
        records
            .put(&Record::new(keys[0], Some(layer(good))))
            .unwrap();
        records
            .put(&Record::new(keys[1], Some(layer(bad))))
            .unwrap();
        records.put(&Record::new(keys[2], None)).unwrap();
        fs::write(records.path(&keys[3]), b"{\"vers").unwrap();
        fs::write(store.blob_path(&bad), b"bad layer?").unwrap();

        let mut report = crate::store::check::check(&store, false).unwrap();
        assert!(report.damaged(), "the bad blob");
        check_records(&store, false, &mut report).unwrap();
        let records_found: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.kind == "record")
            .map(|f| f.object.clone())
            .collect();
        assert_eq!(records_found.len(), 2, "{:?}", report.findings);
        assert!(records_found.contains(&keys[1].hex()) && records_found.contains(&keys[3].hex()));
        assert_eq!(report.checked.records, 4);

        let mut report = crate::store::check::check(&store, true).unwrap();
        check_records(&store, true, &mut report).unwrap();
        assert!(report.findings.iter().all(|f| f.repaired.is_some()));
        let mut after = crate::store::check::check(&store, false).unwrap();
        check_records(&store, false, &mut after).unwrap();
        assert!(after.findings.is_empty(), "{:?}", after.findings);
        assert!(records.get(&keys[0]).unwrap().is_some());
    }
}
