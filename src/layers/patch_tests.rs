use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::super::blob::{write_indexed, WriteOptions, Written};
use super::super::changes::tree_changes;
use super::*;

const FILES: usize = 6000;
const CHANGED: usize = 3100;

fn content(i: usize) -> Vec<u8> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..1000 + i % 50)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) {
                b'a' + (x % 26) as u8
            } else {
                (x >> 40) as u8
            }
        })
        .collect()
}

fn file(root: &Path, i: usize) -> std::path::PathBuf {
    root.join(format!("d{}/f{i:05}", i / 1000))
}

/// The last build's tree: FILES files in six directories, and a symlink.
fn old_tree(root: &Path) {
    for i in 0..FILES {
        let f = file(root, i);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, content(i)).unwrap();
    }
    std::os::unix::fs::symlink("d0/f00000", root.join("link")).unwrap();
}

/// This build's tree: every file a hard link to the old one but CHANGED, written
/// afresh with other bytes; directories with the old ones' times. Returns the inodes
/// linked.
fn new_tree(old: &Path, root: &Path) -> HashSet<u64> {
    let mut linked = HashSet::new();
    for i in 0..FILES {
        let (from, to) = (file(old, i), file(root, i));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        if i == CHANGED {
            fs::write(&to, b"changed, and shorter than before\n").unwrap();
        } else {
            fs::hard_link(&from, &to).unwrap();
            linked.insert(fs::metadata(&to).unwrap().ino());
        }
    }
    std::os::unix::fs::symlink("d0/f00000", root.join("link")).unwrap();
    for d in 0..FILES / 1000 {
        let m = fs::metadata(old.join(format!("d{d}"))).unwrap();
        let t = filetime(m.mtime());
        rustix::fs::utimensat(
            rustix::fs::CWD,
            root.join(format!("d{d}")),
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
    }
    linked
}

fn filetime(secs: i64) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    }
}

fn write(root: &Path, base: Option<PatchBase<'_>>) -> (Written, Vec<u8>) {
    let mut out = Vec::new();
    let set = tree_changes(root).unwrap();
    let w = write_indexed(&set, &WriteOptions::default(), &mut out, base).unwrap();
    (w, out)
}

fn base_file(dir: &Path, bytes: &[u8]) -> File {
    let p = dir.join("old.blob");
    fs::write(&p, bytes).unwrap();
    File::open(p).unwrap()
}

/// The earlier layer `blob` (written to a file in `dir`) with its `chunks`.
fn earlier<'a>(
    dir: &Path,
    blob: &[u8],
    chunks: &'a LayerChunks,
    linked: &HashSet<u64>,
) -> PatchBase<'a> {
    PatchBase {
        blob: base_file(dir, blob),
        chunks,
        linked: linked.clone(),
    }
}

#[test]
fn a_patched_layer_is_the_full_write_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let (old, new) = (t.path().join("old"), t.path().join("new"));
    old_tree(&old);
    let (before, old_blob) = write(&old, None);
    let chunks = before.chunks.clone().unwrap();
    assert!(chunks.chunks.len() >= 5, "{:?}", chunks.chunks);
    let linked = new_tree(&old, &new);
    let (full, full_bytes) = write(&new, None);
    let base = earlier(t.path(), &old_blob, &chunks, &linked);
    let (patched, patched_bytes) = write(&new, Some(base));
    assert!(patched_bytes == full_bytes, "the patch wrote other bytes");
    assert_eq!(patched.blob, full.blob);
    assert_eq!(patched.chunks, full.chunks);
    assert_eq!(full.copied, 0);
    // All chunks but the changed file's (and at most its neighbour) are copied.
    let n = patched.chunks.as_ref().unwrap().chunks.len();
    assert!(
        patched.copied + 2 >= n && patched.copied > 0,
        "{} of {n}",
        patched.copied
    );
    // Nothing linked: every file is read, and the same bytes come out (chunks whose
    // bytes are the old ones' are still copied, being checked byte for byte).
    let none = HashSet::new();
    let base = earlier(t.path(), &old_blob, &chunks, &none);
    let (unlinked, bytes) = write(&new, Some(base));
    assert!(bytes == full_bytes);
    assert_eq!(unlinked.blob, full.blob);
}

#[test]
fn an_index_of_another_writer_or_level_is_not_used() {
    let t = tempfile::tempdir().unwrap();
    let (old, new) = (t.path().join("old"), t.path().join("new"));
    old_tree(&old);
    let (before, old_blob) = write(&old, None);
    let linked = new_tree(&old, &new);
    let (_, full_bytes) = write(&new, None);
    let mut other = before.chunks.clone().unwrap();
    other.writer = "pargz1 rbuild 0.0.0".into();
    let mut level = before.chunks.clone().unwrap();
    level.level = 9;
    for chunks in [&other, &level] {
        let base = earlier(t.path(), &old_blob, chunks, &linked);
        let (w, bytes) = write(&new, Some(base));
        assert_eq!(w.copied, 0);
        assert!(bytes == full_bytes);
    }
}

#[test]
fn a_damaged_blob_or_a_lying_index_fails_the_patch() {
    let t = tempfile::tempdir().unwrap();
    let (old, new) = (t.path().join("old"), t.path().join("new"));
    old_tree(&old);
    let (before, old_blob) = write(&old, None);
    let chunks = before.chunks.clone().unwrap();
    let linked = new_tree(&old, &new);
    let set = tree_changes(&new).unwrap();
    let attempt = |blob: Vec<u8>, chunks: &LayerChunks| {
        let base = earlier(t.path(), &blob, chunks, &linked);
        write_indexed(&set, &WriteOptions::default(), io::sink(), Some(base))
    };
    // A flipped byte in the first chunk's compressed bytes.
    let mut damaged = old_blob.clone();
    damaged[HEADER.len() + 100] ^= 0x55;
    assert!(attempt(damaged, &chunks).is_err());
    // Two chunks' lengths swapped: the sizes still add up.
    let mut lying = chunks.clone();
    lying.chunks.swap(0, 1);
    assert!(attempt(old_blob.clone(), &lying).is_err());
    // A CRC that does not match.
    let mut crc = chunks.clone();
    crc.chunks[1].2 ^= 1;
    assert!(attempt(old_blob.clone(), &crc).is_err());
    // A blob of another size.
    assert!(attempt(old_blob[..old_blob.len() - 1].to_vec(), &chunks).is_err());
}

#[test]
fn a_changed_file_larger_than_the_look_ahead_is_passed_over() {
    let t = tempfile::tempdir().unwrap();
    let (old, new) = (t.path().join("old"), t.path().join("new"));
    old_tree(&old);
    // A 9 MiB file before every other: its entry spans several chunks.
    let big: Vec<u8> = (0..9u32 << 20).map(|i| (i * 7 / 5) as u8).collect();
    fs::write(old.join("a-big"), &big).unwrap();
    let (before, old_blob) = write(&old, None);
    let chunks = before.chunks.clone().unwrap();
    let linked = new_tree(&old, &new);
    let mut changed = big;
    changed[5 << 20] ^= 1;
    fs::write(new.join("a-big"), &changed).unwrap();
    let (full, full_bytes) = write(&new, None);
    let base = earlier(t.path(), &old_blob, &chunks, &linked);
    let (patched, bytes) = write(&new, Some(base));
    assert!(bytes == full_bytes);
    assert_eq!(patched.blob, full.blob);
    // The files after it were still copied: the reader moved past the big entry.
    let n = patched.chunks.as_ref().unwrap().chunks.len();
    assert!(
        patched.copied + 6 >= n && n > 10,
        "{} of {n}",
        patched.copied
    );
}
