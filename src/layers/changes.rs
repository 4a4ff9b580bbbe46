//! Change sets: the list of entries a layer holds, in tar order, and the two walkers that
//! produce one from a single directory (an overlay upperdir, or a full tree).
//!
//! Invariants of a [`ChangeSet`]:
//! - paths are relative to the set's root, never empty, never contain `.`/`..`;
//! - the order is the tar order: a depth-first walk where each directory's children are
//!   sorted bytewise by the name they get *in the tar* (`.wh.NAME` for a deletion), so a
//!   directory's contents follow it directly (Go's `filepath.Walk` order, which BuildKit
//!   and containerd use) and an opaque directory's marker comes right after it;
//! - a deletion or opaque marker appears once per path; parents of a change are present
//!   (the upperdir walker emits every directory of the upperdir with its own metadata,
//!   which is the merged directory's metadata, as BuildKit's overlay differ does).
//!
//! The native differ (`diff.rs`) produces the same kind of set from two trees.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::sys;
use crate::fs_error::FsError;

/// One entry of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Path relative to the change set's root.
    pub path: PathBuf,
    /// What happened to it.
    pub kind: ChangeKind,
    /// What the walk saw at the path, from the directory entry's type (no stat).
    pub seen: Seen,
    /// The inode number the directory entry gave (0 when the walk did not read one):
    /// lets a layer patch know a file for one it linked, without a stat.
    pub ino: u64,
}

/// An entry's type as its directory listing gives it: enough to skip a stat where only
/// "directory?" or "regular file?" is asked (and anything else is looked at closely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Dir,
    File,
    /// A symlink, a device, a deletion, or a type not known without a stat.
    Other,
}

impl Seen {
    /// From a directory entry's type.
    pub fn of(ft: fs::FileType) -> Seen {
        if ft.is_dir() {
            Seen::Dir
        } else if ft.is_file() {
            Seen::File
        } else {
            Seen::Other
        }
    }
}

/// What a [`Change`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The object at `root/path` (any file type) is in the layer as it is on disk.
    Add,
    /// The directory at `root/path` is in the layer and hides everything below it in the
    /// layers beneath (an overlay opaque directory; written as the directory plus a
    /// `.wh..wh..opq` entry). Its own contents follow as further changes.
    Opaque,
    /// The path was deleted (written as a `.wh.NAME` whiteout).
    Delete,
}

/// An ordered list of changes whose `Add`/`Opaque` entries are read from `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    root: PathBuf,
    changes: Vec<Change>,
}

impl ChangeSet {
    /// Wraps changes already in tar order (see the module invariants).
    pub(crate) fn new(root: PathBuf, changes: Vec<Change>) -> Self {
        ChangeSet { root, changes }
    }

    /// The directory the added entries are read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The changes, in tar order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Drops directories that are in the change set only because overlayfs copied them
    /// up (a mount point was created and removed inside, say): no change below them
    /// remains and their own metadata equals the version in `lowers` (top first). This
    /// keeps a `RUN` that changed nothing from producing a layer of bare directories.
    pub fn prune_unchanged_dirs(self, lowers: &[PathBuf]) -> Result<ChangeSet> {
        use std::collections::HashSet;
        let mut keep = vec![true; self.changes.len()];
        let mut needed: HashSet<PathBuf> = HashSet::new();
        for (i, change) in self.changes.iter().enumerate().rev() {
            // The walk's file type: no stat per entry (100k of them for a large COPY).
            let is_plain_dir = change.kind == ChangeKind::Add && change.seen == Seen::Dir;
            if is_plain_dir
                && !needed.contains(&change.path)
                && same_as_lower(&self.root, &change.path, lowers)?
            {
                keep[i] = false;
                continue;
            }
            let mut parent = change.path.parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                if !needed.insert(p.to_path_buf()) {
                    break;
                }
                parent = p.parent();
            }
        }
        let changes = self
            .changes
            .into_iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect();
        Ok(ChangeSet {
            root: self.root,
            changes,
        })
    }
}

/// Whether directory `root/path` has the same mode, owner and mtime as the first
/// `lowers` entry at `path`.
fn same_as_lower(root: &Path, path: &Path, lowers: &[PathBuf]) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let upper = lstat(&root.join(path))?;
    for lower in lowers {
        match fs::symlink_metadata(lower.join(path)) {
            Ok(m) => {
                return Ok(m.is_dir()
                    && m.mode() == upper.mode()
                    && m.uid() == upper.uid()
                    && m.gid() == upper.gid()
                    && m.mtime() == upper.mtime()
                    && m.mtime_nsec() == upper.mtime_nsec());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::fs("stat", lower.join(path))(e)),
        }
    }
    Ok(false)
}

/// The name a child gets in the tar, used as its sort key.
pub(crate) fn tar_name(name: &OsString, kind: ChangeKind) -> Vec<u8> {
    match kind {
        ChangeKind::Delete => [b".wh.", name.as_bytes()].concat(),
        ChangeKind::Add | ChangeKind::Opaque => name.as_bytes().to_vec(),
    }
}

