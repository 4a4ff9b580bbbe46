//! The mount plan and the stub logic against a recording fake [`Sys`] (no root).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;

use rustix::mount::MountFlags;

use super::*;
use crate::executor::sandbox::tests::spec_at;
use crate::executor::sandbox::Mount;

/// An in-memory tree: path → (kind, mtime, symlink target); records every call.
#[derive(Default)]
struct Fake {
    nodes: RefCell<BTreeMap<String, (Kind, Ts, String)>>,
    calls: RefCell<Vec<String>>,
    clock: RefCell<i64>,
}

impl Fake {
    fn with(paths: &[(&str, Kind)]) -> Fake {
        let fake = Fake::default();
        fake.nodes
            .borrow_mut()
            .insert("/".into(), (Kind::Dir, (1, 0), String::new()));
        for (p, k) in paths {
            fake.nodes
                .borrow_mut()
                .insert((*p).into(), (*k, (1, 0), String::new()));
        }
        fake
    }

    fn link(self, path: &str, target: &str) -> Fake {
        self.nodes
            .borrow_mut()
            .insert(path.into(), (Kind::Symlink, (1, 0), target.into()));
        self
    }

    fn log(&self, call: String) {
        self.calls.borrow_mut().push(call);
    }

    fn parent(path: &str) -> String {
        match path.rfind('/') {
            Some(0) | None => "/".into(),
            Some(i) => path[..i].into(),
        }
    }

    /// Creates a node and bumps the parent's mtime, as a filesystem would.
    fn create(&self, path: &str, kind: Kind) -> io::Result<()> {
        let mut nodes = self.nodes.borrow_mut();
        if nodes.contains_key(path) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        *self.clock.borrow_mut() += 1;
        let now = (100 + *self.clock.borrow(), 0);
        nodes.insert(path.into(), (kind, now, String::new()));
        if let Some(p) = nodes.get_mut(&Fake::parent(path)) {
            p.1 = now;
        }
        Ok(())
    }

    fn meta(&self, path: &str, follow: bool) -> io::Result<Option<Meta>> {
        let real = if follow {
            resolve(self, path)?
        } else {
            path.to_owned()
        };
        Ok(self.nodes.borrow().get(&real).map(|(kind, mtime, _)| Meta {
            kind: *kind,
            size: 0,
            atime: (0, 0),
            mtime: *mtime,
        }))
    }
}

impl Sys for Fake {
    fn lstat(&self, path: &str) -> io::Result<Option<Meta>> {
        self.meta(path, false)
    }
    fn stat(&self, path: &str) -> io::Result<Option<Meta>> {
        self.meta(path, true)
    }
    fn readlink(&self, path: &str) -> io::Result<String> {
        Ok(self.nodes.borrow()[path].2.clone())
    }
    fn set_times(&self, path: &str, _atime: Ts, mtime: Ts) -> io::Result<()> {
        self.log(format!("set_times {path} {}", mtime.0));
        if let Some(n) = self.nodes.borrow_mut().get_mut(path) {
            n.1 = mtime;
        }
        Ok(())
    }
    fn mkdir(&self, path: &str, _mode: u32) -> io::Result<()> {
        self.log(format!("mkdir {path}"));
        self.create(path, Kind::Dir)
    }
    fn create_file(&self, path: &str) -> io::Result<()> {
        self.log(format!("create {path}"));
        self.create(path, Kind::File)
    }
    fn write_file(&self, path: &str, _contents: &[u8]) -> io::Result<()> {
        self.log(format!("write {path}"));
        self.nodes
            .borrow_mut()
            .insert(path.into(), (Kind::File, (0, 0), String::new()));
        Ok(())
    }
    fn mount(
        &self,
        _source: &str,
        target: &str,
        fstype: &str,
        _flags: MountFlags,
        _data: &str,
    ) -> io::Result<()> {
        self.log(format!("mount {fstype} {target}"));
        Ok(())
    }
    fn bind(&self, source: &str, target: &str) -> io::Result<()> {
        self.log(format!("bind {source} {target}"));
        Ok(())
    }
    fn restrict(&self, target: &str, flags: MountFlags) -> io::Result<()> {
        let ro = if flags.contains(MountFlags::RDONLY) {
            "ro"
        } else {
            "rw"
        };
        self.log(format!("restrict {target} {ro}"));
        Ok(())
    }
    fn allow_devices(&self, target: &str) -> io::Result<()> {
        self.log(format!("allow_devices {target}"));
        Ok(())
    }
    fn attach(&self, tree: usize, target: &str) -> io::Result<()> {
        self.log(format!("attach {tree} {target}"));
        Ok(())
    }
    fn mknod(&self, path: &str, _major: u32, _minor: u32) -> io::Result<()> {
        self.log(format!("mknod {path}"));
        Ok(())
    }
    fn symlink(&self, _target: &str, link: &str) -> io::Result<()> {
        self.log(format!("symlink {link}"));
        Ok(())
    }
    fn unmount(&self, target: &str) -> io::Result<()> {
        self.log(format!("unmount {target}"));
        Ok(())
    }
    fn remove(&self, path: &str, _dir: bool) -> io::Result<()> {
        self.log(format!("remove {path}"));
        self.nodes.borrow_mut().remove(path);
        Ok(())
    }
}

