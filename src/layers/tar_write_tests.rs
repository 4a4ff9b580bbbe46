//! Tests of the tar writer (kept beside `tar_write.rs` to keep that file short).

use super::*;
use crate::layers::testutil::{
    assert_gnu_tar_lists, list_tar, mknod_whiteout, names, require_root, tar_of,
};
use crate::layers::Changes;
use std::os::unix::fs::{symlink, PermissionsExt};

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn mtime(p: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 123);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

#[test]
fn pax_record_length_counts_itself() {
    assert_eq!(pax_record(b"path", b"a"), b"9 path=a\n");
    for n in 0..2000 {
        let rec = pax_record(b"k", &vec![b'v'; n]);
        let sp = rec.iter().position(|&b| b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&rec[..sp]).unwrap().parse().unwrap();
        assert_eq!(len, rec.len(), "value length {n}");
    }
}

#[test]
fn octal_fields_and_checksum() {
    let mut f = [0u8; 8];
    put_octal(&mut f, 0o755);
    assert_eq!(&f, b"0000755\0");
    let mut block = [0u8; BLOCK];
    finish_checksum(&mut block);
    assert_eq!(&block[148..156], b"000400\0 "); // 8 spaces = 256 = 0o400
}

#[test]
fn long_names_hardlinks_symlinks_modes_and_epoch() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let long_dir = "d".repeat(80);
    let long_name = format!("{long_dir}/{}", "f".repeat(60));
    fs::create_dir(root.join(&long_dir)).unwrap();
    fs::write(root.join(&long_name), b"long").unwrap();
    fs::write(root.join("a"), b"content").unwrap();
    fs::hard_link(root.join("a"), root.join("b")).unwrap();
    fs::hard_link(root.join("a"), root.join(format!("{long_dir}/z"))).unwrap();
    symlink(&long_name, root.join("ln")).unwrap();
    fs::write(root.join("suid"), b"").unwrap();
    chmod(&root.join("suid"), 0o4755);
    fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    for p in ["a", "ln", "suid", "sticky"] {
        mtime(&root.join(p), 5000);
    }
    mtime(&root.join(&long_name), 100);

    let tar = tar_of(Changes::Tree(root), Some(1000));
    let l = list_tar(&tar);
    let find = |p: &str| l.iter().find(|e| e.path == p).unwrap().clone();
    assert_eq!(
        names(&tar),
        [
            "a".to_owned(),
            "b".to_owned(),
            format!("{long_dir}/"),
            long_name.clone(),
            format!("{long_dir}/z"),
            "ln".to_owned(),
            "sticky/".to_owned(),
            "suid".to_owned(),
        ]
    );
    assert_eq!(
        (find("a").kind, find("a").data.as_slice()),
        ('0', &b"content"[..])
    );
    let b = find("b");
    assert_eq!((b.kind, b.link.as_str(), b.data.len()), ('1', "a", 0));
    assert_eq!(find(&format!("{long_dir}/z")).link, "a");
    let long = find(&long_name);
    assert_eq!(long.pax_keys, ["path"]);
    assert_eq!(long.mtime, 100); // older than the epoch: kept
    let ln = find("ln");
    assert_eq!((ln.kind, ln.link.as_str()), ('2', long_name.as_str()));
    assert_eq!(ln.pax_keys, ["linkpath"]);
    assert_eq!(ln.mtime, 1000); // newer than the epoch: clamped
    assert_eq!(find("suid").mode, 0o4755);
    assert_eq!(find("sticky/").mode, 0o1777);
    assert!(l
        .iter()
        .all(|e| e.uid as u32 == rustix::process::getuid().as_raw()));
    // Two runs give the same bytes.
    assert_eq!(tar, tar_of(Changes::Tree(root), Some(1000)));
}

#[test]
fn xattrs_devices_fifos_and_big_ids() {
    if !require_root("devices, ownership and trusted xattrs") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::write(root.join("cap"), b"").unwrap();
    rustix::fs::setxattr(
        root.join("cap").as_path(),
        "user.note",
        b"bin\0ary",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(
        root.join("cap").as_path(),
        "trusted.overlay.origin",
        b"x",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let dev = |name: &str, ft, rdev| {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join(name).as_path(),
            ft,
            rustix::fs::Mode::from_raw_mode(0o620),
            rdev,
        )
        .unwrap()
    };
    dev(
        "null",
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::makedev(1, 3),
    );
    dev(
        "sda",
        rustix::fs::FileType::BlockDevice,
        rustix::fs::makedev(8, 0),
    );
    dev("fifo", rustix::fs::FileType::Fifo, 0);
    chmod(&root.join("null"), 0o620); // mknod is subject to the umask
    fs::write(root.join("big"), b"").unwrap();
    std::os::unix::fs::lchown(root.join("big"), Some(3_000_000), Some(7)).unwrap();

    let tar = tar_of(Changes::Tree(root), None);
    let l = list_tar(&tar);
    let find = |p: &str| l.iter().find(|e| e.path == p).unwrap().clone();
    let cap = find("cap");
    assert_eq!(cap.xattrs, [("user.note".to_owned(), b"bin\0ary".to_vec())]);
    let big = find("big");
    assert_eq!(big.pax_keys, ["uid"]);
    let mut archive = tar::Archive::new(&tar[..]);
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().into_owned();
        let h = e.header();
        match p.to_str().unwrap() {
            "null" => {
                assert_eq!(h.entry_type(), tar::EntryType::Char);
                assert_eq!(
                    (h.device_major().unwrap(), h.device_minor().unwrap()),
                    (Some(1), Some(3))
                );
                assert_eq!(h.mode().unwrap(), 0o620);
            }
            "sda" => assert_eq!(h.entry_type(), tar::EntryType::Block),
            "fifo" => assert_eq!(h.entry_type(), tar::EntryType::Fifo),
            _ => {}
        }
    }
    assert_gnu_tar_lists(&tar, 5);
}

