//! The native snapshotter's trees, for machines where overlayfs cannot be mounted: a
//! step's root as a plain directory, what the step changed in it, and the snapshot it
//! leaves.
//!
//! - [`flatten`] copies the merged view of a snapshot stack (`stack.rs`) into an empty
//!   directory: each visible object once (a top-down walk of the merged view, not the
//!   layers applied bottom-up one after the other, so nothing hidden is ever copied),
//!   with everything `clone.rs` preserves. Cost: one copy of the whole image per step,
//!   through `copy_file_range` (a reflink where the filesystem shares extents).
//! - [`FlatRoot::changes`] diffs the root against the stack itself
//!   (`diff::diff_stack`), so no second copy is made as a baseline: one copy and one
//!   read of each ambiguous file (see `diff.rs`) per step.
//! - [`materialize`] writes a change set in overlay form (whiteouts as 0:0 character
//!   devices, opaque directories with `trusted.overlay.opaque=y`) into a new snapshot:
//!   the directory an overlay upperdir would have become, so both snapshotters share a
//!   store. Chosen over applying the layer blob just written: no decompression and
//!   parsing pass, the snapshot keeps the on-disk mtimes an upperdir keeps (the blob's
//!   are clamped to `SOURCE_DATE_EPOCH`), so a chain ID names the same snapshot
//!   whichever snapshotter built it, and the changed files are moved out of the
//!   discarded step root rather than copied, as an upperdir is renamed.
//!
//! Directory marks: each copied directory gets `trusted.rbuild.dir` = its path. A step
//! cannot read, set or copy `trusted.*` xattrs (no `CAP_SYS_ADMIN`), so a directory at
//! its own path without its mark was made by the step: `rm -rf d && mkdir d` reuses the
//! inode number on ext4, so inodes cannot tell. The differ then records the directory as
//! opaque, as overlayfs does. In a user namespace (rootless), where `trusted.*` is out
//! of reach, the mark is `user.rbuild.dir` (see `sys.rs` for why a forged one is
//! harmless). Where neither can be set, marking is skipped and such a directory is
//! diffed child by child (same filesystem, other tar bytes). Marks are private xattrs:
//! never diffed, archived or copied.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use rustix::fs::{FileType, Mode, CWD};
use rustix::io::Errno;

use super::changes::{lstat, ChangeKind, ChangeSet};
use super::clone::Cloner;
use super::diff::diff_stack;
use super::error::{Error, Result};
use super::stack::LowerDir;
use super::sys;
use crate::fs_error::FsError;

/// A plain directory holding a copy of a snapshot stack's merged view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatRoot {
    root: PathBuf,
    lowers: Vec<PathBuf>,
    marked: bool,
}

/// Copies the merged view of `lowers` (overlay-form snapshots, top first) into the empty
/// directory `root`. Stops with [`Error::Cancelled`] once `cancel` is set.
pub fn flatten(lowers: &[PathBuf], root: &Path, cancel: Option<&AtomicBool>) -> Result<FlatRoot> {
    let mut copy = Flatten {
        cloner: Cloner::new(cancel),
        root,
        marked: true,
    };
    copy.dir(&LowerDir::stack(lowers), Path::new(""))?;
    let marked = copy.marked;
    copy.cloner.finish()?;
    Ok(FlatRoot {
        root: root.to_path_buf(),
        lowers: lowers.to_vec(),
        marked,
    })
}

impl FlatRoot {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// What changed in the directory since it was flattened, as a layer records it.
    pub fn changes(&self) -> Result<ChangeSet> {
        diff_stack(&self.lowers, &self.root, self.marked)
    }
}

struct Flatten<'a> {
    cloner: Cloner<'a>,
    root: &'a Path,
    /// Whether directories are marked (false once `trusted.*` turned out unsettable).
    marked: bool,
}

impl Flatten<'_> {
    fn dir(&mut self, lower: &LowerDir, rel: &Path) -> Result<()> {
        for entry in lower.entries()? {
            let path = rel.join(&entry.name);
            let dst = self.root.join(&path);
            let meta = lstat(&entry.path)?;
            self.cloner.clone(&entry.path, &meta, &dst)?;
            if meta.is_dir() {
                self.mark(&dst, &path)?;
                self.dir(&lower.child(&entry)?, &path)?;
            }
        }
        Ok(())
    }

    fn mark(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        if !self.marked {
            return Ok(());
        }
        let name = sys::dir_mark_xattr().as_bytes();
        match sys::lset_xattr(dir, name, rel.as_os_str().as_bytes()) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    Errno::from_io_error(&e),
                    Some(Errno::PERM | Errno::OPNOTSUPP)
                ) =>
            {
                self.marked = false;
                Ok(())
            }
            Err(e) => Err(Error::fs("mark directory", dir)(e)),
        }
    }
}

/// Writes `set` into the empty directory `target` in overlay form (see the module doc).
/// Non-directories are *moved* out of `set.root()`, which is left incomplete: call this
/// last, on a tree that is discarded afterwards (a step root after its layer is written).
pub fn materialize(set: &ChangeSet, target: &Path, cancel: Option<&AtomicBool>) -> Result<()> {
    let mut cloner = Cloner::moving(cancel);
    for change in set.changes() {
        let dst = target.join(&change.path);
        if change.kind == ChangeKind::Delete {
            rustix::fs::mknodat(CWD, &dst, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(|e| Error::fs("create whiteout", &dst)(e.into()))?;
            continue;
        }
        let src = set.root().join(&change.path);
        cloner.clone(&src, &lstat(&src)?, &dst)?;
        if change.kind == ChangeKind::Opaque {
            sys::lset_xattr(&dst, sys::opaque_xattr().as_bytes(), b"y")
                .map_err(Error::fs("mark opaque", &dst))?;
        }
    }
    cloner.finish()
}

#[cfg(test)]
#[path = "flatten_tests.rs"]
mod tests;
