//! The files a COPY wrote last time and writes again unchanged: hard links to the last
//! snapshot of the same step instead of copies.
//!
//! When a COPY misses the cache because some of its files changed, the others are the
//! same bytes, mode, owner and mtime as the files the same step wrote into its last
//! snapshot. A new snapshot may share those inodes (snapshots are never written, and
//! their fingerprints leave a file's ctime out: `store::snapmeta`), so such a file is
//! linked from there: no data is read or written, which is most of a one-file edit in
//! a 100k-file COPY.
//!
//! What makes a link the file the copy would write:
//! - the step's last build ran the same instruction on the same layers (the caller
//!   checks the keys of the steps before it and every input that is not a file);
//! - its file inputs name the same entries, in the same order, of the same types, so
//!   every source goes to the same destination in the same order (the same later
//!   source overwrites the same earlier one), and the entry's own input (content
//!   digest, mode, owner) is the same;
//! - the last snapshot's file at the destination is a regular file with this copy's
//!   size, mtime, mode and owner, reached below the snapshot with no symlink followed
//!   (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`).
//!
//! Anything else (a source added or removed, a link that fails) is copied as before.

use std::borrow::Cow;
use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, CWD};

use crate::digest::Digest;
use crate::layers::LayerChunks;

use super::source::Node;

/// The last snapshot of a COPY step whose file inputs named the same entries, and the
/// names (as the file inputs give them) of those whose input changed since: any other
/// regular file the copy writes is the one it wrote last time.
#[derive(Debug)]
pub struct Reuse {
    snapshot: OwnedFd,
    changed: HashSet<String>,
    /// The inodes linked so far (the snapshot's: alive while it is), which the layer
    /// patch copies the last layer's entries for.
    linked: Mutex<HashSet<u64>>,
    /// The last layer's blob and how it was cut, when its snapshot recorded that.
    layer: Option<(Digest, Box<LayerChunks>)>,
}

impl Reuse {
    /// Opens the snapshot at `snapshot` (made by the last build of the step, whose
    /// layer is `layer`: blob and chunks), for the files not in `changed`
    /// ([`changed_files`]); `None` when it cannot be opened.
    pub fn open(
        snapshot: &Path,
        changed: HashSet<String>,
        layer: Option<(Digest, Box<LayerChunks>)>,
    ) -> Option<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let snapshot = rfs::open(snapshot, flags, Mode::empty()).ok()?;
        let layer = layer.filter(|(blob, chunks)| chunks.blob == *blob);
        Some(Reuse {
            snapshot,
            changed,
            linked: Mutex::new(HashSet::new()),
            layer,
        })
    }

    /// The last layer's blob and chunks, and the inodes linked from its snapshot: what
    /// a patch of the new layer reads (`layers::patch`).
    pub fn patch_source(&self) -> Option<(Digest, &LayerChunks, HashSet<u64>)> {
        let (blob, chunks) = self.layer.as_ref()?;
        let linked = std::mem::take(&mut *self.linked.lock().unwrap_or_else(|p| p.into_inner()));
        Some((*blob, &**chunks, linked))
    }
}

/// The names of the entries whose input differs between `then` and `now`, the inputs
/// of the same COPY in its last build and in this one (`file:NAME` for each entry it
/// copies); `None` when the two do not name the same entries of the same types in the
/// same order, differ in an input that is not a file, or have no regular file in
/// common.
pub fn changed_files(
    then: &[(String, String)],
    now: &[(String, String)],
) -> Option<HashSet<String>> {
    if then.len() != now.len() {
        return None;
    }
    let mut changed = HashSet::new();
    let mut same_files = 0usize;
    for ((old_name, old), (name, value)) in then.iter().zip(now) {
        if old_name != name {
            return None;
        }
        let Some(file) = name.strip_prefix("file:") else {
            if old != value {
                return None;
            }
            continue;
        };
        // `TYPE MODE OWNER WHAT`: the type must stay; a regular file whose whole
        // value stayed may be linked.
        if old.split(' ').next() != value.split(' ').next() {
            return None;
        }
        if old != value {
            changed.insert(file.to_owned());
        } else if value.starts_with("f ") {
            same_files += 1;
        }
    }
    (same_files > 0).then_some(changed)
}

/// [`Reuse`] for one selected source of a copy into a root.
#[derive(Debug, Clone, Copy)]
pub struct ReuseAt<'a> {
    pub reuse: &'a Reuse,
    /// Where the destination paths are: the step root, or its overlay's upperdir
    /// (only entries written there directly can be links).
    pub base: &'a Path,
    /// The selected node's path in its tree, and the name the Dockerfile gives it (they
    /// differ for a followed symlink): a node below it is named by its path below it.
    pub tree_rel: &'a str,
    pub name: &'a str,
}

