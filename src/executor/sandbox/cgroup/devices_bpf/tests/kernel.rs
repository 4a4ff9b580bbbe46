//! The program in the kernel: loaded, attached to a step cgroup made by
//! [`StepCgroup`] on a cgroup2 mount of its own, and obeyed by a process in it.
//!
//! Runs as root on any host whose kernel has cgroup v2 and eBPF (also a hybrid or v1
//! host: the cgroup2 filesystem is mounted for the test, in a mount namespace of the
//! test's thread, so nothing else sees it). Skipped with the reason otherwise.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use super::super::super::discover::parse_memberships;
use super::super::super::{Controller, Hierarchy, Place, StepCgroup, Version};
use super::*;
use crate::executor::sandbox::sys::{self, Probe};
use crate::executor::sandbox::Limits;

/// Says why the test does not run.
fn skip(why: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipped: the device program test {why}");
    }
}

/// A temporary directory with a cgroup2 mount and a tmpfs that allows device nodes
/// (no `nodev`), both unmounted when dropped.
struct Scratch {
    _base: tempfile::TempDir,
    cgroup: PathBuf,
    nodes: PathBuf,
}

impl Scratch {
    /// In a fresh mount namespace of the calling thread (mounts private, so nothing
    /// propagates to the host's).
    fn mount() -> Result<Scratch, String> {
        fn mounted(what: &'static str) -> impl Fn(rustix::io::Errno) -> String {
            move |e| format!("cannot {what}: {e}")
        }
        sys::unshare(rustix::thread::UnshareFlags::NEWNS)
            .map_err(|e| format!("cannot unshare the mount namespace: {e}"))?;
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
        .map_err(mounted("make the mounts private"))?;
        let base = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (cgroup, nodes) = (base.path().join("cgroup"), base.path().join("nodes"));
        for dir in [&cgroup, &nodes] {
            std::fs::create_dir(dir).map_err(|e| e.to_string())?;
        }
        let none = MountFlags::empty();
        rustix::mount::mount("none", &cgroup, "cgroup2", none, None)
            .map_err(mounted("mount cgroup2"))?;
        let scratch = Scratch {
            _base: base,
            cgroup,
            nodes,
        };
        rustix::mount::mount("tmpfs", &scratch.nodes, "tmpfs", none, Some(c"mode=700"))
            .map_err(mounted("mount a tmpfs"))?;
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for dir in [&self.nodes, &self.cgroup] {
            let _ = rustix::mount::unmount(dir, UnmountFlags::DETACH);
        }
    }
}

/// A step cgroup removed when dropped (also when the test fails).
struct Removed(StepCgroup);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

