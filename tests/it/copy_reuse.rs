//! A COPY that misses because some of its files changed links the others from its
//! last snapshot instead of copying them: the image is the one a fresh store builds,
//! the snapshots share the unchanged files' inodes, and a link never reaches out of
//! the store.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::{build_at_epoch, can_mount, manifest_digest, run_ok, TestContext};

const EPOCH: &str = "1700000000";

/// The snapshot of `image`'s only layer (a `FROM scratch` image: its chain ID is the
/// layer's diff ID).
fn snapshot_of(root: &Path, image: &str) -> PathBuf {
    let (out, _) = run_ok(root, &["inspect", image], &[]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids = v["config"]["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{v}");
    let hex = ids[0].as_str().unwrap().trim_start_matches("sha256:");
    root.join("snapshots").join(hex)
}

fn links(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().nlink()
}

/// The same context built in a store of its own: the image's manifest digest.
fn fresh_digest(t: &TestContext, image: &str) -> String {
    let fresh = tempfile::tempdir().unwrap();
    let ctx = t.context().to_string_lossy().into_owned();
    let args = ["build", "--progress", "plain", "-t", image, ctx.as_str()];
    run_ok(fresh.path(), &args, &[("SOURCE_DATE_EPOCH", EPOCH)]);
    manifest_digest(fresh.path(), image)
}

fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(mtime).unwrap();
}

fn assert_clean(root: &Path) {
    let (check, _) = run_ok(root, &["store", "check"], &[]);
    assert!(check.contains("clean"), "{check}");
}

#[test]
fn a_one_file_edit_links_the_unchanged_files_and_builds_the_same_image() {
    if !can_mount() {
        return;
    }
    let t = TestContext::new(
        "FROM scratch\nCOPY files/ /files/\n",
        &[
            ("files/a/1", "one\n"),
            ("files/a/2", "two\n"),
            ("files/a/3", "three\n"),
            ("files/b/x", "x\n"),
        ],
    );
    build_at_epoch(&t, &["-t", "app:1"], EPOCH);
    let first = snapshot_of(&t.root(), "app:1");
    assert_eq!(links(&first.join("files/a/1")), 1);

    fs::write(t.context().join("files/a/3"), "three, edited\n").unwrap();
    let (_, log) = build_at_epoch(&t, &["-t", "app:2"], EPOCH);
    assert!(log.contains("files/a/3 changed"), "{log}");
    let second = snapshot_of(&t.root(), "app:2");
    assert_ne!(first, second);
    // The unchanged files are the first snapshot's inodes; the edited one is new.
    for f in ["files/a/1", "files/a/2", "files/b/x"] {
        let (a, b) = (
            fs::metadata(first.join(f)).unwrap(),
            fs::metadata(second.join(f)).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "{f}");
    }
    assert_eq!(links(&second.join("files/a/3")), 1);
    assert_eq!(
        fs::read_to_string(second.join("files/a/3")).unwrap(),
        "three, edited\n"
    );
    assert_eq!(
        manifest_digest(&t.root(), "app:2"),
        fresh_digest(&t, "app:2")
    );
    // Both snapshots still pass their fingerprints, and each is its layer.
    assert_clean(&t.root());

    // With --no-cache nothing is taken from the last build, links included.
    fs::write(t.context().join("files/a/3"), "three, again\n").unwrap();
    build_at_epoch(&t, &["--no-cache", "-t", "app:3"], EPOCH);
    let third = snapshot_of(&t.root(), "app:3");
    assert_eq!(links(&third.join("files/a/1")), 1);
}

