//! Tests of the native snapshotter's trees: the copy keeps every attribute, the diff
//! against the stack matches what overlayfs records, and a materialized snapshot reads
//! back as the same change set.

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;

use super::*;
use crate::layers::testutil::{mknod_whiteout, require_root};
use crate::layers::upperdir_changes;

fn listing(set: &ChangeSet) -> Vec<String> {
    set.changes()
        .iter()
        .map(|c| format!("{:?} {}", c.kind, c.path.display()))
        .collect()
}

fn set_mtime(p: &Path, secs: i64, nanos: u32) {
    let t = FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

/// Two snapshots in overlay form, top first: `low` holds a bit of everything, `top`
/// deletes, hides and replaces some of it.
fn stack(base: &Path) -> Vec<PathBuf> {
    let (low, top) = (base.join("low"), base.join("top"));
    for d in [
        "low/etc",
        "low/d/sub",
        "low/opq",
        "low/dir-to-file",
        "top/etc",
        "top/opq",
    ] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    fs::write(low.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(low.join("etc/gone"), "deleted above").unwrap();
    fs::write(low.join("d/sub/f"), "f").unwrap();
    fs::write(low.join("opq/hidden"), "hidden by the opaque dir above").unwrap();
    fs::write(low.join("dir-to-file/inner"), "").unwrap();
    fs::write(low.join("suid"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(low.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(low.join("linked"), "two names").unwrap();
    fs::hard_link(low.join("linked"), low.join("d/linked-too")).unwrap();
    symlink("/etc/passwd", low.join("pw")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        low.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        low.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    std::os::unix::fs::lchown(low.join("d/sub/f"), Some(1000), Some(2000)).unwrap();
    sys::lset_xattr(&low.join("d/sub/f"), b"user.note", b"kept").unwrap();
    mknod_whiteout(&top.join("etc/gone"));
    sys::lset_xattr(&top.join("opq"), sys::opaque_xattr().as_bytes(), b"y").unwrap();
    fs::write(top.join("opq/shown"), "").unwrap();
    fs::write(top.join("dir-to-file"), "now a file").unwrap();
    set_mtime(&low.join("d/sub/f"), 1_600_000_000, 123_456_789);
    set_mtime(&low.join("pw"), 1_600_000_001, 0);
    set_mtime(&low.join("d/sub"), 1_600_000_002, 5);
    vec![top, low]
}

#[test]
fn flatten_copies_the_merged_view_with_its_attributes() {
    if !require_root("owners, devices and trusted xattrs") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lowers = stack(t.path());
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let flat = flatten(&lowers, &root, None).unwrap();
    let tree = crate::layers::tree_changes(flat.path()).unwrap();
    assert_eq!(
        listing(&tree),
        [
            "Add d",
            "Add d/linked-too",
            "Add d/sub",
            "Add d/sub/f",
            "Add dir-to-file",
            "Add etc",
            "Add etc/passwd",
            "Add fifo",
            "Add linked",
            "Add null",
            "Add opq",
            "Add opq/shown",
            "Add pw",
            "Add suid",
        ]
    );
    let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    let f = meta("d/sub/f");
    assert_eq!((f.uid(), f.gid()), (1000, 2000));
    assert_eq!((f.mtime(), f.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(
        sys::list_xattrs(&root.join("d/sub/f")).unwrap(),
        [(b"user.note".to_vec(), b"kept".to_vec())]
    );
    assert_eq!(meta("suid").mode() & 0o7777, 0o4755);
    assert_eq!(meta("d/sub").mtime_nsec(), 5, "directory times set last");
    assert_eq!(meta("pw").mtime(), 1_600_000_001);
    assert_eq!(
        fs::read_link(root.join("pw")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(meta("null").rdev(), rustix::fs::makedev(1, 3));
    assert!(meta("fifo").file_type().is_fifo() && meta("fifo").mode() & 0o777 == 0o640);
    assert_eq!(
        meta("linked").ino(),
        meta("d/linked-too").ino(),
        "hardlink kept"
    );
    assert_eq!(fs::read(root.join("dir-to-file")).unwrap(), b"now a file");
    let opq = sys::get_xattr(&root.join("opq"), sys::opaque_xattr().as_ref()).unwrap();
    assert_eq!(opq, None, "overlayfs' xattrs are not copied");
    let mark = sys::get_xattr(&root.join("d/sub"), sys::dir_mark_xattr().as_ref()).unwrap();
    assert_eq!(mark.as_deref(), Some(&b"d/sub"[..]));
    assert!(
        flat.changes().unwrap().is_empty(),
        "an untouched copy has no changes"
    );
}

#[test]
fn changes_record_deletions_replacements_and_opaque_dirs() {
    if !require_root("owners, devices and trusted xattrs") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lowers = stack(t.path());
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let flat = flatten(&lowers, &root, None).unwrap();
    fs::remove_file(root.join("etc/passwd")).unwrap();
    fs::remove_dir_all(root.join("d")).unwrap();
    fs::create_dir(root.join("d")).unwrap(); // same inode number on ext4: the mark tells
    fs::write(root.join("d/new"), "").unwrap();
    fs::remove_file(root.join("dir-to-file")).unwrap();
    fs::create_dir(root.join("dir-to-file")).unwrap();
    fs::create_dir(root.join("fresh")).unwrap();
    fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o755)).unwrap();
    let set = flat.changes().unwrap();
    assert_eq!(
        listing(&set),
        [
            "Opaque d",
            "Add d/new",
            "Opaque dir-to-file",
            "Add etc",
            "Delete etc/passwd",
            "Add fresh",
            "Add suid",
        ]
    );

    // As a snapshot in overlay form, the change set reads back unchanged.
    let snap = t.path().join("snap");
    fs::create_dir(&snap).unwrap();
    materialize(&set, &snap, None).unwrap();
    let back = upperdir_changes(&snap).unwrap();
    assert_eq!(listing(&back), listing(&set));
    let mark = sys::get_xattr(&snap.join("etc"), sys::dir_mark_xattr().as_ref()).unwrap();
    assert_eq!(mark, None, "marks stay in the step root");
}

#[test]
fn a_hardlink_made_in_the_step_is_one_inode_in_the_snapshot() {
    if !require_root("trusted xattrs") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let flat = flatten(&[], &root, None).unwrap();
    fs::write(root.join("a"), "x").unwrap();
    fs::hard_link(root.join("a"), root.join("b")).unwrap();
    let set = flat.changes().unwrap();
    assert_eq!(listing(&set), ["Add a", "Add b"]);
    let snap = t.path().join("snap");
    fs::create_dir(&snap).unwrap();
    materialize(&set, &snap, None).unwrap();
    let ino = |p: &str| fs::metadata(snap.join(p)).unwrap().ino();
    assert_eq!(ino("a"), ino("b"));
}

#[test]
fn a_cancelled_flatten_stops() {
    let t = tempfile::tempdir().unwrap();
    let low = t.path().join("low");
    fs::create_dir_all(low.join("d")).unwrap();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(true);
    let err = flatten(&[low], &root, Some(&cancel)).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}
