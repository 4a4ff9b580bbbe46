//! The merged view of a stack of overlay-form snapshots, read without mounting: what
//! overlayfs would show at a directory, for the native snapshotter (`flatten.rs` copies
//! it, `diff.rs` compares against it).
//!
//! Rules (overlayfs' lookup, `Documentation/filesystems/overlayfs.rst`):
//! - layers are searched top first; the first layer holding a name decides it: a 0:0
//!   character device (whiteout) hides the name, anything else is what is seen;
//! - a directory merges with the directories of the same name below it, down to the
//!   first layer where the name is a whiteout or a non-directory, or that holds it as an
//!   opaque directory (`trusted.overlay.opaque=y`, included, nothing below);
//! - the roots of all layers merge (overlayfs never consults an opacity mark on a root).
//!
//! A [`LowerDir`] in plain mode is one ordinary directory: no name is interpreted, which
//! is what [`super::diff()`] of two plain trees needs.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::changes::{is_opaque, is_whiteout, lstat, read_dir_typed};
use super::error::{Error, Result};
use crate::fs_error::FsError;

/// One directory of the merged view: the host directories that make it up, top first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LowerDir {
    dirs: Vec<PathBuf>,
    overlay: bool,
}

/// A name visible in a [`LowerDir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LowerEntry {
    /// The name in its directory.
    pub name: OsString,
    /// The host path of the object seen (in the topmost layer holding the name).
    pub path: PathBuf,
    /// Whether that object is a directory.
    pub is_dir: bool,
    /// Index in the directory's layers of the layer holding it.
    layer: usize,
}

impl LowerDir {
    /// The root of the merged view of `lowers` (overlay-form snapshots, top first). No
    /// layers is an empty root.
    pub(crate) fn stack(lowers: &[PathBuf]) -> LowerDir {
        LowerDir {
            dirs: lowers.to_vec(),
            overlay: true,
        }
    }

    /// An ordinary directory, whose names mean only themselves.
    pub(crate) fn plain(dir: PathBuf) -> LowerDir {
        LowerDir {
            dirs: vec![dir],
            overlay: false,
        }
    }

    /// The visible names, sorted bytewise.
    pub(crate) fn entries(&self) -> Result<Vec<LowerEntry>> {
        // Name -> what the topmost layer holding it says (`None`: whited out).
        let mut seen: std::collections::BTreeMap<Vec<u8>, Option<LowerEntry>> = Default::default();
        for (layer, dir) in self.dirs.iter().enumerate() {
            for (name, ft) in read_dir_typed(dir)? {
                let key = name.as_bytes().to_vec();
                if seen.contains_key(&key) {
                    continue;
                }
                let path = dir.join(&name);
                // Only a char device can be a whiteout: only then is a stat needed.
                let hidden = self.overlay && ft.is_char_device() && is_whiteout(&lstat(&path)?);
                let entry = (!hidden).then(|| LowerEntry {
                    name,
                    path,
                    is_dir: ft.is_dir(),
                    layer,
                });
                seen.insert(key, entry);
            }
        }
        Ok(seen.into_values().flatten().collect())
    }

    /// The merged directory `entry` (which must be a directory of this one).
    pub(crate) fn child(&self, entry: &LowerEntry) -> Result<LowerDir> {
        let mut dirs = vec![entry.path.clone()];
        if self.overlay && !is_opaque(&entry.path)? {
            for dir in self.dirs.iter().skip(entry.layer + 1) {
                let path = dir.join(&entry.name);
                let meta = match std::fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::fs("stat", path)(e)),
                };
                if !meta.is_dir() {
                    break; // a whiteout or a non-directory ends the merge
                }
                let opaque = is_opaque(&path)?;
                dirs.push(path);
                if opaque {
                    break;
                }
            }
        }
        Ok(LowerDir {
            dirs,
            overlay: self.overlay,
        })
    }
}

/// Whether the overlay-form snapshot `dir` holds a whiteout anywhere: without one, a
/// single snapshot shows through overlayfs exactly as it is on disk (its
/// `trusted.overlay.*` xattrs aside), so it can serve as a read-only view directly.
pub fn has_whiteouts(dir: &Path) -> Result<bool> {
    for (name, ft) in read_dir_typed(dir)? {
        let path = dir.join(&name);
        if (ft.is_char_device() && is_whiteout(&lstat(&path)?))
            || (ft.is_dir() && has_whiteouts(&path)?)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{mknod_whiteout, require_root};
    use std::fs;

    fn names(dir: &LowerDir) -> Vec<String> {
        dir.entries()
            .unwrap()
            .iter()
            .map(|e| e.name.to_string_lossy().into_owned())
            .collect()
    }

    fn child(dir: &LowerDir, name: &str) -> LowerDir {
        let entries = dir.entries().unwrap();
        let e = entries.iter().find(|e| e.name == name).unwrap();
        dir.child(e).unwrap()
    }

    #[test]
    fn whiteouts_opaque_dirs_and_non_dirs_end_the_merge() {
        if !require_root("whiteouts and trusted xattrs") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (top, mid, low) = (
            t.path().join("top"),
            t.path().join("mid"),
            t.path().join("low"),
        );
        for d in ["low/d/deep", "low/o", "low/f", "mid/d", "mid/o", "top/d"] {
            fs::create_dir_all(t.path().join(d)).unwrap();
        }
        fs::write(low.join("d/low-file"), "").unwrap();
        fs::write(low.join("o/hidden"), "").unwrap();
        fs::write(low.join("gone"), "").unwrap();
        fs::write(mid.join("d/mid-file"), "").unwrap();
        fs::write(mid.join("o/shown"), "").unwrap();
        crate::layers::sys::lset_xattr(&mid.join("o"), b"trusted.overlay.opaque", b"y").unwrap();
        fs::write(mid.join("f"), "a file over a dir").unwrap();
        mknod_whiteout(&top.join("gone"));
        mknod_whiteout(&mid.join("d/deep"));
        fs::write(top.join("d/top-file"), "").unwrap();
        let root = LowerDir::stack(&[top, mid, low]);
        assert_eq!(names(&root), ["d", "f", "o"]);
        assert_eq!(
            names(&child(&root, "d")),
            ["low-file", "mid-file", "top-file"]
        );
        assert_eq!(names(&child(&root, "o")), ["shown"]);
        let f = root.entries().unwrap().into_iter().find(|e| e.name == "f");
        assert!(f.is_some_and(|f| !f.is_dir && f.path.starts_with(t.path().join("mid"))));
    }

    #[test]
    fn plain_dirs_show_devices_as_they_are_and_no_layers_is_empty() {
        assert!(LowerDir::stack(&[]).entries().unwrap().is_empty());
        if !require_root("char devices") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        mknod_whiteout(&t.path().join("dev"));
        assert_eq!(names(&LowerDir::plain(t.path().to_path_buf())), ["dev"]);
        assert!(names(&LowerDir::stack(&[t.path().to_path_buf()])).is_empty());
        assert!(has_whiteouts(t.path()).unwrap());
        fs::remove_file(t.path().join("dev")).unwrap();
        fs::create_dir_all(t.path().join("a/b")).unwrap();
        assert!(!has_whiteouts(t.path()).unwrap());
        mknod_whiteout(&t.path().join("a/b/w"));
        assert!(has_whiteouts(t.path()).unwrap());
    }
}
