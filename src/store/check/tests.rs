use std::fs;

use super::*;
use crate::image::{canonical_json, Descriptor, Manifest};
use crate::layers::{write_layer, Changes, Compression, WriteOptions};
use crate::store::{fingerprint, read_sidecar, ImageName, Prepared, Sidecar, SnapshotInfo};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn kinds(report: &Report) -> Vec<(&'static str, Severity)> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.severity))
        .collect()
}

/// A named image of one layer; returns the layer's digest.
fn image(store: &Store, name: &str) -> Digest {
    let (layer, lsize) = store.put_bytes(b"layer bytes").unwrap();
    let (config, csize) = store.put_bytes(b"{}").unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(crate::image::media_types::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(crate::image::media_types::OCI_CONFIG, config, csize),
        layers: vec![Descriptor::new(crate::layers::MEDIA_TYPE_TAR, layer, lsize)],
        subject: None,
        annotations: Default::default(),
    };
    let bytes = canonical_json(&manifest).unwrap();
    let (digest, size) = store.put_bytes(&bytes).unwrap();
    let desc = Descriptor::new(crate::image::media_types::OCI_MANIFEST, digest, size);
    store
        .set_name(&ImageName::parse(name).unwrap(), &desc)
        .unwrap();
    layer
}

fn flip(path: &std::path::Path) {
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut bytes = fs::read(path).unwrap();
    bytes[0] ^= 1;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_clean_store_is_clean() {
    let (_d, store) = store();
    image(&store, "app:1");
    let report = check(&store, false).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!((report.checked.blobs, report.checked.images), (3, 1));
}

#[test]
fn a_damaged_layer_fails_its_blob_and_image_and_repair_removes_both() {
    let (_d, store) = store();
    let layer = image(&store, "app:1");
    flip(&store.blob_path(&layer));
    let report = check(&store, false).unwrap();
    assert_eq!(
        kinds(&report),
        [("blob", Severity::Damage), ("image", Severity::Damage)]
    );
    assert!(
        report.findings[1].problem.contains("layer 1"),
        "{:?}",
        report.findings
    );
    let repaired = check(&store, true).unwrap();
    assert!(repaired.findings.iter().all(|f| f.repaired.is_some()));
    assert!(!store.has_blob(&layer));
    assert!(store.list().unwrap().is_empty());
    assert!(check(&store, false).unwrap().findings.is_empty());
}

#[test]
fn a_torn_index_is_replaced_and_kept_aside() {
    let (d, store) = store();
    fs::write(d.path().join("index.json"), b"{\"manif").unwrap();
    let report = check(&store, true).unwrap();
    assert_eq!(kinds(&report), [("layout", Severity::Damage)]);
    assert!(check(&store, false).unwrap().findings.is_empty());
    let aside = fs::read_dir(d.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("index.json.broken")
        })
        .count();
    assert_eq!(aside, 1);
}

#[test]
fn dead_work_dirs_are_leftovers() {
    let (d, store) = store();
    let tmp = d.path().join("tmp");
    fs::create_dir_all(tmp.join("w-dead/sub")).unwrap();
    fs::write(tmp.join("w-dead.lock"), b"").unwrap();
    let report = check(&store, false).unwrap();
    assert_eq!(kinds(&report), [("temp", Severity::Leftover)]);
    assert!(!report.damaged());
    check(&store, true).unwrap();
    assert!(!tmp.join("w-dead").exists());
    assert!(store.work_dir().is_dir(), "our own work dir stays");
}

/// A snapshot of plain files (no whiteouts: no root needed) committed with its real
/// diff ID.
/// `d/f` with fixed mtimes: the layer and the snapshot are written apart, and a second
/// boundary between them would otherwise give the snapshot other mtimes than the layer
/// (a diff ID mismatch under load).
fn fill(root: &std::path::Path) {
    let when = filetime::FileTime::from_unix_time(1_700_000_000, 0);
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/f"), b"content").unwrap();
    filetime::set_file_mtime(root.join("d/f"), when).unwrap();
    filetime::set_file_mtime(root.join("d"), when).unwrap();
}

fn snapshot(store: &Store) -> Digest {
    let tree = tempfile::tempdir().unwrap();
    fill(tree.path());
    let plain = WriteOptions {
        compression: Compression::None,
        ..WriteOptions::default()
    };
    let blob = write_layer(Changes::Upperdir(tree.path()), &plain, std::io::sink()).unwrap();
    let Prepared::Build(b) = store.prepare_snapshot(&blob.diff_id).unwrap() else {
        panic!("new snapshot");
    };
    fill(b.path());
    let info = SnapshotInfo {
        parent: None,
        diff_id: blob.diff_id,
        source_date_epoch: None,
        skip: Vec::new(),
        layer_chunks: None,
    };
    b.commit(&info).unwrap();
    blob.diff_id
}

