//! Whiteout entries (`.wh.NAME`, `.wh..wh..opq`), carried out per [`WhiteoutMode`]: kept
//! in overlayfs form, or done on the target.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, FileType, Mode};

use super::super::error::{Error, Result, UnsafeReason};
use super::super::resolve::{is_entry_name, list_dir, WalkError};
use super::super::sys;
use super::super::tar_write::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::{walk_error, Applier, WhiteoutMode};

impl Applier {
    /// `.wh.NAME` and `.wh..wh..opq` entries.
    pub(super) fn whiteout(
        &mut self,
        parent_comps: &[OsString],
        base: &OsStr,
        rest: &[u8],
        name: &str,
    ) -> Result<()> {
        let opaque = base.as_bytes() == OPAQUE_MARKER.as_bytes();
        if !opaque && rest.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(()); // other `.wh..wh.*` names are AUFS metadata: ignored
        }
        if !opaque && !is_entry_name(rest) {
            // `.wh..` or `.wh...` would remove the directory itself or its parent.
            return Err(Error::UnsafeEntry {
                entry: name.to_owned(),
                reason: UnsafeReason::BadWhiteout,
            });
        }
        let target = OsStr::from_bytes(rest);
        match (self.mode, opaque) {
            (WhiteoutMode::Overlay, true) => {
                let dir = self.parent(parent_comps, true, name)?;
                sys::fset_xattr(&dir, sys::opaque_xattr().as_bytes(), b"y")
                    .map_err(Error::apply("mark directory opaque", name))
            }
            (WhiteoutMode::Overlay, false) => {
                let parent = self.parent(parent_comps, true, name)?;
                self.replace(&parent, target, false, name)?;
                rfs::mknodat(&parent, target, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| Error::apply("create whiteout", name)(e.into()))
            }
            (WhiteoutMode::Delete, false) => {
                let parent = match self.walker.open_dir(parent_comps, false) {
                    Ok(fd) => fd,
                    Err(WalkError::NotFound) => return Ok(()),
                    Err(e) => return Err(walk_error(e, name)),
                };
                self.replace(&parent, target, false, name).map(|_| ())
            }
            (WhiteoutMode::Delete, true) => {
                let dir = self.parent(parent_comps, true, name)?;
                for child in list_dir(&dir).map_err(Error::apply("list opaque directory", name))? {
                    let mut path = parent_comps.to_vec();
                    path.push(child.clone());
                    if !self.written.contains(&path) {
                        self.replace(&dir, &child, false, name)?;
                    }
                }
                Ok(())
            }
        }
    }
}
