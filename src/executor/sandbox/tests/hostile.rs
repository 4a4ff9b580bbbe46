//! What a hostile step or image must not reach: device nodes other than Docker's
//! default `/dev` set (made by the step or shipped in the root), writable or
//! device-capable mounts below a read-only bind, and the mount flags that enforce it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use super::super::Mount;
use super::*;

/// Per-mount options (`rw,nosuid,nodev,...`, the sixth field of `mountinfo`) of every
/// mount point the command sees.
fn mount_options(spec: &SandboxSpec) -> BTreeMap<String, String> {
    let mut spec = spec.clone();
    spec.argv = ["cat", "/proc/self/mountinfo"].map(String::from).to_vec();
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0, "{out}");
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((f.get(4)?.to_string(), f.get(5)?.to_string()))
        })
        .collect()
}

fn has(options: &str, flag: &str) -> bool {
    options.split(',').any(|o| o == flag)
}

#[test]
fn device_nodes_a_step_makes_cannot_be_opened_anywhere() {
    if !prerequisites("device nodes") {
        return;
    }
    let rootfs = Rootfs::busybox();
    // mknod itself works (CAP_MKNOD is in Docker's set); opening the node does not,
    // as under runc's device cgroup: in the root, /tmp, /dev and /dev/shm alike.
    for (node, open) in [
        ("/lo b 7 0", "head -c 31 /lo"),
        ("/kmsg c 1 11", "echo x > /kmsg"),
        ("/tmp/null c 1 3", "echo x > /tmp/null"),
        ("/dev/zero2 c 1 5", "head -c 1 /dev/zero2"),
        ("/dev/shm/kmsg c 1 11", "echo x > /dev/shm/kmsg"),
    ] {
        let script = format!("mknod {node} && echo made && {open} && echo opened");
        let (code, out) = sh(&rootfs, &script);
        assert_ne!(code, 0, "{script}: {out}");
        assert!(
            out.starts_with("made\n") && out.contains("Permission denied"),
            "{script}: {out}"
        );
    }
}

#[test]
fn device_nodes_shipped_in_the_root_cannot_be_opened_by_root_or_users() {
    if !prerequisites("root device nodes") {
        return;
    }
    let rootfs = Rootfs::busybox();
    for (name, kind) in [
        ("lo", rustix::fs::FileType::BlockDevice),
        ("null2", rustix::fs::FileType::CharacterDevice),
    ] {
        let dev = if name == "lo" { (7, 0) } else { (1, 3) };
        rustix::fs::mknodat(
            rustix::fs::CWD,
            rootfs.path().join(name),
            kind,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(dev.0, dev.1),
        )
        .unwrap();
        fs::set_permissions(rootfs.path().join(name), fs::Permissions::from_mode(0o666)).unwrap();
    }
    for uid in [0, 1000] {
        for script in ["head -c 31 /lo", "echo x > /null2"] {
            let mut spec = rootfs.spec(&["/bin/sh", "-c", script]);
            (spec.uid, spec.gid) = (uid, uid);
            let (result, out) = run(&spec);
            assert_ne!(result.unwrap().code, 0, "uid {uid}: {script}: {out}");
            assert!(
                out.contains("Permission denied"),
                "uid {uid}: {script}: {out}"
            );
        }
    }
}