#[test]
fn snapshots_are_verified_by_fingerprint_and_diff_id() {
    let (_d, store) = store();
    let chain = snapshot(&store);
    let report = check(&store, false).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.checked.snapshots, 1);
    flip(&store.snapshot_path(&chain).join("d/f"));
    let report = check(&store, false).unwrap();
    assert_eq!(kinds(&report), [("snapshot", Severity::Damage)]);
    assert!(
        report.findings[0].problem.contains("modified"),
        "{:?}",
        report.findings
    );
    check(&store, true).unwrap();
    assert!(!store.has_snapshot(&chain));
    assert!(check(&store, false).unwrap().findings.is_empty());
}

#[test]
fn a_snapshot_whose_content_is_not_its_layer_is_found() {
    let (_d, store) = store();
    let chain = snapshot(&store);
    // Same fingerprint, wrong content: a sidecar naming another layer's diff ID would
    // be inconsistent with the chain, so rewrite the fingerprint to match a change.
    flip(&store.snapshot_path(&chain).join("d/f"));
    let sidecar = store.snapshot_sidecar_path(&chain);
    let Sidecar::Valid(mut meta) = read_sidecar(&sidecar).unwrap() else {
        panic!("sidecar");
    };
    meta.fingerprint = fingerprint(&store.snapshot_path(&chain), meta.fingerprint_version())
        .unwrap()
        .digest;
    fs::write(&sidecar, serde_json::to_vec(&meta).unwrap()).unwrap();
    let report = check(&store, false).unwrap();
    assert_eq!(kinds(&report), [("snapshot", Severity::Damage)]);
    assert!(
        report.findings[0].problem.contains("diff ID"),
        "{:?}",
        report.findings
    );
}

#[test]
fn orphan_sidecars_are_leftovers_and_strangers_are_damage() {
    let (_d, store) = store();
    let chain = snapshot(&store);
    fs::remove_dir_all(store.snapshot_path(&chain)).unwrap();
    fs::write(store.root().join("snapshots/stray"), b"x").unwrap();
    let used = format!("snapshots/{}.used", chain.hex());
    fs::write(store.root().join(&used), b"").unwrap();
    let report = check(&store, false).unwrap();
    assert_eq!(
        kinds(&report),
        [
            ("snapshot", Severity::Leftover),
            ("snapshot", Severity::Damage)
        ]
    );
    check(&store, true).unwrap();
    assert!(check(&store, false).unwrap().findings.is_empty());
    assert!(
        store.root().join(used).is_file(),
        "gc's marks are left alone"
    );
}

/// Makes `layer` lazy: its file goes, a record says where it is.
fn make_lazy(store: &Store, layer: &Digest, size: u64) {
    let path = store.blob_path(layer);
    let size = if size == 0 {
        fs::metadata(&path).unwrap().len()
    } else {
        size
    };
    fs::remove_file(&path).unwrap();
    store
        .add_lazy(&crate::store::LazyBlob {
            digest: *layer,
            size,
            media_type: crate::layers::MEDIA_TYPE_TAR.into(),
            registry: "127.0.0.1:5000".into(),
            repository: "cache/app".into(),
        })
        .unwrap();
}

#[test]
fn a_lazy_layer_is_counted_not_missing_and_a_wrong_one_is_damage() {
    let (_d, store) = store();
    let layer = image(&store, "app:1");
    make_lazy(&store, &layer, 0);
    let report = check(&store, false).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.checked.lazy, 1);

    // A record whose size is not the manifest's: the image is damaged.
    make_lazy_size(&store, &layer, 1);
    let report = check(&store, false).unwrap();
    assert_eq!(kinds(&report), [("image", Severity::Damage)]);

    // A record that does not parse is damage; repair removes it, then the image.
    fs::write(store.lazy_path(&layer), b"{").unwrap();
    let report = check(&store, false).unwrap();
    assert_eq!(
        kinds(&report),
        [("lazy", Severity::Damage), ("image", Severity::Damage)]
    );
    check(&store, true).unwrap();
    assert!(store.lazy_digests().is_empty());
    assert!(check(&store, false).unwrap().findings.is_empty());
}

#[test]
fn a_lazy_record_of_a_present_blob_is_a_leftover() {
    let (_d, store) = store();
    let layer = image(&store, "app:1");
    let bytes = fs::read(store.blob_path(&layer)).unwrap();
    make_lazy(&store, &layer, 0);
    store.put_bytes(&bytes).unwrap();
    let report = check(&store, false).unwrap();
    assert_eq!(kinds(&report), [("lazy", Severity::Leftover)]);
    check(&store, true).unwrap();
    assert!(store.lazy_digests().is_empty());
}

fn make_lazy_size(store: &Store, layer: &Digest, size: u64) {
    let mut lazy = store.lazy_blob(layer).unwrap();
    lazy.size = size;
    store.remove_lazy(layer);
    store.add_lazy(&lazy).unwrap();
}
