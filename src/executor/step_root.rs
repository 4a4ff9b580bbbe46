//! A step's root filesystem, made by the build's snapshotter, and the layer it leaves.
//!
//! - overlay: an overlay mount of the snapshots below (lowerdirs) and a fresh upperdir;
//!   after the step the upperdir is the change set and, renamed, the new snapshot;
//! - native (`--snapshotter=native`, or `auto` once overlayfs was refused): a plain
//!   directory holding a copy of the merged snapshots (`layers::flatten`); after the
//!   step the change set is its diff against the snapshots, and the snapshot is that
//!   change set written in overlay form (`layers::materialize`). Both kinds leave the
//!   same snapshots, so they share a store.
//!
//! Callers see one [`StepRoot`]: [`StepRoot::target`] to write into, then
//! [`StepRoot::commit`], or drop it. Everything a root makes lives in one temporary
//! directory in the store's work dir, removed on drop (after the mount, if any, is
//! undone), so a failure or Ctrl-C leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::io::Errno;

use super::error::ExecError;
use super::events::{BuildEvent, Reporter};
use super::snapshots::ensure_snapshots;
use super::stage::{Layer, StageEnv};
use super::Snapshotter;
use crate::digest::Digest;
use crate::image::LayerDescriptor;
use crate::layers::{
    flatten, has_whiteouts, materialize, upperdir_changes, write_changes, ChangeSet, FlatRoot,
    OverlayMount, OverlaySpec,
};
use crate::store::{chain_id, Prepared, SnapshotInfo, Store};

/// Makes step roots with the build's snapshotter; under `auto`, the first overlay mount
/// decides for the whole build.
#[derive(Debug)]
pub struct StepRoots {
    decided: OnceLock<Kind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Overlay,
    Native,
}

impl StepRoots {
    /// Roots made as `snapshotter` says.
    pub fn new(snapshotter: Snapshotter) -> Self {
        let decided = OnceLock::new();
        match snapshotter {
            Snapshotter::Overlayfs => {
                let _ = decided.set(Kind::Overlay);
            }
            Snapshotter::Native => {
                let _ = decided.set(Kind::Native);
            }
            Snapshotter::Auto => {}
        }
        StepRoots { decided }
    }

    /// A writable root holding `layers`, for a step to change and [`StepRoot::commit`].
    pub(super) fn root(&self, env: &StageEnv<'_>, layers: &[Layer]) -> Result<StepRoot, ExecError> {
        ensure_snapshots(env.store, layers)?;
        let dirs = StepDirs::new(env.store)?;
        let kind = match self.overlay(env.reporter, &dirs, env.store, layers)? {
            Some(mount) => RootKind::Overlay(Some(mount)),
            None => {
                let root = dirs.make("root")?;
                let lowers = lowers(env.store, layers);
                RootKind::Native(flatten(&lowers, &root, Some(&env.options.cancel))?)
            }
        };
        Ok(StepRoot { kind, dirs })
    }

    /// A root holding `layers` to read from (`COPY --from`); what is written to it is
    /// discarded. Under native, a single snapshot without whiteouts is used in place.
    pub(super) fn view(&self, env: &StageEnv<'_>, layers: &[Layer]) -> Result<StepRoot, ExecError> {
        if self.decided.get() == Some(&Kind::Native) {
            ensure_snapshots(env.store, layers)?;
            if let [layer] = layers {
                let snapshot = env.store.snapshot_path(&layer.chain);
                if !has_whiteouts(&snapshot)? {
                    let dirs = StepDirs::new(env.store)?;
                    let kind = RootKind::InPlace(snapshot);
                    return Ok(StepRoot { kind, dirs });
                }
            }
        }
        self.root(env, layers)
    }

    /// Mounts an overlay of `layers` unless native is (or becomes) the snapshotter.
    fn overlay(
        &self,
        reporter: &dyn Reporter,
        dirs: &StepDirs,
        store: &Store,
        layers: &[Layer],
    ) -> Result<Option<OverlayMount>, ExecError> {
        match self.decided.get() {
            Some(Kind::Native) => return Ok(None),
            Some(Kind::Overlay) => return dirs.mount(store, layers).map(Some),
            None => {}
        }
        let error = match dirs.mount(store, layers) {
            Ok(mount) => {
                let _ = self.decided.set(Kind::Overlay);
                return Ok(Some(mount));
            }
            Err(e) => e,
        };
        let Some(errno) = refusal(&error) else {
            return Err(error);
        };
        if self.decided.set(Kind::Native).is_ok() {
            reporter.event(BuildEvent::Note {
                message: format!(
                    "warning: cannot mount overlayfs ({errno}); using --snapshotter=native for \
                     the rest of the build (a full copy of the image per step)"
                ),
            });
        }
        // Another stage may have decided first: follow it.
        match self.decided.get() {
            Some(Kind::Native) => Ok(None),
            _ => Err(error),
        }
    }
}

