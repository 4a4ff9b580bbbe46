//! Device nodes in a `RUN` step, end to end: Docker's default `/dev` works, a node the
//! step makes or a base layer ships cannot be opened, and the root is `nodev` but not
//! `nosuid`.

use crate::support::{busybox, leaked_mounts};

/// The per-mount options (sixth field) of the `mountinfo` line for `mount_point`.
fn mount_options<'a>(mountinfo: &'a str, mount_point: &str) -> Option<&'a str> {
    mountinfo.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(4) == Some(&mount_point)).then(|| f.get(5).copied())?
    })
}

#[test]
fn a_run_step_cannot_open_host_devices_it_makes() {
    let Some(t) = busybox("FROM base\nRUN mknod /lo b 7 0 && head -c 31 /lo\n", &[]) else {
        return;
    };
    let err = t.build_fails(&[]);
    assert!(err.contains("Permission denied"), "{err}");
    // A native root is a plain directory on the store's file system: nodev too.
    let err = t.build_fails(&["--snapshotter", "native"]);
    assert!(err.contains("Permission denied"), "native: {err}");
    let dockerfile = std::fs::read_to_string(t.context().join("Dockerfile")).unwrap();
    let kmsg = t.context().join("kmsg.Dockerfile");
    std::fs::write(
        &kmsg,
        dockerfile.replace(
            "mknod /lo b 7 0 && head -c 31 /lo",
            "mknod /kmsg c 1 11 && echo x > /kmsg",
        ),
    )
    .unwrap();
    let err = t.build_fails(&["-f", kmsg.to_str().unwrap()]);
    assert!(err.contains("Permission denied"), "{err}");
    assert!(leaked_mounts(&t.root()).is_empty());
}

#[test]
fn dockers_default_devices_work_and_the_root_is_nodev_but_not_nosuid() {
    let Some(t) = busybox(
        "FROM base AS probe\n\
         RUN head -c 3 /dev/zero | wc -c > /zero && head -c 3 /dev/urandom | wc -c > /urandom && \
         echo x > /dev/null && echo x > /dev/shm/x && cat /dev/shm/x > /shm && ls /dev/pts > /pts && \
         cat /proc/self/mountinfo > /mountinfo\n\
         USER app\nRUN head -c 2 /dev/zero | wc -c > /tmp/zero-app\n\
         FROM scratch\nCOPY --from=probe /zero /urandom /shm /pts /mountinfo /tmp/zero-app /\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    t.build(&["-o", &format!("type=local,dest={}", out.display())]);
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert_eq!(
        [read("zero"), read("urandom"), read("shm"), read("zero-app")],
        ["3\n", "3\n", "x\n", "2\n"]
    );
    assert!(read("pts").contains("ptmx"), "{}", read("pts"));
    let mountinfo = read("mountinfo");
    let root = mount_options(&mountinfo, "/").unwrap_or_default();
    assert!(
        root.split(',').any(|o| o == "nodev") && !root.split(',').any(|o| o == "nosuid"),
        "setuid binaries keep working, device nodes do not: {mountinfo}"
    );
}

/// One entry of a hand-made layer.
struct Entry<'a> {
    path: &'a str,
    kind: tar::EntryType,
    mode: u32,
    /// File content, or the target of a symlink.
    data: &'a [u8],
    device: (u32, u32),
}

impl<'a> Entry<'a> {
    fn dir(path: &'a str) -> Entry<'a> {
        Entry::new(path, tar::EntryType::Directory, 0o755, b"")
    }

    fn file(path: &'a str, mode: u32, data: &'a [u8]) -> Entry<'a> {
        Entry::new(path, tar::EntryType::Regular, mode, data)
    }

    fn link(path: &'a str, target: &'a str) -> Entry<'a> {
        Entry::new(path, tar::EntryType::Symlink, 0o777, target.as_bytes())
    }

    fn device(path: &'a str, kind: tar::EntryType, major: u32, minor: u32) -> Entry<'a> {
        Entry {
            device: (major, minor),
            ..Entry::new(path, kind, 0o666, b"")
        }
    }

    fn new(path: &'a str, kind: tar::EntryType, mode: u32, data: &'a [u8]) -> Entry<'a> {
        Entry {
            path,
            kind,
            mode,
            data,
            device: (0, 0),
        }
    }
}

/// A tar stream of `entries`, root-owned, mtime 0.
fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_path(e.path).unwrap();
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        let mut data: &[u8] = &[];
        if e.kind.is_symlink() {
            h.set_link_name(std::str::from_utf8(e.data).unwrap())
                .unwrap();
        } else if e.kind.is_file() {
            h.set_size(e.data.len() as u64);
            data = e.data;
        } else if matches!(e.kind, tar::EntryType::Block | tar::EntryType::Char) {
            h.set_device_major(e.device.0).unwrap();
            h.set_device_minor(e.device.1).unwrap();
        }
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn device_nodes_shipped_in_a_base_layer_cannot_be_opened() {
    use tar::EntryType as E;
    if !crate::support::can_mount()
        || !std::path::Path::new("/bin/busybox").is_file()
        || !crate::registry::available(&[])
    {
        return;
    }
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n";
    let base = tar_of(&[
        Entry::dir("bin/"),
        Entry::file("bin/busybox", 0o755, &busybox),
        Entry::link("bin/sh", "busybox"),
        Entry::link("bin/head", "busybox"),
        Entry::dir("etc/"),
        Entry::file("etc/passwd", 0o644, passwd),
        Entry::file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n"),
    ]);
    // The hostile layer: the host's first loop device and a second /dev/null, 0666.
    let devices = tar_of(&[
        Entry::device("lo", E::Block, 7, 0),
        Entry::device("null2", E::Char, 1, 3),
    ]);
    let layout = tempfile::tempdir().unwrap();
    crate::registry::oci_layout_of(layout.path(), "devices", &[base, devices]);
    let reg = crate::registry::Registry::plain();
    crate::registry::push_raw(layout.path(), "devices", reg.host(), "hostile/devices");
    let image = format!("{}/hostile/devices:1", reg.host());
    for (user, run) in [
        ("nobody", "head -c 31 /lo"),
        ("root", "head -c 31 /lo"),
        ("nobody", "echo x > /null2"),
        ("root", "echo x > /null2"),
    ] {
        let t = crate::support::TestContext::new(
            &format!("FROM {image}\nUSER {user}\nRUN {run}\n"),
            &[],
        );
        let err = t.build_fails(&[]);
        assert!(err.contains("Permission denied"), "{user}: {run}: {err}");
    }
}
