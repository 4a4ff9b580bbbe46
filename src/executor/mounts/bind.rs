//! `RUN --mount=type=bind`: a path of the build context, of a stage or of an image,
//! read-only by default; with `rw` the step may write, and its writes are discarded.
//!
//! - The context is what COPY sees: when a `.dockerignore` filters it, the selected
//!   subtree is rebuilt in the step's scratch directory from the context index (hard
//!   links where the file system allows, copies otherwise); unfiltered, the directory
//!   is bound as is. `source=` is resolved inside the context (symlinks included) and
//!   can never leave it.
//! - A stage or image is a read-only overlay view of its snapshots.
//! - `rw`: a directory gets an overlay of its own (the source as the lower layer, a
//!   throw-away upper; a copy where overlayfs cannot be mounted), a file a throw-away
//!   copy.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::super::copy::{set_mtime, ContextIndex, Node, SourceTree};
use super::super::error::ExecError;
use super::Scratch;
use crate::layers::{flatten, resolve_in_root, OverlayMount, OverlaySpec};

/// The host path of `rel` in the context (or a named context's tree, which errors call
/// `origin`), materialized without the filtered-out entries when it is filtered.
pub(super) fn from_context(
    index: &ContextIndex,
    rel: &str,
    origin: &str,
    scratch: &mut Scratch,
) -> Result<PathBuf, ExecError> {
    let node = SourceTree::Context(index)
        .lookup(rel, true)
        .map_err(ExecError::for_mount)?
        .ok_or_else(|| ExecError::MountSource {
            source_path: rel.to_owned(),
            origin: origin.to_owned(),
        })?;
    if !index.is_filtered() {
        return Ok(node.host);
    }
    let mut dest = scratch.fresh("context")?;
    if !node.meta.is_dir() {
        dest.push("file");
    }
    copy_node(&node, &dest)?;
    if node.meta.is_dir() {
        let base = &node.rel;
        let mut dirs = Vec::new();
        for child in index.descendants(base) {
            let tail = if base.is_empty() {
                child.rel.as_str()
            } else {
                &child.rel[base.len() + 1..]
            };
            let to = dest.join(tail);
            copy_node(&child, &to)?;
            if child.meta.is_dir() {
                dirs.push((to, child.meta));
            }
        }
        // Directory times last, deepest first, once nothing more is added below them.
        for (dir, meta) in dirs.iter().rev() {
            set_mtime(dir, meta)?;
        }
        set_mtime(&dest, &node.meta)?;
    }
    Ok(dest)
}

/// The host path of `rel` inside a mounted root (a stage or image view).
pub(super) fn from_root(root: &Path, rel: &str, origin: &str) -> Result<PathBuf, ExecError> {
    let host = resolve_in_root(root, Path::new(rel), true)?;
    if fs::symlink_metadata(&host).is_err() {
        return Err(ExecError::MountSource {
            source_path: rel.to_owned(),
            origin: origin.to_owned(),
        });
    }
    Ok(host)
}

/// A writable stand-in for `source` whose writes are thrown away with `scratch`.
pub(super) fn writable(source: &Path, scratch: &mut Scratch) -> Result<PathBuf, ExecError> {
    let meta = fs::metadata(source).map_err(ExecError::fs("cannot stat", source))?;
    if !meta.is_dir() {
        let dir = scratch.fresh("rw-file")?;
        let copy = dir.join("file");
        fs::copy(source, &copy).map_err(ExecError::fs("cannot copy", source))?;
        std::os::unix::fs::chown(&copy, Some(meta.uid()), Some(meta.gid()))
            .map_err(ExecError::fs("cannot change owner of", &copy))?;
        return Ok(copy);
    }
    let dir = scratch.fresh("rw")?;
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).map_err(ExecError::fs("cannot create", d))?;
    }
    let spec = OverlaySpec {
        lowerdirs: vec![source.to_path_buf()],
        upperdir: upper,
        workdir: work,
    };
    match OverlayMount::mount(&spec, &merged) {
        Ok(mount) => scratch.keep_overlay(mount),
        // Where overlayfs cannot be mounted (the native snapshotter's case), a copy.
        Err(_) => {
            flatten(&spec.lowerdirs, &merged, None)?;
        }
    }
    Ok(merged)
}

/// Recreates one context entry at `to`: a directory (mode, owner), a symlink, or a
/// file (hard link, else copy). Sockets, fifos and devices are skipped (COPY skips
/// them too).
fn copy_node(node: &Node, to: &Path) -> Result<(), ExecError> {
    let ft = node.meta.file_type();
    let (uid, gid) = (node.meta.uid(), node.meta.gid());
    if ft.is_dir() {
        if !to.is_dir() {
            fs::create_dir(to).map_err(ExecError::fs("cannot create", to))?;
        }
        fs::set_permissions(to, fs::Permissions::from_mode(node.meta.mode() & 0o7777))
            .map_err(ExecError::fs("cannot set mode of", to))?;
        std::os::unix::fs::lchown(to, Some(uid), Some(gid))
            .map_err(ExecError::fs("cannot change owner of", to))?;
    } else if ft.is_symlink() {
        let target =
            fs::read_link(&node.host).map_err(ExecError::fs("cannot read link", &node.host))?;
        std::os::unix::fs::symlink(&target, to).map_err(ExecError::fs("cannot create", to))?;
        std::os::unix::fs::lchown(to, Some(uid), Some(gid))
            .map_err(ExecError::fs("cannot change owner of", to))?;
    } else if ft.is_file() && fs::hard_link(&node.host, to).is_err() {
        fs::copy(&node.host, to).map_err(ExecError::fs("cannot copy", &node.host))?;
        std::os::unix::fs::chown(to, Some(uid), Some(gid))
            .map_err(ExecError::fs("cannot change owner of", to))?;
        set_mtime(to, &node.meta)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{BuildContext, Filter};

    #[test]
    fn filtered_context_subtree_leaves_out_ignored_files() {
        let ctx = tempfile::tempdir().unwrap();
        let root = ctx.path();
        fs::create_dir_all(root.join("src/deep")).unwrap();
        fs::write(root.join("src/a.txt"), "a").unwrap();
        fs::write(root.join("src/secret.key"), "k").unwrap();
        fs::write(root.join("src/deep/b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("src/link")).unwrap();
        let filter = Filter::from_patterns::<&str>(&[], &["**/*.key"]).unwrap();
        let index = ContextIndex::new(&BuildContext::new(root).with_filter(filter)).unwrap();
        let work = tempfile::tempdir().unwrap();
        let mut scratch = Scratch::new(work.path()).unwrap();
        let out = from_context(&index, "src", "the build context", &mut scratch).unwrap();
        assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "a");
        assert_eq!(fs::read_to_string(out.join("deep/b.txt")).unwrap(), "b");
        assert_eq!(fs::read_link(out.join("link")).unwrap(), Path::new("a.txt"));
        assert!(!out.join("secret.key").exists());
        let err = from_context(&index, "missing", "the build context", &mut scratch).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn unfiltered_context_binds_the_directory() {
        let ctx = tempfile::tempdir().unwrap();
        fs::create_dir(ctx.path().join("d")).unwrap();
        let index = ContextIndex::new(&BuildContext::new(ctx.path())).unwrap();
        let work = tempfile::tempdir().unwrap();
        let mut scratch = Scratch::new(work.path()).unwrap();
        let out = from_context(&index, "d", "the build context", &mut scratch).unwrap();
        assert_eq!(out, ctx.path().join("d"));
    }
}