/// The errno of a mount failure that means "no overlayfs here" rather than a fault of
/// this build: not permitted (unprivileged container), no such filesystem, or options
/// the kernel refuses (an upperdir on overlayfs itself, say).
fn refusal(error: &ExecError) -> Option<Errno> {
    let ExecError::Layers(crate::layers::Error::Mount { source, .. }) = error else {
        return None;
    };
    let errno = Errno::from_io_error(source)?;
    matches!(
        errno,
        Errno::PERM | Errno::ACCESS | Errno::NODEV | Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS
    )
    .then_some(errno)
}

/// The snapshots of `layers`, top first.
fn lowers(store: &Store, layers: &[Layer]) -> Vec<PathBuf> {
    layers
        .iter()
        .rev()
        .map(|l| store.snapshot_path(&l.chain))
        .collect()
}

/// A step's root; dropping it undoes the mount and removes what it made.
pub(super) struct StepRoot {
    // Field order is drop order: the mount goes before the directories under it.
    kind: RootKind,
    dirs: StepDirs,
}

enum RootKind {
    /// `None` once unmounted.
    Overlay(Option<OverlayMount>),
    Native(FlatRoot),
    /// A snapshot read in place (a native read-only view).
    InPlace(PathBuf),
}

impl StepRoot {
    /// The root directory the step works in.
    pub(super) fn target(&self) -> PathBuf {
        match &self.kind {
            RootKind::Overlay(_) => self.dirs.path("merged"),
            RootKind::Native(flat) => flat.path().to_path_buf(),
            RootKind::InPlace(path) => path.clone(),
        }
    }

    /// Ends the step's access: an overlay is unmounted (a busy one detached lazily).
    pub(super) fn unmount(&mut self) -> Result<(), ExecError> {
        if let RootKind::Overlay(mount) = &mut self.kind {
            if let Some(mount) = mount.take() {
                mount.unmount()?;
            }
        }
        Ok(())
    }

    /// Turns what the step changed into a layer blob and the snapshot of the new chain
    /// on top of `layers` (the ones the root was made from); `None` if nothing changed.
    pub(super) fn commit(
        mut self,
        env: &StageEnv<'_>,
        layers: &[Layer],
    ) -> Result<Option<Layer>, ExecError> {
        self.unmount()?;
        let upper = self.dirs.path("upper");
        // Directories the snapshot holds but the layer leaves out (overlay copy-ups).
        let mut skip = Vec::new();
        let set = match &self.kind {
            RootKind::Overlay(_) => {
                let all = upperdir_changes(&upper)?;
                let set = all
                    .clone()
                    .prune_unchanged_dirs(&lowers(env.store, layers))?;
                skip = pruned(&all, &set);
                set
            }
            RootKind::Native(flat) => flat.changes()?,
            RootKind::InPlace(_) => {
                return Err(ExecError::Internal {
                    what: "committing a read-only view",
                })
            }
        };
        if set.is_empty() {
            return Ok(None);
        }
        let mut writer = env.store.blob_writer()?;
        let blob = write_changes(&set, &env.write, &mut writer)?;
        writer.commit(Some(blob.digest))?;
        let mut diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        diff_ids.push(blob.diff_id);
        let chain = chain_id(&diff_ids).ok_or(ExecError::Internal {
            what: "chain ID of an empty layer list",
        })?;
        if let Prepared::Build(builder) = env.store.prepare_snapshot(&chain)? {
            self.snapshot(&set, builder.path(), env)?;
            self.dirs.settle()?;
            builder.commit(&SnapshotInfo {
                parent: layers.last().map(|l| l.chain),
                diff_id: blob.diff_id,
                source_date_epoch: env.write.source_date_epoch,
                skip,
            })?;
        }
        let descriptor = LayerDescriptor {
            digest: blob.digest,
            size: blob.size,
            media_type: blob.media_type.to_owned(),
        };
        Ok(Some(Layer {
            blob: descriptor,
            diff_id: blob.diff_id,
            chain,
        }))
    }

