//! `ADD <git URL> <dest>`: the repository's tree at a commit copied into `dest`, a
//! directory, as BuildKit copies a git source's `/`.
//!
//! The commit is resolved once per build ([`GitPins`]: the step's key holds it, see
//! `plan::keys`), without cloning, so an unchanged commit is a cache hit that never
//! touches the repository's contents; a step that runs checks out exactly that commit,
//! even if the branch has moved meanwhile. The checkout lives in the step's work
//! directory and goes with it; its tree is copied with the copy code every COPY uses
//! (symlinks copied as links, never followed out of the checkout, destination paths
//! resolved inside the root), owned by 0:0 unless `--chown`, with `--chmod` and
//! `--exclude`, and the checkout's mtimes (or the commit's with `?mtime=commit`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use super::source::{Node, SourceTree};
use super::write::{copy_children, ensure_dir};
use super::{keeper, CopyRequest};
use crate::context::source::git::{self, Resolved};
use crate::executor::error::{ExecError, Result};
use crate::plan::GitSource;

/// The commits the git sources of a build resolved to, each looked up once.
#[derive(Debug, Default)]
pub struct GitPins {
    resolved: Mutex<BTreeMap<String, Resolved>>,
}

impl GitPins {
    /// The commit `source` resolves to: the one of an earlier step or stage of this
    /// build with the same reference, else asked of the remote now.
    pub fn resolve(&self, source: &GitSource) -> Result<Resolved> {
        let url = &source.url;
        let id = format!(
            "{}\0{:?}\0{:?}\0{}",
            url.remote, url.reference, url.checksum, url.fetch_by_commit
        );
        let known = self.lock().get(&id).cloned();
        if let Some(known) = known {
            return Ok(known);
        }
        // Not under the lock: stages resolving other repositories need not wait.
        let resolved = git::resolve(url)?;
        // Two stages resolving the same reference at once agree on the first answer.
        Ok(self.lock().entry(id).or_insert(resolved).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Resolved>> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Copies the tree of git `source`, at the commit `pins` resolve it to, into the
/// destination directory of `req` in the root filesystem at `root`; the checkout is
/// made in a temporary directory of `work`.
pub fn add_git(
    req: &CopyRequest<'_>,
    source: &GitSource,
    pins: &GitPins,
    root: &Path,
    work: &Path,
) -> Result<()> {
    let pin = pins.resolve(source)?;
    let checkout = tempfile::Builder::new()
        .prefix("git-")
        .tempdir_in(work)
        .map_err(ExecError::fs("cannot create a directory in", work))?;
    let dir = git::checkout(&source.url, &pin, &checkout.path().join("repo"))?;
    let tree = SourceTree::Root(&dir);
    let top = Node {
        rel: String::new(),
        meta: std::fs::symlink_metadata(&dir)
            .map_err(ExecError::fs("cannot stat", &dir))?
            .into(),
        host: dir.clone(),
    };
    let owner = req.attrs.owner.unwrap_or((0, 0));
    let dest = ensure_dir(root, req.op.dest.trim_end_matches('/'), owner)?;
    let keep = keeper(req)?;
    let how = req.how(&keep, None, root);
    copy_children(&tree, &top, &dest, &how)
}
