//! Hostile layers: entries that climb out of the target, go through symlinks or
//! hardlinks, whiteouts that name `.` or `..`, and metadata bombs. Each is refused,
//! naming the entry, and nothing outside the target changes.

use super::*;

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

/// The brief's case verbatim: `link -> /etc`, then `link/passwd`. It runs in a child
/// process with its own mount namespace whose `/etc` is a scratch tmpfs, so even a
/// broken applier could not touch the machine's real `/etc/passwd`.
#[test]
fn refuses_link_to_etc_then_passwd() {
    if !require_root("a private mount namespace") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let module = module_path!().trim_start_matches("rbuild::");
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs rbuild-test /etc && echo fake > /etc/passwd && \
         RBUILD_PRIVATE_ETC=1 exec '{}' --exact {module}::etc_passwd_in_private_namespace \
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
