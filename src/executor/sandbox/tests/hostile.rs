//! What a hostile step or image must not reach: writable or device-capable mounts
//! below a bind, and the mount flags that enforce it.

use std::collections::BTreeMap;

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
