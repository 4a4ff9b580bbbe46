//! Tests of the applier: what it writes (every entry kind, every compression, whiteouts
//! in both modes, digests), and the hand-made tars and sandboxes the hostile-input
//! tests in `hostile.rs` use.

use super::*;
use crate::layers::sys;
use crate::layers::testutil::{list_tar, require_root, tar_of};
use crate::layers::{write_layer, Changes, WriteOptions};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::PathBuf;

const OVERLAY: ApplyOptions = ApplyOptions {
    whiteouts: WhiteoutMode::Overlay,
    compression: None,
};
const DELETE: ApplyOptions = ApplyOptions {
    whiteouts: WhiteoutMode::Delete,
    compression: None,
};

/// A hand-made tar entry (the writer never makes hostile ones).
enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        let (name, data): (&str, &[u8]) = match e {
            Raw::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                (n, d)
            }
            Raw::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, b"")
            }
            Raw::Symlink(n, t) | Raw::Hardlink(n, t) => {
                let ty = if matches!(e, Raw::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                h.set_entry_type(ty);
                // Raw bytes: set_link_name would refuse `..` and absolute links.
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                (n, b"")
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A sandbox: `root` is the target, `outside` a sibling that must stay empty.
struct Sandbox {
    _t: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn sandbox() -> Sandbox {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let outside = t.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    Sandbox {
        root,
        outside,
        _t: t,
    }
}

fn assert_refused(s: &Sandbox, tar: &[u8], reason: UnsafeReason) {
    match apply_layer(tar, &s.root, &OVERLAY) {
        Err(Error::UnsafeEntry { reason: r, .. }) => assert_eq!(r, reason),
        other => panic!("expected a refusal ({reason}), got {other:?}"),
    }
    assert_eq!(
        fs::read_dir(&s.outside).unwrap().count(),
        0,
        "wrote outside"
    );
    assert!(!s.root.parent().unwrap().join("x").exists());
}

/// A tree with every kind of entry the writer handles.
fn rich_tree(root: &Path) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/tool"), vec![1u8; 70_000]).unwrap();
    fs::set_permissions(
        root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/alias")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    let long = format!("{}/{}", "x".repeat(90), "y".repeat(90));
    fs::create_dir(root.join("x".repeat(90))).unwrap();
    fs::write(root.join(&long), b"long").unwrap();
    fs::create_dir(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    rustix::fs::setxattr(
        root.join("usr/bin/tool").as_path(),
        "user.k",
        b"binary\n=value\n", // newlines: PAX records are parsed by length
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    if rustix::process::geteuid().is_root() {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("null").as_path(),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("pipe").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::os::unix::fs::lchown(root.join("tmp"), Some(1000), Some(2000)).unwrap();
        std::os::unix::fs::lchown(root.join("bin"), Some(5), Some(6)).unwrap();
    }
}

#[test]
fn write_apply_write_round_trips_for_every_compression() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    rich_tree(&src);
    let first = tar_of(Changes::Tree(&src), Some(1_700_000_000));
    for compression in [
        Compression::None,
        Compression::default(),
        Compression::zstd(),
    ] {
        let opts = WriteOptions {
            compression,
            source_date_epoch: Some(1_700_000_000),
            threads: 2,
        };
        let mut blob = Vec::new();
        let written = write_layer(Changes::Tree(&src), &opts, &mut blob).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let applied = apply_layer(&blob[..], dst.path(), &OVERLAY).unwrap();
        assert_eq!(
            (applied.digest, applied.diff_id),
            (written.digest, written.diff_id)
        );
        assert_eq!(applied.size, written.size);
        let again = tar_of(Changes::Tree(dst.path()), Some(1_700_000_000));
        let x = sys::get_xattr(&dst.path().join("usr/bin/tool"), OsStr::new("user.k")).unwrap();
        assert_eq!(x.as_deref(), Some(&b"binary\n=value\n"[..]));
        assert_eq!(again, first, "{compression:?}");
    }
}

#[test]
fn whiteouts_in_both_modes() {
    if !require_root("whiteout devices and trusted xattrs") {
        return;
    }
    let s = sandbox();
    fs::create_dir_all(s.root.join("keep")).unwrap();
    fs::write(s.root.join("keep/gone"), b"").unwrap();
    fs::create_dir_all(s.root.join("opq/old/deep")).unwrap();
    fs::write(s.root.join("opq/old-file"), b"").unwrap();
    let tar = raw_tar(&[
        Raw::Dir("keep/"),
        Raw::File("keep/.wh.gone", b""),
        Raw::File("keep/.wh.never-existed", b""),
        Raw::Dir("opq/"),
        Raw::File("opq/-new", b"n"),
        Raw::File("opq/implicit/f", b"i"),
        Raw::File("opq/.wh..wh..opq", b""),
        Raw::File("opq/z-new", b"z"),
    ]);
    apply_layer(&tar[..], &s.root, &DELETE).unwrap();
    let mut names: Vec<_> = fs::read_dir(s.root.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["-new", "implicit", "z-new"]);
    assert_eq!(fs::read(s.root.join("opq/implicit/f")).unwrap(), b"i");
    assert!(!s.root.join("keep/gone").exists() && s.root.join("keep").is_dir());

    let o = sandbox();
    apply_layer(&tar[..], &o.root, &OVERLAY).unwrap();
    let wh = fs::symlink_metadata(o.root.join("keep/gone")).unwrap();
    assert!(crate::layers::changes::is_whiteout(&wh));
    let opaque = sys::get_xattr(&o.root.join("opq"), OsStr::new(sys::opaque_xattr())).unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    // Written back as an upperdir, the snapshot gives the same entries.
    let back = list_tar(&tar_of(Changes::Upperdir(&o.root), None));
    let names: Vec<_> = back.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "keep/",
            "keep/.wh.gone",
            "keep/.wh.never-existed",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/-new",
            "opq/implicit/",
            "opq/implicit/f",
            "opq/z-new"
        ]
    );
}

#[test]
fn trailing_garbage_is_hashed() {
    let mut tar = raw_tar(&[Raw::File("a", b"1")]);
    tar.extend_from_slice(&[0u8; 4096]);
    let s = sandbox();
    let applied = apply_layer(&tar[..], &s.root, &OVERLAY).unwrap();
    assert_eq!(applied.diff_id, Digest::of(&tar));
    assert_eq!(applied.entries, 1);
}

#[test]
fn a_refused_entry_ends_the_apply_while_much_of_the_layer_is_still_unread() {
    // The layer is decompressed on a thread of its own, a few pieces ahead: a refusal
    // near the start must end the apply (and that thread), not wait for the rest.
    let big = vec![7u8; (IN_FLIGHT + 4) * CHUNK];
    let tar = raw_tar(&[
        Raw::File("a", b"1"),
        Raw::File("../x", b"2"),
        Raw::File("big", &big),
    ]);
    for compression in [Compression::None, Compression::Gzip { level: 1 }] {
        let mut layer = Vec::new();
        let mut enc = crate::layers::compress::Encoder::new(compression, &mut layer, 1).unwrap();
        enc.write_all(&tar).unwrap();
        enc.finish().unwrap();
        let s = sandbox();
        assert_refused(&s, &layer, UnsafeReason::EscapesRoot);
        assert!(!s.root.join("big").exists());
    }
}

#[test]
fn a_cut_stream_fails_naming_the_entry_it_cut() {
    let big = vec![7u8; 3 * CHUNK];
    let tar = raw_tar(&[Raw::File("a", b"1"), Raw::File("big", &big)]);
    let mut layer = Vec::new();
    let mut enc = flate2::write::GzEncoder::new(&mut layer, flate2::Compression::fast());
    enc.write_all(&tar).unwrap();
    enc.finish().unwrap();
    let cut = layer.len() - 40;
    layer.truncate(cut);
    let s = sandbox();
    match apply_layer(&layer[..], &s.root, &OVERLAY) {
        Err(Error::Apply { entry, source, .. }) => {
            assert_eq!(entry, "big");
            assert_eq!(source.kind(), io::ErrorKind::UnexpectedEof);
        }
        other => panic!("expected the cut entry's error, got {other:?}"),
    }
}

mod hostile;
mod order;