/// The own cgroup on the unified hierarchy, from `/proc/self/cgroup`.
fn own_v2_path() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    parse_memberships(&text)
        .into_iter()
        .find(|m| m.controllers.is_empty())
        .map(|m| m.path)
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Whether this host refuses the program (no privilege, no eBPF): `Some(why)`; any
/// other load failure is a bug, and fails the test with the verifier's log.
fn refused() -> Option<String> {
    let insns = program::program(&ALLOW).unwrap();
    match load(&insns) {
        Ok(_) => None,
        Err(DeviceProgramError::Load { error, log })
            if matches!(error.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) =>
        {
            Some(format!("cannot load an eBPF program here: {error} {log}"))
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_kernel_loads_the_program() {
    if !rustix::process::geteuid().is_root() {
        return skip("needs root");
    }
    if let Some(why) = refused() {
        skip(&why);
    }
}

#[test]
fn a_program_the_verifier_refuses_fails_with_its_log() {
    if !rustix::process::geteuid().is_root() {
        return skip("needs root");
    }
    if let Some(why) = refused() {
        return skip(&why);
    }
    // `exit` with r0 never set.
    let exit = program::Insn {
        code: program::JMP_EXIT,
        regs: 0,
        off: 0,
        imm: 0,
    };
    let err = load(&[exit]).unwrap_err();
    assert!(matches!(err, DeviceProgramError::Load { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("; verifier: ") && text.contains("R0"),
        "{text}"
    );
    assert_eq!(io::Error::from(err).raw_os_error(), Some(libc::EACCES));
}

/// The device nodes the test opens, made in the scratch tmpfs by the test (outside
/// the step cgroup).
const NODES: [(&str, FileType, u32, u32); 4] = [
    ("loop0", FileType::BlockDevice, 7, 0),
    ("kmsg", FileType::CharacterDevice, 1, 11),
    ("null", FileType::CharacterDevice, 1, 3),
    ("pts", FileType::CharacterDevice, 136, 4000),
];

fn make_nodes(dir: &Path) {
    for (name, kind, major, minor) in NODES {
        let dev = rustix::fs::makedev(major, minor);
        let mode = rustix::fs::Mode::from_raw_mode(0o600);
        rustix::fs::mknodat(rustix::fs::CWD, dir.join(name), kind, mode, dev).unwrap();
    }
}

/// A step cgroup with only the device program, made by [`StepCgroup`] below the own
/// cgroup on the scratch cgroup2 mount; its directory.
fn step_cgroup(scratch: &Scratch) -> (Removed, PathBuf) {
    let own = own_v2_path().expect("a cgroup v2 membership");
    let dir = scratch.cgroup.join(own.trim_start_matches('/'));
    let place = Place {
        version: Version::V2,
        hierarchies: vec![Hierarchy {
            dir: dir.clone(),
            controllers: vec![Controller::Devices],
        }],
        missing: Vec::new(),
    };
    let name = format!("rbuild-devices-test-{}", std::process::id());
    let step = Removed(StepCgroup::create(&place, &name, &Limits::default()).unwrap());
    (step, dir.join(name))
}

/// Runs a child that joins the cgroup `step` and tries the devices: the errno of
/// each try.
fn tries_in(step: &Path, nodes: &Path) -> Vec<i32> {
    let node = |name: &str| c_path(&nodes.join(name));
    let (loop0, kmsg, null, pts) = (node("loop0"), node("kmsg"), node("null"), node("pts"));
    let (made_b, made_c) = (node("made-b"), node("made-c"));
    let procs = c_path(&step.join("cgroup.procs"));
    let char_dev = FileType::CharacterDevice;
    let probes = [
        Probe::Write(&procs, b"0"),
        Probe::Open(c"/dev/null", OFlags::RDWR),
        Probe::Open(&null, OFlags::RDWR),
        Probe::Open(&pts, OFlags::RDWR | OFlags::NOCTTY),
        Probe::Open(&loop0, OFlags::RDONLY),
        Probe::Open(&kmsg, OFlags::WRONLY),
        Probe::Mknod(&made_b, FileType::BlockDevice, rustix::fs::makedev(7, 0)),
        Probe::Open(&made_b, OFlags::RDONLY),
        Probe::Mknod(&made_c, char_dev, rustix::fs::makedev(1, 11)),
        Probe::Open(&made_c, OFlags::WRONLY),
    ];
    let errnos = sys::fork_probe(&probes).unwrap();
    assert_eq!(errnos.len(), probes.len(), "the child died: {errnos:?}");
    errnos
}

/// Makes the cgroup, runs the child in it and checks what it could do.
fn in_a_step_cgroup(scratch: &Scratch) {
    let (step, dir) = step_cgroup(scratch);
    let fd = std::fs::File::open(&dir).unwrap();
    assert_eq!(
        attached(fd.as_fd()).unwrap(),
        1,
        "one program on the cgroup"
    );
    make_nodes(&scratch.nodes);
    // Outside the cgroup the nodes work (the tmpfs is not nodev): a refusal inside is
    // the program's.
    let kmsg = scratch.nodes.join("kmsg");
    assert!(rustix::fs::open(&kmsg, OFlags::WRONLY, rustix::fs::Mode::empty()).is_ok());
    let errnos = tries_in(&dir, &scratch.nodes);
    let eperm = libc::EPERM;
    let (joined, allowed, pts, refused) = (errnos[0], &errnos[1..3], errnos[3], &errnos[4..]);
    assert_eq!(joined, 0, "joining the step cgroup");
    assert_eq!(allowed, [0, 0], "/dev/null and a copy of it open");
    assert_ne!(
        pts, eperm,
        "a pts minor passes the program (then has no tty)"
    );
    assert_eq!(
        refused,
        [eperm, eperm, 0, eperm, 0, eperm],
        "loop0, kmsg, mknod b 7:0, its open, mknod c 1:11, its open"
    );
    drop(step);
    assert!(!dir.exists(), "the step cgroup is removed");
}

#[test]
fn a_process_in_the_step_cgroup_opens_only_the_allowed_devices() {
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs the cgroup tests as root"
        );
        return skip("needs root");
    }
    if let Some(why) = refused() {
        return skip(&why);
    }
    // A thread of its own: the mount namespace it unshares dies with it.
    let outcome = std::thread::spawn(|| match Scratch::mount() {
        Ok(scratch) => in_a_step_cgroup(&scratch),
        Err(why) => skip(&why),
    })
    .join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