#[test]
fn upperdir_whiteouts_and_opaque_markers() {
    if !require_root("whiteout char devices and trusted xattrs") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let up = t.path();
    fs::create_dir_all(up.join("etc")).unwrap();
    fs::write(up.join("etc/new"), b"n").unwrap();
    mknod_whiteout(&up.join("etc/gone"));
    fs::create_dir(up.join("opaque")).unwrap();
    fs::set_permissions(up.join("opaque"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(up.join("opaque/-first"), b"").unwrap();
    rustix::fs::setxattr(
        up.join("opaque").as_path(),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Whiteouts share one inode in a real upperdir: no hardlink entries for them.
    fs::hard_link(up.join("etc/gone"), up.join("gone2")).unwrap();

    let tar = tar_of(Changes::Upperdir(up), Some(42));
    assert_eq!(
        names(&tar),
        [
            ".wh.gone2",
            "etc/",
            "etc/.wh.gone",
            "etc/new",
            "opaque/",
            "opaque/.wh..wh..opq",
            "opaque/-first",
        ]
    );
    // Modes as BuildKit writes them: 0600 for a whiteout, the directory's for a marker.
    for e in list_tar(&tar).iter().filter(|e| e.path.contains(".wh.")) {
        let mode = if e.path.ends_with(".wh..wh..opq") {
            0o755
        } else {
            0o600
        };
        assert_eq!(
            (e.kind, e.mode, e.uid, e.gid, e.mtime),
            ('0', mode, 0, 0, 42),
            "{}",
            e.path
        );
    }
    assert!(list_tar(&tar).iter().all(|e| e.xattrs.is_empty()));
    // The same directory as a plain tree keeps the device nodes as they are.
    let plain = list_tar(&tar_of(Changes::Tree(up), None));
    assert_eq!(
        plain.iter().find(|e| e.path == "etc/gone").unwrap().kind,
        '3'
    );
}

/// A name starting with `.wh.` cannot be stored: any reader would take it for a
/// whiteout. Refused before anything is written, naming the path.
#[test]
fn names_with_the_whiteout_prefix_are_refused() {
    for name in ["x/.wh.foo", ".wh...", ".wh..wh..opq", "x/.wh."] {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("x")).unwrap();
        fs::write(t.path().join(name), b"").unwrap();
        let set = crate::layers::tree_changes(t.path()).unwrap();
        let mut out = Vec::new();
        let err = write_tar(&set, &TarOptions::default(), &mut out).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("`/{name}`")) && shown.contains("OCI whiteout prefix"),
            "{shown}"
        );
        assert!(out.is_empty(), "{name}: wrote {} bytes first", out.len());
    }
    if !require_root("whiteout devices") {
        return;
    }
    // A deletion of such a name would be written `.wh..wh.NAME`, which readers skip.
    let t = tempfile::tempdir().unwrap();
    mknod_whiteout(&t.path().join(".wh.gone"));
    let set = crate::layers::upperdir_changes(t.path()).unwrap();
    let err = write_tar(&set, &TarOptions::default(), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("`/.wh.gone`"), "{err}");
}

#[test]
fn a_file_swapped_after_the_walk_is_archived_as_what_it_became() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("plain"), "data").unwrap();
    fs::write(t.path().join("swapped"), "data").unwrap();
    fs::write(t.path().join("socket"), "data").unwrap();
    let set = super::super::changes::tree_changes(t.path()).unwrap();
    // After the walk saw three regular files: one becomes a link out of the tree, one a
    // socket (neither followed nor archived as a file).
    fs::remove_file(t.path().join("swapped")).unwrap();
    symlink("/etc/passwd", t.path().join("swapped")).unwrap();
    fs::remove_file(t.path().join("socket")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(t.path().join("socket")).unwrap();
    let mut out = Vec::new();
    write_tar(&set, &TarOptions::default(), &mut out).unwrap();
    let listed = list_tar(&out);
    let by_name = |n: &str| listed.iter().find(|l| l.path == n).cloned();
    assert_eq!(
        by_name("plain").map(|l| (l.kind, l.data)),
        Some(('0', b"data".to_vec()))
    );
    let swapped = by_name("swapped").expect("the link is archived");
    assert_eq!((swapped.kind, swapped.link.as_str()), ('2', "/etc/passwd"));
    assert!(swapped.data.is_empty(), "the link was not followed");
    assert_eq!(by_name("socket"), None, "sockets are skipped, as tar does");
}

#[test]
fn files_are_read_from_the_directory_they_are_in_as_the_walk_moves_between_directories() {
    // Regular files are opened by name in a descriptor of their directory, kept from one
    // file to the next: every file must still come from its own directory, including
    // after a subdirectory and back, at the top and with names shared across directories.
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    for d in ["a", "a/sub", "b"] {
        fs::create_dir(root.join(d)).unwrap();
    }
    let files = ["top", "a/f", "a/sub/f", "a/z", "b/f", "z"];
    for f in files {
        fs::write(root.join(f), format!("content of {f}")).unwrap();
    }
    let tar = tar_of(Changes::Tree(root), None);
    let l = list_tar(&tar);
    for f in files {
        let e = l.iter().find(|e| e.path == f).unwrap();
        assert_eq!(e.data, format!("content of {f}").into_bytes(), "{f}");
    }
    assert_eq!(l.iter().filter(|e| e.kind == '0').count(), files.len());
}