#[test]
fn a_file_a_later_source_overwrites_ends_as_that_source_with_links_on() {
    if !can_mount() {
        return;
    }
    // Same names, same sizes, written in the same instant: the first source's `x`
    // looks like the file the last build left at `out/sub/x` (the second source's).
    let t = TestContext::new(
        "FROM scratch\nCOPY one/ two/ /out/\n",
        &[("one/sub/x", "1"), ("one/sub/y", "y"), ("two/sub/x", "2")],
    );
    let mtime = fs::metadata(t.context().join("one/sub/x"))
        .unwrap()
        .modified()
        .unwrap();
    for f in ["one/sub/x", "two/sub/x"] {
        set_mtime(&t.context().join(f), mtime);
    }
    build_at_epoch(&t, &["-t", "app:1"], EPOCH);
    fs::write(t.context().join("one/sub/y"), "y2").unwrap();
    build_at_epoch(&t, &["-t", "app:2"], EPOCH);
    let snap = snapshot_of(&t.root(), "app:2");
    assert_eq!(fs::read_to_string(snap.join("out/sub/x")).unwrap(), "2");
    assert_eq!(fs::read_to_string(snap.join("out/sub/y")).unwrap(), "y2");
    assert_eq!(
        manifest_digest(&t.root(), "app:2"),
        fresh_digest(&t, "app:2")
    );

    // Now the second source's file changes: the first's is linked, then overwritten.
    fs::write(t.context().join("two/sub/x"), "3").unwrap();
    build_at_epoch(&t, &["-t", "app:3"], EPOCH);
    let snap = snapshot_of(&t.root(), "app:3");
    assert_eq!(fs::read_to_string(snap.join("out/sub/x")).unwrap(), "3");
    assert_eq!(
        manifest_digest(&t.root(), "app:3"),
        fresh_digest(&t, "app:3")
    );
    assert_clean(&t.root());
}

#[test]
fn a_symlink_planted_in_the_last_snapshot_never_links_a_file_from_outside_the_store() {
    if !can_mount() {
        return;
    }
    let t = TestContext::new(
        "FROM scratch\nCOPY files/ /files/\n",
        &[("files/a/secret", "image\n"), ("files/b/x", "x\n")],
    );
    build_at_epoch(&t, &["-t", "app:1"], EPOCH);
    let first = snapshot_of(&t.root(), "app:1");
    // Outside the store, a file that looks exactly like the one the copy wants: same
    // size, mode, owner and mtime, other bytes; the snapshot's `files/a` now leads
    // there.
    let outside = t.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let wanted = fs::metadata(t.context().join("files/a/secret")).unwrap();
    let planted = outside.join("secret");
    fs::write(&planted, "HOST!\n").unwrap();
    set_mtime(&planted, wanted.modified().unwrap());
    fs::remove_dir_all(first.join("files/a")).unwrap();
    std::os::unix::fs::symlink(&outside, first.join("files/a")).unwrap();

    fs::write(t.context().join("files/b/x"), "x2\n").unwrap();
    build_at_epoch(&t, &["-t", "app:2"], EPOCH);
    let second = snapshot_of(&t.root(), "app:2");
    assert_eq!(
        fs::read_to_string(second.join("files/a/secret")).unwrap(),
        "image\n"
    );
    assert_eq!(
        links(&planted),
        1,
        "the outside file was linked into the store"
    );
}