#[test]
fn dockers_default_devices_still_work_and_tty_has_no_terminal() {
    if !prerequisites("default devices") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let script = "head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; \
                  head -c 4 /dev/random | wc -c; echo x > /dev/null && echo null; \
                  echo x > /dev/full 2>/dev/null || echo full; (: > /dev/tty) 2>/dev/null || echo no-tty; \
                  echo x > /dev/shm/f && cat /dev/shm/f; test -c /dev/pts/ptmx && echo pts; \
                  for l in ptmx stdin stdout stderr; do readlink /dev/$l; done";
    let (code, out) = sh(&rootfs, script);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("No such device or address"))
        .collect();
    assert_eq!(
        lines,
        [
            "4",
            "4",
            "4",
            "null",
            "full",
            "no-tty",
            "x",
            "pts",
            "pts/ptmx",
            "/proc/self/fd/0",
            "/proc/self/fd/1",
            "/proc/self/fd/2"
        ],
        "{out}"
    );
    // A user can open them too (0666), and the masked /proc files read as empty.
    let mut spec = rootfs.spec(&[
        "/bin/sh",
        "-c",
        "head -c 2 /dev/zero | wc -c; wc -c < /proc/keys",
    ]);
    (spec.uid, spec.gid) = (1000, 1000);
    let (result, out) = run(&spec);
    assert_eq!((result.unwrap().code, out.as_str()), (0, "2\n0\n"));
}

#[test]
fn the_root_is_nodev_but_keeps_setuid_and_dev_is_nodev_but_for_its_nodes() {
    if !prerequisites("root mount flags") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let m = mount_options(&rootfs.spec(&[]));
    let root = &m["/"];
    assert!(has(root, "nodev") && !has(root, "nosuid"), "/: {root}");
    assert!(
        has(&m["/dev"], "nodev") && has(&m["/dev"], "nosuid"),
        "{m:?}"
    );
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let o = &m[&format!("/dev/{node}")];
        assert!(!has(o, "nodev"), "/dev/{node}: {o}");
    }
    for (path, flags) in [
        ("/dev/shm", &["nodev", "nosuid", "noexec"][..]),
        ("/dev/mqueue", &["nodev", "nosuid", "noexec"]),
        ("/proc", &["nodev", "nosuid", "noexec"]),
        ("/sys", &["nodev", "nosuid", "noexec", "ro"]),
        ("/etc/hosts", &["nodev", "nosuid", "noexec", "ro"]),
        ("/etc/resolv.conf", &["nodev", "nosuid", "noexec", "ro"]),
    ] {
        for f in flags {
            assert!(has(&m[path], f), "{path}: {} lacks {f}", m[path]);
        }
    }
}

/// A host directory with a tmpfs mounted at `inner/`, unmounted when dropped.
struct DirWithSubmount {
    dir: tempfile::TempDir,
}

impl DirWithSubmount {
    fn new() -> DirWithSubmount {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("inner");
        fs::create_dir(&inner).unwrap();
        rustix::mount::mount(
            "none",
            &inner,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            None::<&std::ffi::CStr>,
        )
        .unwrap();
        DirWithSubmount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for DirWithSubmount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(
            self.dir.path().join("inner"),
            rustix::mount::UnmountFlags::DETACH,
        );
    }
}

#[test]
fn bind_mounts_are_read_only_nosuid_and_nodev_all_the_way_down() {
    if !prerequisites("recursive bind flags") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (ro, rw) = (DirWithSubmount::new(), DirWithSubmount::new());
    let mut spec = rootfs.spec(&[
        "/bin/sh",
        "-c",
        "touch /ro/inner/x && echo wrote; touch /rw/inner/y && echo rw-ok",
    ]);
    spec.mounts = vec![
        Mount::Bind {
            source: ro.path().to_path_buf(),
            target: "/ro".into(),
            readonly: true,
        },
        Mount::Bind {
            source: rw.path().to_path_buf(),
            target: "/rw".into(),
            readonly: false,
        },
    ];
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0, "{out}");
    assert!(
        out.contains("Read-only file system") && !out.contains("wrote") && out.contains("rw-ok"),
        "{out}"
    );
    assert!(!ro.path().join("inner/x").exists());
    let m = mount_options(&spec);
    for path in ["/ro", "/ro/inner", "/rw", "/rw/inner"] {
        let o = m
            .get(path)
            .unwrap_or_else(|| panic!("{path} not mounted: {m:?}"));
        assert!(has(o, "nodev") && has(o, "nosuid"), "{path}: {o}");
        assert_eq!(has(o, "ro"), path.starts_with("/ro"), "{path}: {o}");
    }
}
