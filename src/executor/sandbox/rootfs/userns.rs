//! The trees a step in a user namespace (a rootless build) needs from before
//! `pivot_root`: the host's device nodes, a procfs and a sysfs (see [`HostTrees`]).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::CWD;
use rustix::mount::{self as rmount, FsMountFlags, FsOpenFlags, MountAttrFlags, OpenTreeFlags};

use super::plan::{HostTrees, DEVICES};
use super::Failure;
use crate::executor::sandbox::error::SetupOp;
use crate::executor::sandbox::sys::{self, attr, Reach};

/// The host's [`DEVICES`] nodes (each cloned alone), a new procfs and a read-only sysfs
/// (the host's `/sys` cloned read-only when the network namespace is the host's: a
/// sysfs belongs to the network namespace of its mounter), in [`HostTrees`] order.
pub(crate) fn host_trees(first: usize) -> Result<(Vec<OwnedFd>, HostTrees), Failure> {
    let mut trees = Vec::with_capacity(DEVICES.len() + 2);
    for (name, _, _) in DEVICES {
        let path = format!("/dev/{name}");
        let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
        let tree = rmount::open_tree(CWD, path.as_str(), flags)
            .map_err(|e| fail(SetupOp::CloneTree, &path)(e.into()))?;
        trees.push(tree);
    }
    let nsd = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    trees.push(new_mount("proc", nsd).map_err(fail(SetupOp::Mount, "/proc"))?);
    let sysfs = match new_mount("sysfs", nsd | MountAttrFlags::MOUNT_ATTR_RDONLY) {
        Ok(tree) => tree,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => host_sys()?,
        Err(e) => return Err(fail(SetupOp::Mount, "/sys")(e)),
    };
    trees.push(sysfs);
    let tty_group = id_mapped("/proc/self/gid_map", 5);
    Ok((trees, HostTrees { first, tty_group }))
}

/// Whether the map at `path` (`inside outside count` lines) maps `id`.
fn id_mapped(path: &str, id: u64) -> bool {
    let map = std::fs::read_to_string(path).unwrap_or_default();
    map.lines().any(|line| {
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        matches!(n[..], [inside, _, count] if inside <= id && id < inside + count)
    })
}

/// A detached new mount of `fstype` with `attrs`.
fn new_mount(fstype: &str, attrs: MountAttrFlags) -> std::io::Result<OwnedFd> {
    let fs = rmount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    rmount::fsconfig_create(&fs)?;
    Ok(rmount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?)
}

/// The host's `/sys` with every mount below it, read-only, `nosuid,nodev,noexec`.
fn host_sys() -> Result<OwnedFd, Failure> {
    let path = Path::new("/sys");
    let flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_RECURSIVE;
    let tree = rmount::open_tree(CWD, path, flags)
        .map_err(|e| fail(SetupOp::CloneTree, "/sys")(e.into()))?;
    let set = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
    sys::mount_setattr(tree.as_fd(), c"", set, 0, Reach::Tree, false)
        .map_err(fail(SetupOp::SetAttrs, "/sys"))?;
    Ok(tree)
}

/// A [`Failure`] of `op` on `path`.
fn fail(op: SetupOp, path: &str) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |error| Failure {
        op,
        path: path.to_owned(),
        error,
    }
}
