//! Tests of the prune policy on small hand-made stores.

use std::fs;
use std::time::{Duration, SystemTime};

use super::*;
use crate::cache::record::{LayerRecord, Record};
use crate::store::testutil::image_in;
use crate::store::ImageName;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

/// A record whose layer is a blob of `bytes`, last used `age` ago.
fn record(store: &Store, step: &[u8], bytes: &[u8], age: Duration) -> (Digest, Digest) {
    let (digest, size) = store.put_bytes(bytes).unwrap();
    let key = Digest::of(step);
    let layer = LayerRecord {
        digest,
        size,
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        diff_id: digest,
        chain: Some(digest),
    };
    let records = Records::new(store);
    records.put(&Record::new(key, Some(layer))).unwrap();
    let when = SystemTime::now() - age;
    for path in [records.path(&key), store.blob_path(&digest)] {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(when).unwrap();
    }
    (key, digest)
}

fn run(store: &Store, opts: &PruneOptions) -> PruneReport {
    let gc = store.gc_exclusive().unwrap();
    prune(store, &gc, opts).unwrap()
}

fn names(report: &PruneReport, kind: Kind) -> Vec<String> {
    report
        .removed
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.name.clone())
        .collect()
}

#[test]
fn default_removes_only_dangling() {
    let (_d, store) = store();
    let (_, kept_blob) = record(&store, b"step", &[1; 5000], Duration::ZERO);
    let (orphan, _) = store.put_bytes(&[2; 5000]).unwrap();
    let image = image_in(&store, b"image layer");
    store
        .set_name(&ImageName::parse("app:1").unwrap(), &image)
        .unwrap();
    // A snapshot nothing uses, and one the record's chain names.
    let stale = Digest::of(b"stale chain");
    fs::create_dir(store.snapshot_path(&stale)).unwrap();
    fs::create_dir(store.snapshot_path(&kept_blob)).unwrap();
    let report = run(&store, &PruneOptions::default());
    assert_eq!(names(&report, Kind::Blob), [orphan.hex()]);
    assert_eq!(names(&report, Kind::Snapshot), [stale.hex()]);
    assert_eq!(report.removed.len(), 2, "{report:?}");
    assert!(store.has_blob(&kept_blob) && !store.has_blob(&orphan));
    assert!(store.has_snapshot(&kept_blob) && !store.has_snapshot(&stale));
    assert_eq!(report.before - report.after, report.reclaimed);
    assert!(report.reclaimed >= 4096, "{report:?}");
}

#[test]
fn all_never_removes_what_images_need() {
    let (_d, store) = store();
    let image = image_in(&store, b"shared layer");
    store
        .set_name(&ImageName::parse("app:1").unwrap(), &image)
        .unwrap();
    // A record whose blob is the image's layer, and one with its own blob.
    let (_, shared) = record(&store, b"a", b"shared layer", Duration::ZERO);
    let (_, own) = record(&store, b"b", b"own layer", Duration::ZERO);
    let report = run(
        &store,
        &PruneOptions {
            all: true,
            ..PruneOptions::default()
        },
    );
    assert_eq!(names(&report, Kind::Record).len(), 2);
    assert_eq!(names(&report, Kind::Blob), [own.hex()]);
    let roots = store.image_roots(&[]).unwrap();
    assert!(roots.blobs.iter().all(|b| store.has_blob(b)));
    assert!(store.has_blob(&shared));
    // An unnamed image the caller keeps is safe too.
    let unnamed = image_in(&store, b"fresh");
    let keep = PruneOptions {
        all: true,
        keep_images: vec![unnamed.clone()],
        ..PruneOptions::default()
    };
    run(&store, &keep);
    assert!(store.has_blob(&unnamed.digest) && store.has_blob(&Digest::of(b"fresh")));
    run(
        &store,
        &PruneOptions {
            all: true,
            ..PruneOptions::default()
        },
    );
    assert!(!store.has_blob(&unnamed.digest));
}

#[test]
fn keep_storage_removes_least_recently_used_first() {
    let (_d, store) = store();
    let day = Duration::from_secs(86_400);
    let (old, _) = record(&store, b"old", &[1; 40_000], day * 3);
    let (mid, _) = record(&store, b"mid", &[2; 40_000], day * 2);
    let (new, _) = record(&store, b"new", &[3; 40_000], day);
    let size = crate::store::usage::Inventory::measure(store.root(), &[])
        .unwrap()
        .total;
    // Room for everything but about one record and its blob.
    let report = run(
        &store,
        &PruneOptions {
            keep_storage: Some(size - 30_000),
            ..PruneOptions::default()
        },
    );
    assert_eq!(names(&report, Kind::Record), [old.hex()]);
    assert_eq!(
        names(&report, Kind::Blob).len(),
        1,
        "the record's blob goes with it"
    );
    assert!(report.after <= size - 30_000);
    let records = Records::new(&store);
    assert!(records.get(&mid).unwrap().is_some() && records.get(&new).unwrap().is_some());
}

#[test]
fn until_keeps_recent_items() {
    let (_d, store) = store();
    let hour = Duration::from_secs(3600);
    let (old, _) = record(&store, b"old", b"old layer", hour * 48);
    let (recent, blob) = record(&store, b"recent", b"recent layer", Duration::ZERO);
    let report = run(
        &store,
        &PruneOptions {
            all: true,
            until: Some(hour * 24),
            ..PruneOptions::default()
        },
    );
    assert_eq!(names(&report, Kind::Record), [old.hex()]);
    let records = Records::new(&store);
    assert!(records.get(&recent).unwrap().is_some());
    assert!(store.has_blob(&blob));
}

#[test]
fn broken_records_and_leftovers_are_dangling() {
    let (_d, store) = store();
    let (key, blob) = record(&store, b"step", b"layer", Duration::ZERO);
    fs::remove_file(store.blob_path(&blob)).unwrap();
    let orphan_sidecar = Digest::of(b"gone");
    store.touch_snapshot(&orphan_sidecar);
    let report = run(&store, &PruneOptions::default());
    assert_eq!(names(&report, Kind::Record), [key.hex()]);
    assert_eq!(names(&report, Kind::Snapshot), [orphan_sidecar.hex()]);
    assert!(!store.snapshot_used_path(&orphan_sidecar).exists());
}

#[test]
fn dry_run_removes_nothing() {
    let (_d, store) = store();
    let (orphan, _) = store.put_bytes(b"orphan").unwrap();
    let report = run(
        &store,
        &PruneOptions {
            dry_run: true,
            ..PruneOptions::default()
        },
    );
    assert_eq!(names(&report, Kind::Blob), [orphan.hex()]);
    assert!(store.has_blob(&orphan));
}