fn calls(fake: &Fake) -> Vec<String> {
    fake.calls.borrow().clone()
}

fn image() -> Vec<(&'static str, Kind)> {
    vec![
        ("/proc", Kind::Dir),
        ("/dev", Kind::Dir),
        ("/sys", Kind::Dir),
        ("/etc", Kind::Dir),
        ("/etc/hosts", Kind::File),
        ("/etc/resolv.conf", Kind::File),
        ("/etc/hostname", Kind::File),
        ("/proc/kcore", Kind::File),
        ("/sys/firmware", Kind::Dir),
        ("/proc/sys", Kind::Dir),
    ]
}

#[test]
fn plan_mounts_the_standard_tree_then_user_mounts_then_masks() {
    let mut spec = spec_at("/r");
    spec.mounts = vec![
        Mount::Tmpfs {
            target: "/cache".into(),
            size: Some(1 << 20),
        },
        Mount::Bind {
            source: "/host/ctx".into(),
            target: "/ctx".into(),
            readonly: true,
        },
    ];
    let steps = plan(&spec, &[true], None);
    let pos = |want: &Step| steps.iter().position(|s| s == want).unwrap();
    let proc_mount = pos(&Step::Mount {
        fstype: "proc",
        target: "/proc".into(),
        flags: MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        data: String::new(),
    });
    let attach = pos(&Step::Attach {
        tree: 0,
        target: "/ctx".into(),
    });
    let mask = pos(&Step::Mask {
        path: "/proc/kcore",
    });
    let ro = pos(&Step::ReadOnlyPath { path: "/proc/sys" });
    assert!(proc_mount < attach && attach < mask && mask < ro);
    // The bind's flags are set on its whole cloned tree before it is attached.
    assert!(!steps
        .iter()
        .any(|s| matches!(s, Step::Restrict { target, .. } if target == "/ctx")));
    assert!(steps.contains(&Step::Mount {
        fstype: "tmpfs",
        target: "/cache".into(),
        flags: MountFlags::NOSUID | MountFlags::NODEV,
        data: "size=1048576".into()
    }));
    assert!(steps.contains(&Step::WriteFile {
        path: format!("{STAGE}/hostname"),
        contents: b"host\n".to_vec()
    }));
}

#[test]
fn in_a_user_namespace_proc_sys_and_device_nodes_are_attached_trees() {
    let mut spec = spec_at("/r");
    spec.mounts = vec![Mount::Bind {
        source: "/host/ctx".into(),
        target: "/ctx".into(),
        readonly: true,
    }];
    let host = super::plan::HostTrees {
        first: 1,
        tty_group: false,
    };
    let steps = plan(&spec, &[true], Some(host));
    let attached = |tree: usize, target: &str| {
        steps.contains(&Step::Attach {
            tree,
            target: target.into(),
        })
    };
    // The bind source first, then null zero full random urandom tty, proc, sys.
    assert!(attached(0, "/ctx"));
    assert!(attached(1, "/dev/null") && attached(6, "/dev/tty"));
    assert!(attached(7, "/proc") && attached(8, "/sys"));
    assert!(steps.contains(&Step::AllowDevices {
        target: "/dev/null".into()
    }));
    let made_here = |s: &Step| {
        matches!(s, Step::Mknod { .. })
            || matches!(s, Step::Mount { fstype, .. } if *fstype == "proc" || *fstype == "sysfs")
    };
    assert!(!steps.iter().any(made_here), "{steps:?}");
    // Without group 5 mapped, devpts is mounted without `gid=5`.
    assert!(steps.iter().any(|s| matches!(s,
        Step::Mount { fstype: "devpts", data, .. } if !data.contains("gid="))));
    let root = plan(&spec, &[true], None);
    assert!(root.iter().any(made_here));
}

