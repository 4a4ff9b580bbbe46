//! The native differ: the change set between two directory trees, for the
//! `--snapshotter=native` fallback where no overlay upperdir exists. The lower side is a
//! plain tree ([`diff`]) or the merged view of a stack of overlay-form snapshots
//! ([`diff_stack`], read through `stack.rs` without mounting).
//!
//! An entry of `upper` is a change when, against the entry of the same path in `lower`:
//! the file type, permission bits, owner, device number, size, mtime (to the nanosecond),
//! symlink target or xattrs differ. When all of that is equal the content is compared
//! byte by byte only if the metadata is *ambiguous*: both mtimes have a zero nanosecond
//! part (second-granular timestamps, as after extracting a tar, can hide a rewrite).
//! Two names for the same inode are equal without reading. A directory is emitted when
//! its own metadata changed or anything below it changed, so the parents of every change
//! are in the set, as in an overlay upperdir. Entries only in `lower` are deletions and
//! are not descended into; entries only in `upper` are added with everything below them.
//!
//! Against a snapshot stack the differ also records what overlayfs records as opaque
//! directories, so that both snapshotters write the same layer: a directory of `upper`
//! whose name the lowers show as something else, or (with directory marks, see
//! `flatten.rs`) as a directory it is not a copy of (`rm -rf d && mkdir d`), is
//! [`ChangeKind::Opaque`] with everything below it added. That is overlayfs' rule with
//! rbuild's mount options: a directory is made opaque when created over an upper
//! whiteout; a new directory in a merged one is not (current kernels skip that
//! "optimization" under `ovl_allow_offline_changes`: no index, metacopy, redirect_dir;
//! older ones set it, and there the two snapshotters' layers differ in form only). Without marks a recreated
//! directory is compared child by child instead: deletions rather than an opaque marker,
//! the same filesystem once applied.
//!
//! Cost: the walk reads every directory of both sides and stats every entry; regular
//! files are read only when their metadata is ambiguous (see above). Against a tree
//! copied with its nanosecond mtimes that is every file whose mtime came from a tar
//! (whole seconds), so a step over a large image reads that image's files once more.
//!
//! The resulting order follows the invariants in `changes.rs`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::changes::{lstat, read_dir_sorted, tar_name, Change, ChangeKind, ChangeSet, Seen};
use super::error::{Error, Result};
use super::stack::{LowerDir, LowerEntry};
use super::sys;
use crate::fs_error::FsError;

/// The changes that turn `lower` into `upper`; added entries are read from `upper`.
pub fn diff(lower: &Path, upper: &Path) -> Result<ChangeSet> {
    let trees = Trees {
        upper,
        stack: false,
        marked: false,
    };
    let mut out = Vec::new();
    trees.dir(
        Path::new(""),
        &LowerDir::plain(lower.to_path_buf()),
        &mut out,
    )?;
    Ok(ChangeSet::new(upper.to_path_buf(), out))
}

/// The changes that turn the merged view of `lowers` (overlay-form snapshots, top first)
/// into the plain tree `upper`. With `marked`, every directory `flatten.rs` copied into
/// `upper` carries its mark, and an unmarked directory was made by the step.
pub(crate) fn diff_stack(lowers: &[PathBuf], upper: &Path, marked: bool) -> Result<ChangeSet> {
    let trees = Trees {
        upper,
        stack: true,
        marked,
    };
    let mut out = Vec::new();
    trees.dir(Path::new(""), &LowerDir::stack(lowers), &mut out)?;
    Ok(ChangeSet::new(upper.to_path_buf(), out))
}

struct Trees<'a> {
    upper: &'a Path,
    /// The lower side is a snapshot stack: record opaque directories.
    stack: bool,
    /// Directories copied from the lowers carry a mark (see `flatten.rs`).
    marked: bool,
}

/// A child of one directory level, before sorting by tar name.
struct Kid {
    key: Vec<u8>,
    name: OsString,
    lower: Option<LowerEntry>,
    what: KidChange,
}

enum KidChange {
    /// Only in `lower`.
    Deleted,
    /// Only in `upper`, or replaced by a different type: add it and all below.
    AddedTree { seen: Seen },
    /// A directory that replaces what `lower` shows at its name: opaque, all below added.
    Opaque,
    /// In both as directories: compare below.
    BothDirs { meta_changed: bool },
    /// In both, same non-directory type; `changed` after comparing.
    BothOther { changed: bool },
}