    /// Fills the empty snapshot directory `target` with `set` in overlay form.
    fn snapshot(
        &self,
        set: &ChangeSet,
        target: &Path,
        env: &StageEnv<'_>,
    ) -> Result<(), ExecError> {
        match &self.kind {
            RootKind::Native(_) => Ok(materialize(set, target, Some(&env.options.cancel))?),
            _ => {
                // The upperdir is the layer in overlay form: it becomes the snapshot as is.
                let upper = self.dirs.path("upper");
                std::fs::remove_dir(target).map_err(ExecError::fs("cannot replace", target))?;
                std::fs::rename(&upper, target)
                    .map_err(ExecError::fs("cannot move snapshot into", target))
            }
        }
    }
}

/// The paths of `all` that `kept` dropped (both in tar order, `kept` a subsequence).
fn pruned(all: &ChangeSet, kept: &ChangeSet) -> Vec<PathBuf> {
    let mut kept = kept.changes().iter().peekable();
    let mut out = Vec::new();
    for change in all.changes() {
        if kept.peek() == Some(&change) {
            kept.next();
        } else {
            out.push(change.path.clone());
        }
    }
    out
}

/// Scratch directories of one step, removed on drop (after the mount guard).
struct StepDirs {
    dir: tempfile::TempDir,
}

impl StepDirs {
    fn new(store: &Store) -> Result<Self, ExecError> {
        let dir = tempfile::Builder::new()
            .prefix("step-")
            .tempdir_in(store.work_dir())
            .map_err(ExecError::fs(
                "cannot create step directory in",
                store.work_dir(),
            ))?;
        Ok(StepDirs { dir })
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// Removes what may still hold links to inodes of the new snapshot, whose ctimes
    /// must not move once it is fingerprinted: overlayfs' workdir (its shared whiteout
    /// inode) and a native root (hardlinks moved into the snapshot). Unmounted first.
    fn settle(&self) -> Result<(), ExecError> {
        for sub in ["work", "root"] {
            let p = self.path(sub);
            match std::fs::remove_dir_all(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ExecError::fs("cannot remove", &p)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Creates the subdirectory `sub`.
    fn make(&self, sub: &str) -> Result<PathBuf, ExecError> {
        let p = self.path(sub);
        std::fs::create_dir(&p).map_err(ExecError::fs("cannot create", &p))?;
        Ok(p)
    }

    /// Mounts an overlay of `layers` (top first) at `merged`.
    fn mount(&self, store: &Store, layers: &[Layer]) -> Result<OverlayMount, ExecError> {
        let mut lowerdirs = lowers(store, layers);
        if lowerdirs.is_empty() {
            lowerdirs.push(self.make("empty")?);
        }
        let spec = OverlaySpec {
            lowerdirs,
            upperdir: self.path("upper"),
            workdir: self.path("work"),
        };
        Ok(OverlayMount::mount(&spec, &self.make("merged")?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount_error(errno: Errno) -> ExecError {
        ExecError::Layers(crate::layers::Error::Mount {
            target: "/m".into(),
            source: errno.into(),
        })
    }

    #[test]
    fn only_a_refused_mount_falls_back() {
        for errno in [Errno::PERM, Errno::NODEV, Errno::INVAL, Errno::OPNOTSUPP] {
            assert_eq!(refusal(&mount_error(errno)), Some(errno));
        }
        assert_eq!(refusal(&mount_error(Errno::NOSPC)), None);
        let options = ExecError::Layers(crate::layers::Error::MountOptions {
            target: "/m".into(),
            reason: "upperdir must be empty".into(),
        });
        assert_eq!(refusal(&options), None);
    }

    #[test]
    fn explicit_snapshotters_are_decided_up_front() {
        let decided = |s| StepRoots::new(s).decided.get().copied();
        assert_eq!(decided(Snapshotter::Overlayfs), Some(Kind::Overlay));
        assert_eq!(decided(Snapshotter::Native), Some(Kind::Native));
        assert_eq!(decided(Snapshotter::Auto), None);
    }
}