#[test]
fn existing_targets_get_no_stubs_and_masks_pick_file_or_dir() {
    let fake = Fake::with(&image());
    let mut stubs = Stubs::default();
    apply(&plan(&spec_at("/r"), &[], None), &fake, &mut stubs).unwrap();
    let log = calls(&fake);
    assert!(!log.iter().any(|c| c.starts_with("create ")), "{log:?}");
    assert!(log.contains(&"bind /dev/.rbuild-etc/hosts /etc/hosts".to_owned()));
    assert!(log.contains(&"restrict /etc/hosts ro".to_owned()));
    assert!(
        log.contains(&"bind /dev/null /proc/kcore".to_owned()),
        "file masked with /dev/null"
    );
    assert!(
        log.contains(&"mount tmpfs /sys/firmware".to_owned()),
        "directory masked with tmpfs"
    );
    assert!(log.contains(&"restrict /proc/sys ro".to_owned()));
    assert!(
        !log.iter().any(|c| c.contains("/proc/acpi")),
        "missing masked paths are skipped"
    );
    stubs.cleanup(&fake);
    assert_eq!(calls(&fake), log, "nothing to clean up");
}

#[test]
fn missing_targets_become_stubs_that_are_removed_and_parent_times_restored() {
    let fake = Fake::with(&[
        ("/proc", Kind::Dir),
        ("/dev", Kind::Dir),
        ("/sys", Kind::Dir),
        ("/etc", Kind::Dir),
    ]);
    let mut spec = spec_at("/r");
    spec.mounts = vec![Mount::Tmpfs {
        target: "/a/b".into(),
        size: None,
    }];
    let mut stubs = Stubs::default();
    apply(&plan(&spec, &[], None), &fake, &mut stubs).unwrap();
    let log = calls(&fake);
    for want in [
        "create /etc/hosts",
        "create /etc/resolv.conf",
        "create /etc/hostname",
        "mkdir /a",
        "mkdir /a/b",
    ] {
        assert!(log.contains(&want.to_owned()), "{want}: {log:?}");
    }
    fake.calls.borrow_mut().clear();
    stubs.cleanup(&fake);
    assert_eq!(
        calls(&fake),
        [
            "unmount /a/b",
            "unmount /etc/hostname",
            "unmount /etc/resolv.conf",
            "unmount /etc/hosts",
            "remove /a/b",
            "remove /a",
            "remove /etc/hostname",
            "remove /etc/resolv.conf",
            "remove /etc/hosts",
            "set_times /etc 1",
            "set_times / 1",
        ]
    );
}

#[test]
fn a_parent_changed_by_the_step_keeps_its_new_time() {
    let fake = Fake::with(&[
        ("/proc", Kind::Dir),
        ("/dev", Kind::Dir),
        ("/sys", Kind::Dir),
        ("/etc", Kind::Dir),
    ]);
    let mut stubs = Stubs::default();
    apply(&plan(&spec_at("/r"), &[], None), &fake, &mut stubs).unwrap();
    fake.create("/etc/written-by-the-step", Kind::File).unwrap();
    fake.calls.borrow_mut().clear();
    stubs.cleanup(&fake);
    assert!(
        !calls(&fake).iter().any(|c| c.starts_with("set_times /etc")),
        "{:?}",
        calls(&fake)
    );
}

#[test]
fn targets_resolve_symlinks_inside_the_root() {
    let fake = Fake::with(&image())
        .link("/etc/resolv.conf", "../run/resolv.conf")
        .link("/data", "/srv/../etc");
    assert_eq!(resolve(&fake, "/data/hosts").unwrap(), "/etc/hosts");
    assert_eq!(
        resolve(&fake, "/etc/resolv.conf").unwrap(),
        "/run/resolv.conf"
    );
    assert_eq!(resolve(&fake, "/../../etc/x/y").unwrap(), "/etc/x/y");
    let mut stubs = Stubs::default();
    apply(&plan(&spec_at("/r"), &[], None), &fake, &mut stubs).unwrap();
    let log = calls(&fake);
    assert!(
        log.contains(&"mkdir /run".to_owned())
            && log.contains(&"create /run/resolv.conf".to_owned()),
        "{log:?}"
    );
    assert!(log.contains(&"bind /dev/.rbuild-etc/resolv.conf /run/resolv.conf".to_owned()));
    let looped = Fake::with(&[]).link("/a", "/b").link("/b", "/a");
    assert_eq!(
        resolve(&looped, "/a/x").unwrap_err().raw_os_error(),
        Some(libc::ELOOP)
    );
}