impl Trees<'_> {
    /// Appends the changes below `rel` (whose lower side is `lower`); returns whether
    /// anything was appended.
    fn dir(&self, rel: &Path, lower: &LowerDir, out: &mut Vec<Change>) -> Result<bool> {
        let lower_entries = lower.entries()?;
        let upper_names = read_dir_sorted(&self.upper.join(rel))?;
        let mut kids = Vec::new();
        let (mut l, mut u) = (
            lower_entries.into_iter().peekable(),
            upper_names.into_iter().peekable(),
        );
        loop {
            let (name, lower_entry, in_upper) = match (l.peek(), u.peek()) {
                (None, None) => break,
                (Some(a), Some(b)) if a.name == *b => {
                    let e = l.next();
                    (u.next(), e, true)
                }
                (Some(a), Some(b)) if a.name.as_bytes() < b.as_bytes() => {
                    let e = l.next();
                    (e.as_ref().map(|e| e.name.clone()), e, false)
                }
                (Some(_), None) => {
                    let e = l.next();
                    (e.as_ref().map(|e| e.name.clone()), e, false)
                }
                _ => (u.next(), None, true),
            };
            // invariant: the match above always takes one name from a non-empty side.
            let Some(name) = name else { break };
            let what = self.classify(&rel.join(&name), lower_entry.as_ref(), in_upper)?;
            let kind = match what {
                KidChange::Deleted => ChangeKind::Delete,
                _ => ChangeKind::Add,
            };
            kids.push(Kid {
                key: tar_name(&name, kind),
                name,
                lower: lower_entry,
                what,
            });
        }
        kids.sort_by(|a, b| a.key.cmp(&b.key));

        let start = out.len();
        for kid in kids {
            let path = rel.join(&kid.name);
            match kid.what {
                KidChange::Deleted => out.push(change(path, ChangeKind::Delete, Seen::Other)),
                KidChange::AddedTree { seen } => {
                    out.push(change(path.clone(), ChangeKind::Add, seen));
                    if seen == Seen::Dir {
                        self.added_tree(&path, out)?;
                    }
                }
                KidChange::Opaque => {
                    out.push(change(path.clone(), ChangeKind::Opaque, Seen::Dir));
                    self.added_tree(&path, out)?;
                }
                KidChange::BothDirs { meta_changed } => {
                    let at = out.len();
                    out.push(change(path.clone(), ChangeKind::Add, Seen::Dir));
                    // invariant: `BothDirs` is only classified with a lower entry.
                    let below = match &kid.lower {
                        Some(entry) => lower.child(entry)?,
                        None => {
                            return Err(Error::Internal {
                                what: "a directory in both trees without its lower entry",
                            })
                        }
                    };
                    if !self.dir(&path, &below, out)? && !meta_changed {
                        out.truncate(at);
                    }
                }
                KidChange::BothOther { changed } => {
                    if changed {
                        out.push(change(path, ChangeKind::Add, Seen::Other));
                    }
                }
            }
        }
        Ok(out.len() > start)
    }

    /// Everything below `rel` in `upper`, all added.
    fn added_tree(&self, rel: &Path, out: &mut Vec<Change>) -> Result<()> {
        for name in read_dir_sorted(&self.upper.join(rel))? {
            let path = rel.join(name);
            let seen = Seen::of(lstat(&self.upper.join(&path))?.file_type());
            out.push(change(path.clone(), ChangeKind::Add, seen));
            if seen == Seen::Dir {
                self.added_tree(&path, out)?;
            }
        }
        Ok(())
    }

    fn classify(
        &self,
        rel: &Path,
        lower: Option<&LowerEntry>,
        in_upper: bool,
    ) -> Result<KidChange> {
        if !in_upper {
            return Ok(KidChange::Deleted);
        }
        let up = self.upper.join(rel);
        let um = lstat(&up)?;
        let Some(lower) = lower else {
            return Ok(KidChange::AddedTree {
                seen: Seen::of(um.file_type()),
            });
        };
        let lp = &lower.path;
        let lm = lstat(lp)?;
        if lm.file_type() != um.file_type() {
            if self.stack && um.is_dir() {
                return Ok(KidChange::Opaque);
            }
            return Ok(KidChange::AddedTree {
                seen: Seen::of(um.file_type()),
            });
        }
        if um.is_dir() && self.stack && self.marked && !is_marked_copy(&up, rel)? {
            return Ok(KidChange::Opaque);
        }
        let meta_changed = !same_meta(&lm, &um) || !same_xattrs(lp, &up)?;
        if um.is_dir() {
            return Ok(KidChange::BothDirs { meta_changed });
        }
        let changed = meta_changed || !same_content(lp, &lm, &up, &um)?;
        Ok(KidChange::BothOther { changed })
    }
}

/// Whether directory `path` is the one `flatten.rs` copied to `rel` (it carries the mark
/// naming `rel`; a directory moved here from elsewhere names its old place).
fn is_marked_copy(path: &Path, rel: &Path) -> Result<bool> {
    let mark = sys::get_xattr(path, sys::dir_mark_xattr().as_ref())
        .map_err(Error::fs("read xattrs of", path))?;
    Ok(mark.as_deref() == Some(rel.as_os_str().as_bytes()))
}

fn change(path: PathBuf, kind: ChangeKind, seen: Seen) -> Change {
    Change {
        path,
        kind,
        seen,
        ino: 0,
    }
}

