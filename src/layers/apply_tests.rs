//! Tests of the applier (beside `apply.rs` to keep that file short).

use super::*;
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

#[test]
fn refuses_dot_dot_escapes_and_relativises_absolute_names() {
    let s = sandbox();
    assert_refused(
        &s,
        &raw_tar(&[Raw::File("../x", b"evil")]),
        UnsafeReason::EscapesRoot,
    );
    assert_refused(
        &s,
        &raw_tar(&[Raw::File("a/../../x", b"evil")]),
        UnsafeReason::EscapesRoot,
    );
    apply_layer(&raw_tar(&[Raw::File("/abs", b"ok")])[..], &s.root, &OVERLAY).unwrap();
    assert_eq!(fs::read(s.root.join("abs")).unwrap(), b"ok");
}

#[test]
fn refuses_writes_through_symlinks() {
    let s = sandbox();
    let out = s.outside.to_str().unwrap();
    // A symlinked directory in the same layer, then a file through it.
    let tar = raw_tar(&[Raw::Symlink("dir", out), Raw::File("dir/x", b"evil")]);
    assert_refused(&s, &tar, UnsafeReason::ThroughSymlink);
    // A relative symlink climbing out, already in the target.
    let s = sandbox();
    symlink("../outside", s.root.join("up")).unwrap();
    assert_refused(
        &s,
        &raw_tar(&[Raw::File("up/x", b"e")]),
        UnsafeReason::ThroughSymlink,
    );
    assert_refused(
        &s,
        &raw_tar(&[Raw::Dir("up/sub/")]),
        UnsafeReason::ThroughSymlink,
    );
    // A symlink to the host's /etc. The probe name is not `passwd`, so even a broken
    // applier could not damage the machine running the tests.
    let s = sandbox();
    let tar = raw_tar(&[
        Raw::Symlink("etc", "/etc"),
        Raw::File("etc/rbuild-probe", b"e"),
    ]);
    assert_refused(&s, &tar, UnsafeReason::ThroughSymlink);
    assert!(!Path::new("/etc/rbuild-probe").exists());
    // A symlink as the final name is replaced, never written through.
    let s = sandbox();
    symlink(s.outside.join("f"), s.root.join("f")).unwrap();
    apply_layer(&raw_tar(&[Raw::File("f", b"in")])[..], &s.root, &OVERLAY).unwrap();
    assert_eq!(fs::read(s.root.join("f")).unwrap(), b"in");
    assert_eq!(fs::read_dir(&s.outside).unwrap().count(), 0);
}