#[test]
fn proc_dev_and_sys_must_be_real_directories() {
    let mut nodes = image();
    nodes.retain(|(p, _)| *p != "/proc");
    let fake = Fake::with(&nodes).link("/proc", "/etc");
    let err = apply(
        &plan(&spec_at("/r"), &[], None),
        &fake,
        &mut Stubs::default(),
    )
    .unwrap_err();
    assert_eq!((err.op, err.path.as_str()), (SetupOp::CheckTarget, "/proc"));
    let fake = Fake::with(&[("/dev", Kind::File)]);
    let err = apply(
        &plan(&spec_at("/r"), &[], None),
        &fake,
        &mut Stubs::default(),
    )
    .unwrap_err();
    assert_eq!(err.op, SetupOp::CheckTarget);
}

#[test]
fn a_bind_target_of_the_wrong_type_is_refused() {
    let fake = Fake::with(&image());
    let mut spec = spec_at("/r");
    spec.mounts = vec![Mount::Bind {
        source: "/host/file".into(),
        target: "/etc".into(),
        readonly: false,
    }];
    let err = apply(&plan(&spec, &[false], None), &fake, &mut Stubs::default()).unwrap_err();
    assert_eq!(
        (err.op, err.path.as_str(), err.error.raw_os_error()),
        (SetupOp::CheckTarget, "/etc", Some(libc::EISDIR))
    );
}

#[test]
fn an_empty_root_keeps_the_system_directories_as_buildkit_does() {
    let fake = Fake::with(&[]);
    let mut stubs = Stubs::default();
    apply(&plan(&spec_at("/r"), &[], None), &fake, &mut stubs).unwrap();
    fake.calls.borrow_mut().clear();
    stubs.cleanup(&fake);
    let log = calls(&fake);
    for kept in ["/dev", "/proc", "/sys", "/etc"] {
        assert!(!log.contains(&format!("remove {kept}")), "{kept}: {log:?}");
    }
    assert!(log.contains(&"remove /etc/hosts".to_owned()), "{log:?}");
    assert!(!log.iter().any(|c| c == "set_times / 1"), "{log:?}");
}

#[test]
fn dev_is_nodev_and_only_dockers_nodes_are_mounts_that_allow_devices() {
    let steps = plan(&spec_at("/r"), &[], None);
    assert!(steps.contains(&Step::Mount {
        fstype: "tmpfs",
        target: "/dev".into(),
        flags: MountFlags::NOSUID | MountFlags::NODEV | MountFlags::STRICTATIME,
        data: "mode=755,size=65536k".into(),
    }));
    let allowed: Vec<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::AllowDevices { target } => Some(target.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        allowed,
        [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty"
        ]
    );
    for node in allowed {
        let made = steps
            .iter()
            .position(|s| matches!(s, Step::Mknod { path, .. } if path == node));
        let bound = steps.iter().position(
            |s| matches!(s, Step::Bind { source, target } if source == node && target == node),
        );
        let allowed_at = steps
            .iter()
            .position(|s| matches!(s, Step::AllowDevices { target } if target == node));
        assert!(
            made < bound && bound < allowed_at && made.is_some(),
            "{node}: mknod, bind onto itself, then allow devices on that mount"
        );
    }
}

#[test]
fn binds_and_the_root_get_their_flags() {
    let bind = |readonly| BindSource {
        path: "/host".into(),
        readonly,
    };
    assert_eq!(
        bind(true).flags(),
        MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV
    );
    assert_eq!(bind(false).flags(), MountFlags::NOSUID | MountFlags::NODEV);
    assert_eq!(
        ROOT_FLAGS,
        MountFlags::NODEV,
        "setuid binaries keep working"
    );
    use crate::executor::sandbox::sys::attr;
    assert_eq!(
        linux::attr_bits(bind(true).flags()),
        attr::RDONLY | attr::NOSUID | attr::NODEV
    );
    assert_eq!(
        linux::attr_bits(MountFlags::NOEXEC | MountFlags::STRICTATIME | MountFlags::BIND),
        attr::NOEXEC
    );
}
