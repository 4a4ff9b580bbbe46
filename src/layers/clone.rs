//! Copying one filesystem object with everything a layer records: type, content, owner,
//! mode (setuid bits included), xattrs (not overlayfs' or rbuild's own), device number,
//! symlink target, atime and mtime to the nanosecond, and hardlinks among the objects
//! copied by one [`Cloner`]. The native snapshotter's one copy primitive: `flatten.rs`
//! uses it to build a step's root and (moving rather than copying what is not a
//! directory) to turn a change set into a snapshot.
//!
//! Invariants: a destination never exists beforehand and is created without following
//! symlinks (`O_EXCL|O_NOFOLLOW`, `mkdir`, `symlink`, `mknod`), so copying never writes
//! outside the destination tree; owners are set before modes (`chown` clears setuid
//! bits) and xattrs after both (`chown` clears `security.capability`); directories get
//! their times last, deepest first, after their contents stopped changing them.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, CWD};

use super::error::{Error, Result};
use super::sys;
use crate::fs_error::FsError;

/// Copies objects one by one; call [`Cloner::finish`] when done.
pub(crate) struct Cloner<'a> {
    /// (dev, ino) of a multiply-linked source -> its copy: later names become links.
    links: HashMap<(u64, u64), PathBuf>,
    /// Directories made, in creation order (parents first), with their times.
    dirs: Vec<(PathBuf, Timestamps)>,
    cancel: Option<&'a AtomicBool>,
    /// Move non-directories (rename) instead of copying them.
    moving: bool,
}

impl<'a> Cloner<'a> {
    /// A cloner that stops with [`Error::Cancelled`] once `cancel` is set.
    pub(crate) fn new(cancel: Option<&'a AtomicBool>) -> Self {
        Cloner {
            links: HashMap::new(),
            dirs: Vec::new(),
            cancel,
            moving: false,
        }
    }

    /// A cloner that moves every non-directory (`rename`: all attributes and hardlinks
    /// kept, nothing copied) and copies directories, whose other children stay behind.
    /// For a source tree that is discarded afterwards; copies where a rename crosses
    /// filesystems.
    pub(crate) fn moving(cancel: Option<&'a AtomicBool>) -> Self {
        Cloner {
            moving: true,
            ..Cloner::new(cancel)
        }
    }

    /// Makes `dst` (missing; its parent exists) a copy of `src`, whose `lstat` is `meta`.
    /// A directory is created empty: copy its children next.
    pub(crate) fn clone(&mut self, src: &Path, meta: &Metadata, dst: &Path) -> Result<()> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        let ft = meta.file_type();
        if self.moving && !ft.is_dir() {
            match fs::rename(src, dst) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {}
                Err(e) => return Err(Error::fs("move into", dst)(e)),
            }
        }
        let key = (meta.dev(), meta.ino());
        let linkable = !ft.is_dir() && meta.nlink() > 1;
        if linkable {
            if let Some(first) = self.links.get(&key) {
                return fs::hard_link(first, dst).map_err(Error::fs("create hardlink", dst));
            }
        }
        if ft.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dst)
                .map_err(Error::fs("create directory", dst))?;
            set_attrs(src, meta, dst, true)?;
            self.dirs.push((dst.to_path_buf(), times(meta)));
        } else if ft.is_file() {
            copy_file(src, meta, dst)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(src).map_err(Error::fs("read symlink", src))?;
            std::os::unix::fs::symlink(target, dst).map_err(Error::fs("create symlink", dst))?;
            set_attrs(src, meta, dst, false)?;
            set_times(dst, &times(meta))?;
        } else {
            let kind = if ft.is_char_device() {
                FileType::CharacterDevice
            } else if ft.is_block_device() {
                FileType::BlockDevice
            } else if ft.is_fifo() {
                FileType::Fifo
            } else {
                FileType::Socket
            };
            rfs::mknodat(CWD, dst, kind, Mode::empty(), meta.rdev())
                .map_err(|e| Error::fs("create device node", dst)(e.into()))?;
            set_attrs(src, meta, dst, true)?;
            set_times(dst, &times(meta))?;
        }
        if linkable {
            self.links.insert(key, dst.to_path_buf());
        }
        Ok(())
    }

    /// Gives the directories their times, deepest first.
    pub(crate) fn finish(self) -> Result<()> {
        for (dir, ts) in self.dirs.iter().rev() {
            set_times(dir, ts)?;
        }
        Ok(())
    }
}

/// A regular file: content through `copy_file_range` (a reflink where the filesystem
/// can), then the attributes through the open descriptor.
fn copy_file(src: &Path, meta: &Metadata, dst: &Path) -> Result<()> {
    let nofollow = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    let mut from = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow)
        .open(src)
        .map_err(Error::fs("open", src))?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nofollow)
        .open(dst)
        .map_err(Error::fs("create file", dst))?;
    io::copy(&mut from, &mut to).map_err(Error::fs("copy into", dst))?;
    let fd = to.as_fd();
    let (uid, gid) = ids(meta);
    rfs::fchown(fd, Some(uid), Some(gid)).map_err(|e| Error::fs("set owner of", dst)(e.into()))?;
    rfs::fchmod(fd, Mode::from_raw_mode(meta.mode() & 0o7777))
        .map_err(|e| Error::fs("set mode of", dst)(e.into()))?;
    for (k, v) in sys::list_xattrs(src).map_err(Error::fs("read xattrs of", src))? {
        sys::fset_xattr(fd, &k, &v).map_err(Error::fs("set xattrs of", dst))?;
    }
    rfs::futimens(fd, &times(meta)).map_err(|e| Error::fs("set times of", dst)(e.into()))
}

/// Owner, then mode (`chmod` only when `chmod`: never on a symlink), then xattrs.
fn set_attrs(src: &Path, meta: &Metadata, dst: &Path, chmod: bool) -> Result<()> {
    let (uid, gid) = ids(meta);
    rfs::chownat(CWD, dst, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::fs("set owner of", dst)(e.into()))?;
    if chmod {
        // `dst` was created just now by us as a non-symlink: following it is safe.
        rfs::chmodat(
            CWD,
            dst,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            AtFlags::empty(),
        )
        .map_err(|e| Error::fs("set mode of", dst)(e.into()))?;
    }
    for (k, v) in sys::list_xattrs(src).map_err(Error::fs("read xattrs of", src))? {
        sys::lset_xattr(dst, &k, &v).map_err(Error::fs("set xattrs of", dst))?;
    }
    Ok(())
}

fn set_times(path: &Path, ts: &Timestamps) -> Result<()> {
    rfs::utimensat(CWD, path, ts, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::fs("set times of", path)(e.into()))
}

fn ids(meta: &Metadata) -> (Uid, Gid) {
    (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()))
}

fn times(meta: &Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    }
}
