//! The filesystem view: `/dev`, the per-step `/etc` files, mount-point stubs (also
//! on a real overlay, where they must not leave anything in the upperdir) and
//! `RUN --mount`-style bind and tmpfs mounts.

use std::os::unix::fs::MetadataExt;

use super::super::Mount;
use super::*;

#[test]
fn dev_is_minimal_and_works() {
    if !prerequisites("/dev") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "ls -A /dev | tr '\\n' ' '");
    assert_eq!(code, 0);
    assert_eq!(
        out.trim_end(),
        "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
    let script = "head -c 5 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok; \
                  echo x > /dev/full || echo full-refused; touch /dev/shm/x && echo shm-ok; \
                  ls /dev/pts | tr '\\n' ' '; stat -c %a /dev/shm; readlink /dev/fd";
    let (code, out) = sh(&rootfs, script);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<_> = out.lines().filter(|l| !l.contains("write error")).collect();
    assert_eq!(
        lines,
        [
            "5",
            "null-ok",
            "full-refused",
            "shm-ok",
            "ptmx 1777",
            "/proc/self/fd"
        ]
    );
}

#[test]
fn etc_files_are_per_step_read_only_and_never_reach_the_rootfs() {
    if !prerequisites("/etc files") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let etc = rootfs.path().join("etc");
    // Make the directory's mtime distinctive so that a restore is observable.
    filetime::set_file_mtime(&etc, filetime::FileTime::from_unix_time(1_000_000, 0)).unwrap();
    let mut spec = rootfs.spec(&[
        "/bin/sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf; echo 1.2.3.4 x >> /etc/hosts || echo refused; \
         echo y > /etc/resolv.conf || echo refused; rm /etc/hostname || echo busy",
    ]);
    spec.hosts = "127.0.0.1 localhost\n10.0.0.1 given\n".into();
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0);
    assert_eq!(
        out.lines()
            .filter(|l| !l.contains("sh:") && !l.starts_with("rm:"))
            .collect::<Vec<_>>(),
        [
            "127.0.0.1 localhost",
            "10.0.0.1 given",
            "nameserver 192.0.2.53",
            "refused",
            "refused",
            "busy"
        ],
        "{out}"
    );
    // The image's own /etc/hosts is untouched; the stubs for the two files the image
    // lacks are gone and /etc has its old modification time back.
    assert_eq!(
        fs::read_to_string(etc.join("hosts")).unwrap(),
        "10.9.8.7 from-the-image\n"
    );
    assert!(!etc.join("resolv.conf").exists() && !etc.join("hostname").exists());
    assert_eq!(fs::metadata(&etc).unwrap().mtime(), 1_000_000);
}

#[test]
fn a_step_that_changes_etc_keeps_its_change() {
    if !prerequisites("/etc change") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let etc = rootfs.path().join("etc");
    filetime::set_file_mtime(&etc, filetime::FileTime::from_unix_time(1_000_000, 0)).unwrap();
    let (code, _) = sh(&rootfs, "echo hi > /etc/motd");
    assert_eq!(code, 0);
    assert_eq!(fs::read_to_string(etc.join("motd")).unwrap(), "hi\n");
    assert_ne!(
        fs::metadata(&etc).unwrap().mtime(),
        1_000_000,
        "the step's own change shows"
    );
    assert!(!etc.join("resolv.conf").exists());
}

#[test]
fn mount_stubs_leave_only_the_system_directories_in_an_overlay_upperdir() {
    if !prerequisites("overlay upperdir") {
        return;
    }
    let lower = Rootfs::busybox();
    for d in ["proc", "sys", "dev"] {
        fs::remove_dir(lower.path().join(d)).unwrap(); // as in a `scratch`-based image
    }
    let work = tempfile::tempdir().unwrap();
    let (upper, merged) = (work.path().join("upper"), work.path().join("merged"));
    fs::create_dir(&merged).unwrap();
    let spec = crate::layers::OverlaySpec {
        lowerdirs: vec![lower.path().to_path_buf()],
        upperdir: upper.clone(),
        workdir: work.path().join("work"),
    };
    let overlay = crate::layers::OverlayMount::mount(&spec, &merged).unwrap();
    let mut run_spec = spec_at(&merged);
    run_spec.argv = [
        "/bin/sh",
        "-c",
        "ls /proc/self >/dev/null && cat /etc/resolv.conf",
    ]
    .map(String::from)
    .to_vec();
    run_spec.mounts = vec![Mount::Tmpfs {
        target: "/var/cache/x".into(),
        size: Some(1 << 20),
    }];
    let (result, out) = run(&run_spec);
    assert_eq!(result.unwrap().code, 0, "{out}");
    drop(overlay);
    // What is left: at most copied-up directories that equal their lower originals.
    let mut left = Vec::new();
    for entry in walk(&upper) {
        let rel = entry.strip_prefix(&upper).unwrap().to_path_buf();
        let meta = fs::symlink_metadata(&entry).unwrap();
        let orig = fs::symlink_metadata(lower.path().join(&rel));
        let same_dir = meta.is_dir()
            && orig
                .as_ref()
                .is_ok_and(|o| o.is_dir() && o.mtime() == meta.mtime() && o.mode() == meta.mode());
        if !same_dir {
            left.push(rel.display().to_string());
        }
    }
    // `/proc`, `/sys` and `/dev` stay, empty, as BuildKit leaves them; nothing else.
    left.sort();
    assert_eq!(
        left,
        ["dev", "proc", "sys"],
        "stray entries in the upperdir"
    );
    for d in ["dev", "proc", "sys"] {
        assert_eq!(fs::read_dir(upper.join(d)).unwrap().count(), 0, "{d}");
    }
}

/// Every path below `dir`, depth first.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn bind_and_tmpfs_mounts_with_stubs_removed_afterwards() {
    if !prerequisites("extra mounts") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("input"), "context file\n").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let secret = ctx.path().join("input");
    let mut spec = rootfs.spec(&[
        "/bin/sh",
        "-c",
        "cat /ctx/input; touch /ctx/new || echo ro; echo made > /out/made; \
         cat /run/secrets/s; dd if=/dev/zero of=/cache/big bs=1k count=2048 2>/dev/null || echo full",
    ]);
    spec.mounts = vec![
        Mount::Bind {
            source: ctx.path().to_path_buf(),
            target: "/ctx".into(),
            readonly: true,
        },
        Mount::Bind {
            source: out_dir.path().to_path_buf(),
            target: "/out".into(),
            readonly: false,
        },
        Mount::Bind {
            source: secret,
            target: "/run/secrets/s".into(),
            readonly: true,
        },
        Mount::Tmpfs {
            target: "/cache".into(),
            size: Some(1 << 20),
        },
    ];
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0, "{out}");
    let lines: Vec<_> = out.lines().filter(|l| !l.starts_with("touch:")).collect();
    assert_eq!(
        lines,
        ["context file", "ro", "context file", "full"],
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(out_dir.path().join("made")).unwrap(),
        "made\n"
    );
    assert!(!ctx.path().join("new").exists());
    for stub in ["ctx", "out", "run", "cache"] {
        assert!(
            !rootfs.path().join(stub).exists(),
            "stub /{stub} left behind"
        );
    }
    assert_eq!(host_mounts_under(ctx.path()), Vec::<String>::new());
}