impl ReuseAt<'_> {
    /// Makes `dest` (which does not exist) a link to the last snapshot's file for
    /// `node` when that file is the one the copy would write with `owner` and `mode`;
    /// returns whether it did.
    pub fn link(&self, node: &Node, dest: &Path, owner: (u32, u32), mode: u32) -> bool {
        let Some(rel) = dest
            .strip_prefix(self.base)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
        else {
            return false;
        };
        // A name that is not UTF-8 has an escaped input name (`digest.rs`), which the
        // lossy `rel` does not give: such a file is copied.
        if node.host.to_str().is_none() || self.reuse.changed.contains(&*self.name_of(&node.rel)) {
            return false;
        }
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let Ok(old) = rfs::openat2(
            self.reuse.snapshot.as_fd(),
            rel,
            flags,
            Mode::empty(),
            resolve,
        ) else {
            return false;
        };
        let Ok(stat) = rfs::fstat(&old) else {
            return false;
        };
        let meta = &node.meta;
        let same = rfs::FileType::from_raw_mode(stat.st_mode) == rfs::FileType::RegularFile
            && stat.st_size as u64 == meta.size()
            && stat.st_mtime == meta.mtime()
            && stat.st_mtime_nsec as i64 == meta.mtime_nsec()
            && (stat.st_uid, stat.st_gid) == owner
            && stat.st_mode & 0o7777 == mode;
        if !(same && link_fd(&old, dest)) {
            return false;
        }
        let mut linked = self.reuse.linked.lock().unwrap_or_else(|p| p.into_inner());
        linked.insert(stat.st_ino);
        true
    }

    /// The name the file inputs give the node at tree path `rel` (borrowed when the
    /// source was not reached through a symlink: once per file of the copy).
    fn name_of<'r>(&self, rel: &'r str) -> Cow<'r, str> {
        if self.tree_rel == self.name {
            return Cow::Borrowed(rel);
        }
        let below = rel
            .strip_prefix(self.tree_rel)
            .unwrap_or(rel)
            .trim_start_matches('/');
        Cow::Owned(match (self.name.is_empty(), below.is_empty()) {
            (_, true) => self.name.to_owned(),
            (true, false) => below.to_owned(),
            (false, false) => format!("{}/{below}", self.name),
        })
    }
}

/// Links the file open as `fd` (an `O_PATH` descriptor) at `dest`, through its
/// `/proc/self/fd` link (`AT_EMPTY_PATH` needs a capability the builder may lack).
fn link_fd(fd: &OwnedFd, dest: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let proc = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    rfs::linkat(CWD, &proc, CWD, dest, AtFlags::SYMLINK_FOLLOW).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn changed_files_are_the_entries_whose_input_moved() {
        let then = inputs(&[
            ("instruction", "COPY a /a"),
            ("file:a", "d 755 - -"),
            ("file:a/x", "f 644 - sha256:1"),
            ("file:a/y", "f 644 - sha256:2"),
            ("file:a/z", "f 644 - sha256:3"),
            ("file:a/l", "l 777 - x"),
        ]);
        let now = inputs(&[
            ("instruction", "COPY a /a"),
            ("file:a", "d 755 - -"),
            ("file:a/x", "f 644 - sha256:1"),
            ("file:a/y", "f 644 - sha256:9"),
            ("file:a/z", "f 755 - sha256:3"),
            ("file:a/l", "l 777 - x"),
        ]);
        let changed = changed_files(&then, &now).unwrap();
        assert_eq!(changed, HashSet::from(["a/y".to_owned(), "a/z".to_owned()]));
        // No regular file in common: nothing to link.
        let only_changed = inputs(&[("file:a/x", "f 644 - sha256:1")]);
        let moved = inputs(&[("file:a/x", "f 644 - sha256:2")]);
        assert_eq!(changed_files(&only_changed, &moved), None);
    }

    #[test]
    fn nothing_is_linked_when_the_entries_or_other_inputs_differ() {
        let base = [
            ("instruction", "COPY a /a"),
            ("file:a/x", "f 644 - sha256:1"),
        ];
        let then = inputs(&base);
        // A file added, a type changed, a name changed, another input changed.
        let added = inputs(&[base[0], base[1], ("file:a/y", "f 644 - sha256:2")]);
        let retyped = inputs(&[base[0], ("file:a/x", "l 777 - y")]);
        let renamed = inputs(&[base[0], ("file:a/w", "f 644 - sha256:1")]);
        let other = inputs(&[("instruction", "COPY a /b"), base[1]]);
        for now in [added, retyped, renamed, other] {
            assert_eq!(changed_files(&then, &now), None, "{now:?}");
        }
    }

    #[test]
    fn a_node_below_a_followed_symlink_is_named_by_the_symlink() {
        let reuse = Reuse {
            snapshot: rfs::open("/", OFlags::RDONLY, Mode::empty()).unwrap(),
            changed: HashSet::new(),
            linked: Mutex::new(HashSet::new()),
            layer: None,
        };
        let at = |tree_rel, name| ReuseAt {
            reuse: &reuse,
            base: Path::new("/"),
            tree_rel,
            name,
        };
        assert_eq!(at("files", "files").name_of("files/d/f"), "files/d/f");
        assert_eq!(at("real", "link").name_of("real/d/f"), "link/d/f");
        assert_eq!(at("real", "link").name_of("real"), "link");
        assert_eq!(at("", "").name_of("d/f"), "d/f");
        assert_eq!(at("sub", "").name_of("sub/f"), "f");
    }
}