/// Type-independent metadata equality (what a tar header records, plus nanoseconds).
fn same_meta(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    let dev = |m: &fs::Metadata| {
        let t = m.file_type();
        if t.is_char_device() || t.is_block_device() {
            m.rdev()
        } else {
            0
        }
    };
    a.mode() == b.mode()
        && a.uid() == b.uid()
        && a.gid() == b.gid()
        && dev(a) == dev(b)
        && (a.is_dir() || a.size() == b.size())
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
}

fn same_xattrs(a: &Path, b: &Path) -> Result<bool> {
    let xa = sys::list_xattrs(a).map_err(Error::fs("read xattrs of", a))?;
    let xb = sys::list_xattrs(b).map_err(Error::fs("read xattrs of", b))?;
    Ok(xa == xb)
}

/// Content equality for entries whose metadata already matched.
fn same_content(lp: &Path, lm: &fs::Metadata, up: &Path, um: &fs::Metadata) -> Result<bool> {
    if lm.dev() == um.dev() && lm.ino() == um.ino() {
        return Ok(true);
    }
    let t = um.file_type();
    if t.is_symlink() {
        let a = fs::read_link(lp).map_err(Error::fs("read symlink", lp))?;
        let b = fs::read_link(up).map_err(Error::fs("read symlink", up))?;
        return Ok(a == b);
    }
    if !t.is_file() {
        return Ok(true); // devices and FIFOs: metadata is everything
    }
    let ambiguous = lm.mtime_nsec() == 0 && um.mtime_nsec() == 0;
    if !ambiguous {
        return Ok(true);
    }
    same_bytes(lp, up)
}

/// Byte-by-byte comparison of two regular files, streamed.
fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let mut fa = File::open(a).map_err(Error::fs("open", a))?;
    let mut fb = File::open(b).map_err(Error::fs("open", b))?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(Error::fs("read", a))?;
        let nb = read_full(&mut fb, &mut bb).map_err(Error::fs("read", b))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or EOF.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use filetime::FileTime;
    use std::os::unix::fs::symlink;

    fn listing(set: &ChangeSet) -> Vec<String> {
        set.changes()
            .iter()
            .map(|c| format!("{:?} {}", c.kind, c.path.display()))
            .collect()
    }

    fn set_mtime(p: &Path, secs: i64, nanos: u32) {
        filetime::set_symlink_file_times(
            p,
            FileTime::from_unix_time(secs, nanos),
            FileTime::from_unix_time(secs, nanos),
        )
        .unwrap();
    }

    #[test]
    fn finds_adds_deletes_and_modifications() {
        let t = tempfile::tempdir().unwrap();
        let (lo, up) = (t.path().join("lo"), t.path().join("up"));
        for root in [&lo, &up] {
            fs::create_dir_all(root.join("keep/sub")).unwrap();
            fs::write(root.join("keep/sub/same"), "same").unwrap();
            set_mtime(&root.join("keep/sub/same"), 1000, 5);
            set_mtime(&root.join("keep/sub"), 1000, 5);
            set_mtime(&root.join("keep"), 1000, 5);
        }
        fs::write(lo.join("gone"), "x").unwrap();
        fs::create_dir(lo.join("gonedir")).unwrap();
        fs::write(lo.join("gonedir/f"), "x").unwrap();
        fs::create_dir(up.join("new")).unwrap();
        fs::write(up.join("new/f"), "x").unwrap();
        fs::write(lo.join("link-target"), "").unwrap();
        symlink("a", lo.join("ln")).unwrap();
        symlink("b", up.join("ln")).unwrap();
        // Same size and second-granular mtime, different bytes: only content tells.
        fs::write(lo.join("keep/sub/tricky"), "aaaa").unwrap();
        fs::write(up.join("keep/sub/tricky"), "bbbb").unwrap();
        for root in [&lo, &up] {
            set_mtime(&root.join("keep/sub/tricky"), 2000, 0);
            set_mtime(&root.join("ln"), 2000, 0);
        }
        fs::write(up.join("link-target"), "").unwrap();
        set_mtime(&up.join("link-target"), 3000, 7);
        let set = diff(&lo, &up).unwrap();
        assert_eq!(
            listing(&set),
            [
                "Delete gone",
                "Delete gonedir",
                "Add keep",
                "Add keep/sub",
                "Add keep/sub/tricky",
                "Add link-target",
                "Add ln",
                "Add new",
                "Add new/f",
            ]
        );
    }

    #[test]
    fn unchanged_trees_have_no_changes_and_types_replace() {
        let t = tempfile::tempdir().unwrap();
        let (lo, up) = (t.path().join("lo"), t.path().join("up"));
        fs::create_dir_all(lo.join("d")).unwrap();
        fs::create_dir_all(&up).unwrap();
        assert!(diff(&lo, &lo).unwrap().is_empty());
        fs::write(up.join("d"), "now a file").unwrap();
        assert_eq!(listing(&diff(&lo, &up).unwrap()), ["Add d"]);
    }
}
