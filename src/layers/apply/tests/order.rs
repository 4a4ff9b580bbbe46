//! An apply whose small files are written on writer threads gives what a serial apply
//! gives, whatever a later entry does to a file still being written: replaces it,
//! turns it into a directory, puts something below it, links to it, whites it out.

use super::*;

/// Files `0..n` of `size` bytes in `dir`, each holding its own number.
fn numbered(dir: &str, n: usize, size: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut data = format!("{i}\n").into_bytes();
            data.resize(size, b'.');
            (format!("{dir}/{i}"), data)
        })
        .collect()
}

#[test]
fn many_small_and_large_files_all_land_with_their_bytes_and_times() {
    let mut files = numbered("small", 300, 100);
    files.extend(numbered("big", 3, writers::SMALL_FILE as usize + 1));
    let entries: Vec<Raw<'_>> = files.iter().map(|(n, d)| Raw::File(n, d)).collect();
    let s = sandbox();
    apply_layer(&raw_tar(&entries)[..], &s.root, &OVERLAY).unwrap();
    for (name, data) in &files {
        assert_eq!(&fs::read(s.root.join(name)).unwrap(), data, "{name}");
        let meta = fs::metadata(s.root.join(name)).unwrap();
        assert_eq!((meta.mtime(), meta.mode() & 0o7777), (1, 0o644), "{name}");
    }
}

#[test]
fn a_later_entry_for_a_file_being_written_waits_for_it() {
    let s = sandbox();
    let tar = raw_tar(&[
        // The same file twice: the second wins.
        Raw::File("dup", b"first"),
        Raw::File("dup", b"second"),
        // A file, then a directory in its place with a file in it.
        Raw::File("was-file", b"f"),
        Raw::Dir("was-file/"),
        Raw::File("was-file/inner", b"i"),
        // A hardlink to a file just queued.
        Raw::File("target", b"t"),
        Raw::Hardlink("link", "target"),
        // A symlink replacing a file just queued.
        Raw::File("to-symlink", b"s"),
        Raw::Symlink("to-symlink", "target"),
    ]);
    apply_layer(&tar[..], &s.root, &DELETE).unwrap();
    assert_eq!(fs::read(s.root.join("dup")).unwrap(), b"second");
    assert_eq!(fs::read(s.root.join("was-file/inner")).unwrap(), b"i");
    let (t, l) = (
        fs::metadata(s.root.join("target")).unwrap(),
        fs::metadata(s.root.join("link")).unwrap(),
    );
    assert_eq!((t.ino(), t.nlink()), (l.ino(), 2));
    assert_eq!(
        fs::read_link(s.root.join("to-symlink")).unwrap(),
        Path::new("target")
    );
}

#[test]
fn an_entry_below_a_file_being_written_is_refused_as_a_serial_apply_refuses_it() {
    let s = sandbox();
    let tar = raw_tar(&[Raw::File("f", b"data"), Raw::File("f/below", b"x")]);
    match apply_layer(&tar[..], &s.root, &OVERLAY) {
        Err(Error::UnsafeEntry { reason, entry }) => {
            assert_eq!(
                (reason, entry.as_str()),
                (UnsafeReason::ParentNotDirectory, "f/below")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(fs::read(s.root.join("f")).unwrap(), b"data");
}

#[test]
fn a_whiteout_of_a_file_being_written_removes_it() {
    let s = sandbox();
    let tar = raw_tar(&[
        Raw::Dir("d/"),
        Raw::File("d/gone", b"g"),
        Raw::File("d/kept", b"k"),
        Raw::File("d/.wh.gone", b""),
    ]);
    apply_layer(&tar[..], &s.root, &DELETE).unwrap();
    assert!(!s.root.join("d/gone").exists());
    assert_eq!(fs::read(s.root.join("d/kept")).unwrap(), b"k");
}

#[test]
fn a_writer_threads_failure_is_the_apply_error_and_names_its_entry() {
    // An xattr the kernel refuses (a file capability of the wrong size), set by the
    // writer thread that creates the file.
    let mut b = tar::Builder::new(Vec::new());
    for (name, bad) in [("d/ok", false), ("d/bad-cap", true)] {
        if bad {
            let record = [("SCHILY.xattr.security.capability", &b"x"[..])];
            b.append_pax_extensions(record).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &b"1"[..]).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let s = sandbox();
    let err = apply_layer(&tar[..], &s.root, &OVERLAY).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("set xattr") && text.contains("d/bad-cap"),
        "{text}"
    );
}
