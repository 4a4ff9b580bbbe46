//! Tests of the store accounting walk.

use super::*;

#[test]
fn hard_links_count_once_and_free_with_their_last_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = crate::store::Store::open(root).unwrap();
    let skip = [store.work_dir().to_owned(), {
        let mut p = store.work_dir().as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }];
    let base = Inventory::measure(root, &skip).unwrap().total;
    let a = root.join("snapshots/aa");
    let b = root.join("snapshots/bb");
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(a.join("big"), vec![7u8; 100_000]).unwrap();
    fs::hard_link(a.join("big"), b.join("big")).unwrap();
    let mut inv = Inventory::measure(root, &skip).unwrap();
    let file = fs::metadata(a.join("big")).unwrap().blocks() * 512;
    let dir_blocks = fs::metadata(&a).unwrap().blocks() * 512;
    assert_eq!(inv.total, base + file + 2 * dir_blocks);
    let snaps: Vec<usize> = (0..inv.entries.len())
        .filter(|&i| inv.entries[i].kind == Kind::Snapshot)
        .collect();
    assert_eq!(snaps.len(), 2);
    assert_eq!(inv.entries[snaps[0]].bytes, file + dir_blocks, "first met");
    assert_eq!(inv.entries[snaps[1]].bytes, dir_blocks);
    // Removing one snapshot frees only its directory: the file has another link.
    assert_eq!(inv.remove(snaps[1]), dir_blocks);
    assert_eq!(inv.remove(snaps[0]), dir_blocks + file);
    assert_eq!(inv.remove(snaps[0]), 0, "already removed");
    assert_eq!(inv.total, base);
}

#[test]
fn kinds_partition_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crate::store::Store::open(root).unwrap();
    fs::create_dir_all(root.join("cache/records")).unwrap();
    fs::write(root.join("cache/records/k.json"), b"{}").unwrap();
    fs::create_dir_all(root.join("cache/mounts/m")).unwrap();
    fs::write(root.join("cache/mounts/m.lock"), b"").unwrap();
    fs::write(root.join("cache/mounts/gone.lock"), b"").unwrap();
    fs::write(root.join("blobs/sha256/ab"), vec![1u8; 10_000]).unwrap();
    fs::create_dir_all(root.join("snapshots/cd")).unwrap();
    fs::write(root.join("snapshots/cd.used"), b"").unwrap();
    let inv = Inventory::measure(root, &[]).unwrap();
    let sum: u64 = inv.entries.iter().map(|e| e.bytes).sum::<u64>() + inv.other_bytes;
    assert_eq!(sum, inv.total);
    let kinds: Vec<(Kind, &str, usize, bool)> = inv
        .entries
        .iter()
        .map(|e| (e.kind, e.name.as_str(), e.paths.len(), e.dangling))
        .collect();
    assert!(kinds.contains(&(Kind::Record, "k", 1, false)));
    assert!(kinds.contains(&(Kind::Mount, "m", 2, false)));
    assert!(kinds.contains(&(Kind::Mount, "gone", 1, true)));
    assert!(kinds.contains(&(Kind::Blob, "ab", 1, false)));
    assert!(kinds.contains(&(Kind::Snapshot, "cd", 2, false)));
}
