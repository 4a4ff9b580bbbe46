//! The real [`Sys`] (safe `rustix` calls) and [`enter`]: everything that happens
//! before `pivot_root`, while host paths are still reachable.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, CWD};
use rustix::mount::{
    self as rmount, MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};

use super::plan::HostTrees;
use super::{BindSource, Failure, Kind, Meta, Sys, Ts, ROOT_FLAGS};
use crate::executor::sandbox::error::SetupOp;
use crate::executor::sandbox::sys::{self, attr, Reach};

/// The real system calls; holds the cloned host bind sources for [`Sys::attach`].
pub(crate) struct LinuxSys {
    trees: Vec<OwnedFd>,
}

/// Before `pivot_root`: makes every mount private (nothing propagates to or from the
/// host), clones the bind sources (`open_tree`, while their host paths resolve) and
/// gives every mount of each clone its [`BindSource::flags`], makes `rootfs` a mount
/// point with [`ROOT_FLAGS`] on it and every mount below, and pivots into it,
/// detaching the old root. In a user namespace it also makes the [`HostTrees`] first.
/// Returns the [`Sys`] holding the clones, per bind source whether it is a directory,
/// and the host trees made.
pub(crate) fn enter(
    rootfs: &Path,
    binds: &[BindSource],
) -> Result<(LinuxSys, Vec<bool>, Option<HostTrees>), Failure> {
    let fail = |op: SetupOp, path: &Path| {
        let path = path.display().to_string();
        move |e: rustix::io::Errno| Failure {
            op,
            path,
            error: e.into(),
        }
    };
    let root = Path::new("/");
    let private = MountPropagationFlags::PRIVATE | MountPropagationFlags::REC;
    rmount::mount_change(root, private).map_err(fail(SetupOp::MakePrivate, root))?;
    let mut trees = Vec::with_capacity(binds.len());
    let mut is_dir = Vec::with_capacity(binds.len());
    for bind in binds {
        let source = bind.path.as_path();
        let st = rfs::stat(source).map_err(fail(SetupOp::Stat, source))?;
        is_dir.push(FileType::from_raw_mode(st.st_mode) == FileType::Directory);
        let flags = OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE;
        let tree =
            rmount::open_tree(CWD, source, flags).map_err(fail(SetupOp::CloneTree, source))?;
        // The detached clone is restricted before anything can see it.
        sys::mount_setattr(
            tree.as_fd(),
            c"",
            attr_bits(bind.flags()),
            0,
            Reach::Tree,
            false,
        )
        .map_err(failure(SetupOp::SetAttrs, source))?;
        trees.push(tree);
    }
    let host =
        if crate::userns::in_user_namespace() || super::super::binfmt::in_own_user_namespace() {
            let (more, host) = super::userns::host_trees(trees.len())?;
            trees.extend(more);
            Some(host)
        } else {
            None
        };
    rmount::mount_bind_recursive(rootfs, rootfs).map_err(fail(SetupOp::Bind, rootfs))?;
    let root_path = c_path(rootfs).map_err(failure(SetupOp::SetAttrs, rootfs))?;
    sys::mount_setattr(CWD, &root_path, attr_bits(ROOT_FLAGS), 0, Reach::Tree, true)
        .map_err(failure(SetupOp::SetAttrs, rootfs))?;
    rustix::process::chdir(rootfs).map_err(fail(SetupOp::PivotRoot, rootfs))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "."
    // then removes it, and no directory for the old root is needed in the rootfs.
    let dot = Path::new(".");
    rustix::process::pivot_root(dot, dot).map_err(fail(SetupOp::PivotRoot, rootfs))?;
    rmount::unmount(dot, UnmountFlags::DETACH).map_err(fail(SetupOp::PivotRoot, rootfs))?;
    rustix::process::chdir(root).map_err(fail(SetupOp::PivotRoot, root))?;
    Ok((LinuxSys { trees }, is_dir, host))
}

/// A [`Failure`] of `op` on host path `path`.
fn failure(op: SetupOp, path: &Path) -> impl FnOnce(io::Error) -> Failure {
    let path = path.display().to_string();
    move |error| Failure { op, path, error }
}