/// The sorted names in directory `dir`.
pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::fs("read directory", dir))? {
        names.push(entry.map_err(Error::fs("read directory", dir))?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// The sorted names in directory `dir` with their types (from `readdir`'s `d_type`, so
/// without a `stat` per entry on filesystems that report it).
pub(crate) fn read_dir_typed(dir: &Path) -> Result<Vec<(OsString, fs::FileType)>> {
    Ok(read_dir_entries(dir)?
        .into_iter()
        .map(|(name, ft, _)| (name, ft))
        .collect())
}

/// [`read_dir_typed`] with each entry's inode number.
fn read_dir_entries(dir: &Path) -> Result<Vec<(OsString, fs::FileType, u64)>> {
    use std::os::unix::fs::DirEntryExt;
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::fs("read directory", dir))? {
        let entry = entry.map_err(Error::fs("read directory", dir))?;
        let ft = entry
            .file_type()
            .map_err(Error::fs("stat", dir.join(entry.file_name())))?;
        out.push((entry.file_name(), ft, entry.ino()));
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// `lstat` with the path in the error.
pub(crate) fn lstat(path: &Path) -> Result<fs::Metadata> {
    fs::symlink_metadata(path).map_err(Error::fs("stat", path))
}

/// Whether `meta` is an overlayfs whiteout: a 0:0 character device.
pub(crate) fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// The changes recorded in an overlay upperdir: 0:0 character devices are deletions,
/// directories with `trusted.overlay.opaque=y` are opaque, everything else is added.
pub fn upperdir_changes(upper: &Path) -> Result<ChangeSet> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), true, &mut out)?;
    Ok(ChangeSet::new(upper.to_path_buf(), out))
}

/// Every entry below `root` (not `root` itself) as an addition: the layer of a full tree.
pub fn tree_changes(root: &Path) -> Result<ChangeSet> {
    let mut out = Vec::new();
    walk(root, Path::new(""), false, &mut out)?;
    Ok(ChangeSet::new(root.to_path_buf(), out))
}

/// Appends the changes below `root/rel` in tar order. With `overlay`, whiteouts and
/// opaque directories are interpreted; without, everything is an addition.
fn walk(root: &Path, rel: &Path, overlay: bool, out: &mut Vec<Change>) -> Result<()> {
    let dir = root.join(rel);
    let mut kids = Vec::new();
    for (name, ft, ino) in read_dir_entries(&dir)? {
        let host = dir.join(&name);
        // Only a char device can be a whiteout: only then is a stat needed for rdev.
        let kind = if overlay && ft.is_char_device() && is_whiteout(&lstat(&host)?) {
            ChangeKind::Delete
        } else if overlay && ft.is_dir() && is_opaque(&host)? {
            ChangeKind::Opaque
        } else {
            ChangeKind::Add
        };
        let seen = match kind {
            ChangeKind::Delete => Seen::Other,
            _ => Seen::of(ft),
        };
        kids.push((tar_name(&name, kind), name, kind, seen, ino));
    }
    kids.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, name, kind, seen, ino) in kids {
        let path = rel.join(&name);
        out.push(Change {
            path: path.clone(),
            kind,
            seen,
            ino,
        });
        if seen == Seen::Dir {
            walk(root, &path, overlay, out)?;
        }
    }
    Ok(())
}

/// Whether directory `path` carries the opaque mark ([`sys::opaque_xattr`]).
pub(crate) fn is_opaque(path: &Path) -> Result<bool> {
    let value = sys::get_xattr(path, sys::opaque_xattr().as_ref())
        .map_err(Error::fs("read xattrs of", path))?;
    Ok(value.as_deref() == Some(b"y"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn paths(set: &ChangeSet) -> Vec<(String, ChangeKind)> {
        set.changes()
            .iter()
            .map(|c| (c.path.to_string_lossy().into_owned(), c.kind))
            .collect()
    }

    #[test]
    fn tree_walk_is_depth_first_and_sorted() {
        let t = tempfile::tempdir().unwrap();
        for d in ["b", "a", "a/z", "a-b"] {
            fs::create_dir(t.path().join(d)).unwrap();
        }
        fs::write(t.path().join("a/y"), "").unwrap();
        symlink("a", t.path().join("c")).unwrap();
        let set = tree_changes(t.path()).unwrap();
        let got: Vec<_> = paths(&set).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, ["a", "a/y", "a/z", "a-b", "b", "c"]);
        assert!(set.changes().iter().all(|c| c.kind == ChangeKind::Add));
    }

    #[test]
    fn upperdir_sorts_whiteouts_by_tar_name() {
        if !crate::layers::testutil::require_root("whiteout char devices") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), "").unwrap();
        crate::layers::testutil::mknod_whiteout(&t.path().join("z"));
        let set = upperdir_changes(t.path()).unwrap();
        assert_eq!(
            paths(&set),
            [
                ("z".to_owned(), ChangeKind::Delete),
                ("a".to_owned(), ChangeKind::Add)
            ]
        );
    }
}
