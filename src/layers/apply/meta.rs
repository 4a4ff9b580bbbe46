//! The metadata an entry's node gets once it exists: owner, then mode (chown clears
//! setuid bits), then xattrs (chown clears file capabilities; overlayfs' and rbuild's own
//! are never applied), then times.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, AtFlags, Mode, Timespec, Timestamps};

use super::super::error::{Error, Result};
use super::super::sys;
use super::super::tar_read::EntryHeader;

/// The metadata to restore, checked and converted (xattrs borrowed from the header,
/// or owned by a file queued for a writer thread).
pub(super) struct Meta<'h> {
    mode: u32,
    uid: u32,
    gid: u32,
    pub(super) mtime: Timespec,
    xattrs: Cow<'h, [(Vec<u8>, Vec<u8>)]>,
}

impl<'h> Meta<'h> {
    pub(super) fn of(h: &'h EntryHeader, name: &str) -> Result<Self> {
        let too_big =
            || Error::apply("use an id over 2^32", name)(io::ErrorKind::InvalidData.into());
        Ok(Meta {
            mode: h.mode,
            uid: u32::try_from(h.uid).map_err(|_| too_big())?,
            gid: u32::try_from(h.gid).map_err(|_| too_big())?,
            mtime: Timespec {
                tv_sec: h.mtime.0,
                tv_nsec: h.mtime.1.into(),
            },
            xattrs: Cow::Borrowed(&h.xattrs),
        })
    }

    /// The same metadata, owning its xattrs.
    pub(super) fn into_owned(self) -> Meta<'static> {
        Meta {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
            xattrs: Cow::Owned(self.xattrs.into_owned()),
        }
    }
}

/// Owner, mode (not for symlinks), xattrs and mtime of a node without a descriptor.
pub(super) fn finish_node(
    parent: &OwnedFd,
    base: &OsStr,
    meta: &Meta,
    chmod: bool,
    name: &str,
) -> Result<()> {
    let (uid, gid) = ids(meta);
    rfs::chownat(
        parent,
        base,
        Some(uid),
        Some(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(Error::chown(name, uid.as_raw(), gid.as_raw()))?;
    if chmod {
        // The node was created just now by us, so the name cannot be a symlink.
        rfs::chmodat(
            parent,
            base,
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(|e| Error::apply("set mode", name)(e.into()))?;
    }
    for (k, v) in applicable(&meta.xattrs) {
        sys::set_xattr_at(parent, base, k, v).map_err(Error::apply("set xattr", name))?;
    }
    rfs::utimensat(parent, base, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::apply("set mtime", name)(e.into()))?;
    Ok(())
}

/// Owner, then mode (chown clears setuid bits), then xattrs (chown clears file
/// capabilities), on an open file or directory.
pub(super) fn set_owner_mode_xattrs(fd: &OwnedFd, meta: &Meta, name: &str) -> Result<()> {
    let (uid, gid) = ids(meta);
    rfs::fchown(fd, Some(uid), Some(gid)).map_err(Error::chown(
        name,
        uid.as_raw(),
        gid.as_raw(),
    ))?;
    rfs::fchmod(fd, Mode::from_raw_mode(meta.mode))
        .map_err(|e| Error::apply("set mode", name)(e.into()))?;
    for (k, v) in applicable(&meta.xattrs) {
        sys::fset_xattr(fd, k, v).map_err(Error::apply("set xattr", name))?;
    }
    Ok(())
}

fn ids(meta: &Meta) -> (rfs::Uid, rfs::Gid) {
    (rfs::Uid::from_raw(meta.uid), rfs::Gid::from_raw(meta.gid))
}

/// The xattrs that may be applied: never overlayfs' or rbuild's own.
fn applicable(xattrs: &[(Vec<u8>, Vec<u8>)]) -> impl Iterator<Item = (&[u8], &[u8])> {
    xattrs
        .iter()
        .filter(|(k, _)| !sys::is_private_xattr(k))
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
}

pub(super) fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}