/// `path` as a C string (`EINVAL` if it holds a NUL byte).
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The `MOUNT_ATTR_*` bits of the `RDONLY`, `NOSUID`, `NODEV` and `NOEXEC` flags in
/// `flags` (the others have no `mount_setattr` equivalent here and are ignored).
pub(super) fn attr_bits(flags: MountFlags) -> u64 {
    [
        (MountFlags::RDONLY, attr::RDONLY),
        (MountFlags::NOSUID, attr::NOSUID),
        (MountFlags::NODEV, attr::NODEV),
        (MountFlags::NOEXEC, attr::NOEXEC),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .fold(0, |bits, (_, bit)| bits | bit)
}

/// `mount_setattr` on an absolute path inside the root (final symlinks not followed).
fn set_attrs(target: &str, set: u64, clear: u64, reach: Reach) -> io::Result<()> {
    let path: &CStr =
        &CString::new(target).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::mount_setattr(CWD, path, set, clear, reach, false)
}

fn meta(st: &rfs::Stat) -> Meta {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    };
    Meta {
        kind,
        size: st.st_size as u64,
        atime: (st.st_atime, st.st_atime_nsec as i64),
        mtime: (st.st_mtime, st.st_mtime_nsec as i64),
    }
}

fn stat_at(path: &str, flags: AtFlags) -> io::Result<Option<Meta>> {
    match rfs::statat(CWD, path, flags) {
        Ok(st) => Ok(Some(meta(&st))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn data_arg(data: &str) -> io::Result<Option<CString>> {
    if data.is_empty() {
        return Ok(None);
    }
    CString::new(data)
        .map(Some)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

impl Sys for LinuxSys {
    fn lstat(&self, path: &str) -> io::Result<Option<Meta>> {
        stat_at(path, AtFlags::SYMLINK_NOFOLLOW)
    }

    fn stat(&self, path: &str) -> io::Result<Option<Meta>> {
        stat_at(path, AtFlags::empty())
    }

    fn readlink(&self, path: &str) -> io::Result<String> {
        let target = rfs::readlink(path, Vec::new())?;
        Ok(String::from_utf8_lossy(target.as_bytes()).into_owned())
    }

    fn set_times(&self, path: &str, atime: Ts, mtime: Ts) -> io::Result<()> {
        let t = |(tv_sec, tv_nsec): Ts| Timespec { tv_sec, tv_nsec };
        let times = Timestamps {
            last_access: t(atime),
            last_modification: t(mtime),
        };
        Ok(rfs::utimensat(
            CWD,
            path,
            &times,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    fn mkdir(&self, path: &str, mode: u32) -> io::Result<()> {
        rfs::mkdirat(CWD, path, Mode::from_raw_mode(mode))?;
        // mkdir applies the umask and drops the sticky bit on some filesystems.
        Ok(rfs::chmodat(
            CWD,
            path,
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )?)
    }

    fn create_file(&self, path: &str) -> io::Result<()> {
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        rfs::openat(CWD, path, flags, Mode::from_raw_mode(0o644))?;
        Ok(())
    }

    fn write_file(&self, path: &str, contents: &[u8]) -> io::Result<()> {
        let flags =
            OFlags::CREATE | OFlags::TRUNC | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = rfs::openat(CWD, path, flags, Mode::from_raw_mode(0o644))?;
        let mut rest = contents;
        while !rest.is_empty() {
            let n = rustix::io::write(&fd, rest)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn mount(
        &self,
        source: &str,
        target: &str,
        fstype: &str,
        flags: MountFlags,
        data: &str,
    ) -> io::Result<()> {
        let data = data_arg(data)?;
        Ok(rmount::mount(
            source,
            target,
            fstype,
            flags,
            data.as_deref(),
        )?)
    }

    fn bind(&self, source: &str, target: &str) -> io::Result<()> {
        Ok(rmount::mount_bind_recursive(source, target)?)
    }

    fn restrict(&self, target: &str, flags: MountFlags) -> io::Result<()> {
        set_attrs(target, attr_bits(flags), 0, Reach::Tree)
    }

    fn allow_devices(&self, target: &str) -> io::Result<()> {
        set_attrs(target, 0, attr::NODEV, Reach::One)
    }

    fn attach(&self, tree: usize, target: &str) -> io::Result<()> {
        let fd = self
            .trees
            .get(tree)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        Ok(rmount::move_mount(
            fd,
            "",
            CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?)
    }

    fn mknod(&self, path: &str, major: u32, minor: u32) -> io::Result<()> {
        let mode = Mode::from_raw_mode(0o666);
        rfs::mknodat(
            CWD,
            path,
            FileType::CharacterDevice,
            mode,
            rfs::makedev(major, minor),
        )?;
        Ok(rfs::chmodat(CWD, path, mode, AtFlags::empty())?)
    }

    fn symlink(&self, target: &str, link: &str) -> io::Result<()> {
        Ok(rfs::symlinkat(target, CWD, link)?)
    }

    fn unmount(&self, target: &str) -> io::Result<()> {
        Ok(rmount::unmount(target, UnmountFlags::DETACH)?)
    }

    fn remove(&self, path: &str, dir: bool) -> io::Result<()> {
        let flags = if dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        Ok(rfs::unlinkat(CWD, path, flags)?)
    }
}