/// Files whose bytes deflate cannot guess: many gzip chunks.
fn noisy(i: usize) -> String {
    let mut x = (i as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..900)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

/// The "N of M gzip chunks from the last build" of a build log.
fn chunks_copied(log: &str) -> (usize, usize) {
    let at = log.find(" gzip chunks from the last build").expect(log);
    let words: Vec<&str> = log[..at].rsplit([' ', ',']).take(3).collect();
    (words[2].parse().unwrap(), words[0].parse().unwrap())
}

/// The new layer of a one-file edit is patched from the last one (the chunks around
/// the edit copied: `layers::patch`), twice in a row, and is still the blob a fresh
/// store writes, byte for byte.
#[test]
fn a_patched_layer_is_the_layer_a_fresh_store_writes() {
    if !can_mount() {
        return;
    }
    let names: Vec<String> = (0..4000)
        .map(|i| format!("files/d{}/f{i}", i / 500))
        .collect();
    let bodies: Vec<String> = (0..4000).map(noisy).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&bodies)
        .map(|(n, b)| (n.as_str(), b.as_str()))
        .collect();
    let t = TestContext::new("FROM scratch\nCOPY files/ /files/\n", &files);
    build_at_epoch(&t, &["-t", "app:1"], EPOCH);
    let sidecar = |image: &str| {
        let snap = snapshot_of(&t.root(), image);
        let text = fs::read_to_string(snap.with_extension("json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["layerChunks"]["chunks"].as_array().map_or(0, Vec::len)
    };
    assert!(sidecar("app:1") >= 3, "the layer's chunks are recorded");
    for (round, file) in ["files/d3/f1700", "files/d5/f2800"].iter().enumerate() {
        let mut body = fs::read_to_string(t.context().join(file)).unwrap();
        body.push_str("an edit that makes the file longer\n");
        fs::write(t.context().join(file), body).unwrap();
        let tag = format!("app:{}", round + 2);
        let (_, log) = build_at_epoch(&t, &["-t", &tag], EPOCH);
        assert!(log.contains("changed"), "{log}");
        assert!(!log.contains("cannot patch"), "{log}");
        // "(layer 0.05s, 8 of 10 gzip chunks from the last build)"
        let (copied, chunks) = chunks_copied(&log);
        assert!(copied > 0 && copied + 3 >= chunks, "{log}");
        assert!(sidecar(&tag) >= 3);
        assert_eq!(manifest_digest(&t.root(), &tag), fresh_digest(&t, &tag));
    }
    assert_clean(&t.root());
}

/// A context file whose name is not UTF-8 (Docker copies such names as they are) is
/// copied with its exact name, keyed by that name (a rename to another such name is a
/// miss, not a hit that keeps the old name), and an edit that keeps its size and mtime
/// is a miss whose copy has the new bytes (never a link to the last snapshot).
#[test]
fn a_context_name_that_is_not_utf8_is_copied_keyed_and_never_linked() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    if !can_mount() {
        return;
    }
    let t = TestContext::new(
        "FROM scratch\nCOPY . /c/\n",
        &[("plain", "plain\n"), ("d/x", "x\n")],
    );
    let name = |b: &[u8]| t.context().join("d").join(OsStr::from_bytes(b));
    fs::write(name(b"caf\xe9"), "same\n").unwrap();
    let out = t.path("out");
    let output = format!("type=local,dest={}", out.display());
    let build = |tag: &str| {
        let _ = fs::remove_dir_all(&out);
        build_at_epoch(&t, &["-t", tag, "--output", &output], EPOCH).1
    };
    build("app:1");
    let exported = |b: &[u8]| fs::read_to_string(out.join("c/d").join(OsStr::from_bytes(b)));
    assert_eq!(exported(b"caf\xe9").unwrap(), "same\n");

    fs::rename(name(b"caf\xe9"), name(b"caf\xe8")).unwrap();
    let log = build("app:2");
    assert!(log.contains("cache miss"), "{log}");
    assert!(exported(b"caf\xe9").is_err(), "the old name is gone");
    assert_eq!(exported(b"caf\xe8").unwrap(), "same\n");

    // Same size, same mtime, other bytes.
    let mtime = fs::metadata(name(b"caf\xe8")).unwrap().modified().unwrap();
    fs::write(name(b"caf\xe8"), "diff\n").unwrap();
    set_mtime(&name(b"caf\xe8"), mtime);
    let log = build("app:3");
    assert!(log.contains("cache miss"), "{log}");
    assert_eq!(exported(b"caf\xe8").unwrap(), "diff\n");
    assert_eq!(
        manifest_digest(&t.root(), "app:3"),
        fresh_digest(&t, "app:3")
    );
    assert_clean(&t.root());
}