#[test]
fn refuses_hardlinks_outside() {
    let s = sandbox();
    fs::write(s.outside.join("secret"), b"s").unwrap();
    let tar = raw_tar(&[Raw::Hardlink("h", "../outside/secret")]);
    match apply_layer(&tar[..], &s.root, &OVERLAY) {
        Err(Error::UnsafeEntry { reason, .. }) => assert_eq!(reason, UnsafeReason::LinkEscapesRoot),
        other => panic!("{other:?}"),
    }
    // An absolute target means the target root, where it does not exist.
    let abs = s.outside.join("secret");
    let tar = raw_tar(&[Raw::Hardlink("h", abs.to_str().unwrap())]);
    assert!(matches!(
        apply_layer(&tar[..], &s.root, &OVERLAY),
        Err(Error::MissingLinkTarget { .. })
    ));
    // Through a symlinked directory.
    symlink(&s.outside, s.root.join("ln")).unwrap();
    let tar = raw_tar(&[Raw::Hardlink("h", "ln/secret")]);
    assert!(matches!(
        apply_layer(&tar[..], &s.root, &OVERLAY),
        Err(Error::UnsafeEntry { .. })
    ));
    assert_eq!(fs::metadata(s.outside.join("secret")).unwrap().nlink(), 1);
    assert!(!s.root.join("h").exists());
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
    let opaque = sys::get_xattr(&o.root.join("opq"), OsStr::new(sys::OPAQUE_XATTR)).unwrap();
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

/// The brief's case verbatim: `link -> /etc`, then `link/passwd`. It runs in a child
/// process with its own mount namespace whose `/etc` is a scratch tmpfs, so even a
/// broken applier could not touch the machine's real `/etc/passwd`.
#[test]
fn refuses_link_to_etc_then_passwd() {
    if !require_root("a private mount namespace") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs rbuild-test /etc && echo fake > /etc/passwd && \
         RBUILD_PRIVATE_ETC=1 exec '{}' --exact layers::apply::tests::etc_passwd_in_private_namespace \
         --ignored --nocapture",
        exe.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by refuses_link_to_etc_then_passwd inside a private mount namespace"]
fn etc_passwd_in_private_namespace() {
    assert_eq!(
        std::env::var("RBUILD_PRIVATE_ETC").as_deref(),
        Ok("1"),
        "only in the child"
    );
    assert_eq!(
        fs::read("/etc/passwd").unwrap(),
        b"fake\n",
        "not the scratch /etc"
    );
    let s = sandbox();
    let tar = raw_tar(&[
        Raw::Symlink("link", "/etc"),
        Raw::File("link/passwd", b"evil"),
    ]);
    assert_refused(&s, &tar, UnsafeReason::ThroughSymlink);
    assert_eq!(fs::read("/etc/passwd").unwrap(), b"fake\n");
    // Through the root-scoped resolver the same path means <root>/etc/passwd.
    let resolved = crate::layers::resolve_in_root(&s.root, Path::new("link/passwd"), true).unwrap();
    assert_eq!(resolved, s.root.join("etc/passwd"));
}

/// Whiteouts whose target is empty, `.` or `..`: refused in both modes, naming the
/// entry, and nothing beside the root (or in it) is removed. Before the fix, `.wh...`
/// removed everything in the root's parent.
#[test]
fn refuses_whiteouts_of_dot_and_dot_dot() {
    for name in [".wh...", ".wh..", ".wh.", "sub/.wh..", "sub/.wh..."] {
        for opts in [DELETE, OVERLAY] {
            if opts == OVERLAY && !require_root("whiteout devices") {
                continue;
            }
            let s = sandbox();
            let canary = s.root.parent().unwrap().join("canary");
            fs::write(&canary, b"c").unwrap();
            fs::write(s.outside.join("kept"), b"k").unwrap();
            fs::create_dir(s.root.join("sub")).unwrap();
            fs::write(s.root.join("sub/kept"), b"k").unwrap();
            fs::write(s.root.join("kept"), b"k").unwrap();
            let tar = raw_tar(&[Raw::Dir("sub/"), Raw::File(name, b"")]);
            let result = apply_layer(&tar[..], &s.root, &opts);
            for kept in [
                &canary,
                &s.outside.join("kept"),
                &s.root.join("kept"),
                &s.root.join("sub/kept"),
            ] {
                assert!(
                    kept.is_file(),
                    "{name} ({:?}) removed {}: {result:?}",
                    opts.whiteouts,
                    kept.display()
                );
            }
            match result {
                Err(Error::UnsafeEntry { entry, reason }) => {
                    assert_eq!((entry.as_str(), reason), (name, UnsafeReason::BadWhiteout));
                }
                other => panic!(
                    "{name} ({:?}): expected a refusal, got {other:?}",
                    opts.whiteouts
                ),
            }
        }
    }
}

/// The remove helpers act on one entry of the directory they are given, never on
/// `.`, `..` or a path.
#[test]
fn removes_only_single_entries_beneath_the_directory() {
    use crate::layers::resolve::{remove_tree, unlink_beneath};
    let s = sandbox();
    fs::create_dir(s.root.join("d")).unwrap();
    fs::write(s.root.join("d/f"), b"").unwrap();
    fs::write(s.root.join("f"), b"").unwrap();
    fs::write(s.outside.join("kept"), b"").unwrap();
    let dir = rustix::fs::open(&s.root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for bad in ["", ".", "..", "d/f", "../outside"] {
        let err = unlink_beneath(&dir, OsStr::new(bad)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        let err = remove_tree(&dir, OsStr::new(bad)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    assert!(s.root.join("d/f").is_file() && s.outside.join("kept").is_file());
    unlink_beneath(&dir, OsStr::new("f")).unwrap();
    remove_tree(&dir, OsStr::new("d")).unwrap();
    assert!(!s.root.join("d").exists() && !s.root.join("f").exists());
}

/// A tar header block of type `kind` for `size` bytes of data named `name`.
fn meta_header(kind: tar::EntryType, name: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_path(name).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `data` padded to whole 512-byte blocks.
fn padded(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(data.len().div_ceil(512) * 512, 0);
    data
}

/// A tar stream made on demand, one chunk at a time (a hostile layer far larger than
/// what a test should hold in memory).
struct Generated<I> {
    chunks: I,
    current: io::Cursor<Vec<u8>>,
}

impl<I: Iterator<Item = Vec<u8>>> Read for Generated<I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.chunks.next() {
                Some(chunk) => self.current = io::Cursor::new(chunk),
                None => return Ok(0),
            }
        }
    }
}

/// The memory bomb of issue 12: `count` consecutive `x` headers, each holding one
/// `SCHILY.xattr` record of `record` bytes, then one regular file, gzip-compressed as
/// it is read.
fn pax_bomb(count: usize, record: usize) -> impl Read {
    let key = b"SCHILY.xattr.user.bomb";
    // The record's length prefix counts itself: find the value length that fills it.
    let value = record - key.len() - 3 - record.to_string().len();
    let chunks = (0..count)
        .map(move |_| {
            let rec = crate::layers::tar_write::pax_record(key, &vec![b'v'; value]);
            let mut chunk =
                meta_header(tar::EntryType::XHeader, "PaxHeaders.0/f", rec.len() as u64);
            chunk.extend(padded(rec));
            chunk
        })
        .chain([
            [
                meta_header(tar::EntryType::Regular, "f", 1),
                padded(b"x".to_vec()),
            ]
            .concat(),
            vec![0u8; 1024],
        ]);
    let tar = Generated {
        chunks,
        current: io::Cursor::new(Vec::new()),
    };
    flate2::read::GzEncoder::new(tar, flate2::Compression::fast())
}

/// Metadata is capped per entry as Go's archive/tar caps it (1 MiB per PAX header or
/// GNU long name): the bomb is refused at its first header, naming it, in a few KiB.
/// Before the fix the records of all 100 headers piled up (3.3 GB of RAM).
#[test]
fn pax_memory_bomb_is_refused_at_its_first_header() {
    let s = sandbox();
    let err = apply_layer(pax_bomb(100, 16 << 20), &s.root, &DELETE).unwrap_err();
    let shown = format!(
        "{err}: {:?}",
        std::error::Error::source(&err).map(|e| e.to_string())
    );
    assert!(
        shown.contains("PaxHeaders.0/f") && shown.contains("1 MiB"),
        "{shown}"
    );
    assert!(!s.root.join("f").exists());
}
