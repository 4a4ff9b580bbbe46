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
//! Callers see a writable [`StepRoot`]: [`StepRoot::target`] to write into, then
//! [`StepRoot::commit`], or drop it; or a read-only [`RootView`], which has no commit.
//! Everything a root makes lives in one temporary directory in the store's work dir,
//! removed on drop (after the mount, if any, is undone), so a failure or Ctrl-C leaves
//! nothing behind. [`StepRoots`] gets what it needs at the start of the build (the
//! store, progress, how layers are written, the cancel flag) and nothing else.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use rustix::io::Errno;

use super::cache_io::RemoteCache;
use super::env::Layer;
use super::error::ExecError;
use super::events::{BuildEvent, Patched, Reporter};
use super::snapshots::ensure_snapshots;
use super::Snapshotter;
use crate::digest::Digest;
use crate::layers::{
    flatten, has_whiteouts, materialize, upperdir_changes, write_indexed, ChangeSet, FlatRoot,
    LayerChunks, OverlayMount, OverlaySpec, PatchBase, WriteOptions, Written,
};
use crate::store::{chain_id, HashedBlobWriter, Prepared, SnapshotInfo, Store};

/// The last layer of a COPY, which its new layer is patched from (`layers::patch`):
/// its blob, how the blob was cut, and the inodes the step linked from its snapshot.
#[derive(Debug)]
pub struct LastLayer<'c> {
    pub blob: Digest,
    pub chunks: &'c LayerChunks,
    pub linked: std::collections::HashSet<u64>,
}

/// Makes step roots with the build's snapshotter; under `auto`, the first overlay mount
/// decides for the whole build.
pub struct StepRoots<'a> {
    store: &'a Store,
    /// Told when `auto` falls back to native.
    reporter: &'a dyn Reporter,
    /// Where the layer blobs of imported cache hits come from.
    remote: &'a RemoteCache,
    /// Stops a native copy (the build's cancel flag).
    cancel: &'a AtomicBool,
    decided: Decision,
}

impl<'a> StepRoots<'a> {
    /// Roots made in `store` as `snapshotter` says.
    pub fn new(
        snapshotter: Snapshotter,
        store: &'a Store,
        reporter: &'a dyn Reporter,
        remote: &'a RemoteCache,
        cancel: &'a AtomicBool,
    ) -> Self {
        StepRoots {
            store,
            reporter,
            remote,
            cancel,
            decided: Decision::new(snapshotter),
        }
    }

    /// A writable root holding `layers`, for a step to change and [`StepRoot::commit`]
    /// as the next layer on top of them.
    pub fn root<'r>(&'r self, layers: &'r [Layer]) -> Result<StepRoot<'r>, ExecError> {
        Ok(StepRoot {
            mounted: self.mount(layers)?,
            roots: self,
            layers,
        })
    }

    /// A root holding `layers` to read from (`COPY --from`, `RUN --mount from=`); what
    /// is written to it is discarded. Under native, a single snapshot without whiteouts
    /// is used in place.
    pub fn view(&self, layers: &[Layer]) -> Result<RootView, ExecError> {
        if self.decided.get() == Some(Kind::Native) {
            ensure_snapshots(self.store, self.remote, layers, self.reporter)?;
            if let [layer] = layers {
                let snapshot = self.store.snapshot_path(&layer.chain);
                if !has_whiteouts(&snapshot)? {
                    return Ok(RootView::InPlace(snapshot));
                }
            }
        }
        Ok(RootView::Mounted(self.mount(layers)?))
    }

    /// A root of `layers` as the snapshotter makes it.
    fn mount(&self, layers: &[Layer]) -> Result<Mounted, ExecError> {
        ensure_snapshots(self.store, self.remote, layers, self.reporter)?;
        let dirs = StepDirs::new(self.store)?;
        let kind = match self.overlay(&dirs, layers)? {
            Some(mount) => RootKind::Overlay(Some(mount)),
            None => {
                let root = dirs.make("root")?;
                let lowers = lowers(self.store, layers);
                RootKind::Native(flatten(&lowers, &root, Some(self.cancel))?)
            }
        };
        Ok(Mounted { kind, dirs })
    }

    /// Mounts an overlay of `layers` unless native is (or becomes) the snapshotter.
    fn overlay(
        &self,
        dirs: &StepDirs,
        layers: &[Layer],
    ) -> Result<Option<OverlayMount>, ExecError> {
        match self.decided.get() {
            Some(Kind::Native) => return Ok(None),
            Some(Kind::Overlay) => return dirs.mount(self.store, layers).map(Some),
            None => {}
        }
        let error = match dirs.mount(self.store, layers) {
            Ok(mount) => {
                self.decided.set(Kind::Overlay);
                return Ok(Some(mount));
            }
            Err(e) => e,
        };
        let Some(errno) = refusal(&error) else {
            return Err(error);
        };
        if self.decided.set(Kind::Native) {
            self.reporter.event(BuildEvent::Note {
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

/// How the build's roots are made: known up front, or decided by the first mount.
#[derive(Debug)]
struct Decision(OnceLock<Kind>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Overlay,
    Native,
}

impl Decision {
    fn new(snapshotter: Snapshotter) -> Self {
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
        Decision(decided)
    }

    fn get(&self) -> Option<Kind> {
        self.0.get().copied()
    }

    /// Decides `kind` unless decided already; whether this call decided.
    fn set(&self, kind: Kind) -> bool {
        self.0.set(kind).is_ok()
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

/// A root as mounted (or copied); dropping it undoes the mount and removes what it made.
pub struct Mounted {
    // Field order is drop order: the mount goes before the directories under it.
    kind: RootKind,
    dirs: StepDirs,
}

enum RootKind {
    /// `None` once unmounted.
    Overlay(Option<OverlayMount>),
    Native(FlatRoot),
}

impl Mounted {
    fn target(&self) -> PathBuf {
        match &self.kind {
            RootKind::Overlay(_) => self.dirs.path("merged"),
            RootKind::Native(flat) => flat.path().to_path_buf(),
        }
    }

    fn unmount(&mut self) -> Result<(), ExecError> {
        if let RootKind::Overlay(mount) = &mut self.kind {
            if let Some(mount) = mount.take() {
                mount.unmount()?;
            }
        }
        Ok(())
    }
}

/// A read-only view of layers: it can be read and unmounted, never committed.
pub enum RootView {
    /// A root made as for a step; what is written to it is discarded.
    Mounted(Mounted),
    /// A snapshot read in place (native, one layer without whiteouts).
    InPlace(PathBuf),
}

impl RootView {
    /// The root directory to read from.
    pub fn target(&self) -> PathBuf {
        match self {
            RootView::Mounted(mounted) => mounted.target(),
            RootView::InPlace(path) => path.clone(),
        }
    }

    /// Ends the access: an overlay is unmounted (a busy one detached lazily).
    pub fn unmount(&mut self) -> Result<(), ExecError> {
        match self {
            RootView::Mounted(mounted) => mounted.unmount(),
            RootView::InPlace(_) => Ok(()),
        }
    }
}

/// What [`StepRoot::commit`] made.
#[derive(Debug)]
pub struct Committed {
    /// The new layer; `None` if the step changed nothing.
    pub layer: Option<Layer>,
    /// How long the commit took: the change set, the layer blob, the snapshot.
    pub took: std::time::Duration,
    /// For a layer patched from the step's last one, how much was copied.
    pub patched: Option<Patched>,
}

/// A step's writable root on top of the layers it was made from; dropping it undoes
/// the mount and removes what it made.
pub struct StepRoot<'r> {
    mounted: Mounted,
    roots: &'r StepRoots<'r>,
    /// The layers below: what [`StepRoot::commit`] stacks the new layer on.
    layers: &'r [Layer],
}

impl<'a> StepRoot<'a> {
    /// The root directory the step works in.
    pub fn target(&self) -> PathBuf {
        self.mounted.target()
    }

    /// Ends the step's access: an overlay is unmounted (a busy one detached lazily).
    pub fn unmount(&mut self) -> Result<(), ExecError> {
        self.mounted.unmount()
    }

    /// For an overlay root, its upperdir: where a directory the step creates through
    /// the root really is (`None` for a native root, which is a directory itself).
    pub fn upperdir(&self) -> Option<PathBuf> {
        match &self.mounted.kind {
            RootKind::Overlay(_) => Some(self.mounted.dirs.path("upper")),
            RootKind::Native(_) => None,
        }
    }

    /// Turns what the step changed into a layer blob written as `write` says and the
    /// snapshot of the new chain on top of the root's layers (no layer if nothing
    /// changed), and says how long that took.
    pub fn commit(self, write: &WriteOptions) -> Result<Committed, ExecError> {
        self.commit_patching(write, None)
    }

    /// [`StepRoot::commit`], the layer patched from `last` when it can be: the last
    /// layer of the same COPY (its blob and chunks) and the inodes the step linked from
    /// its snapshot (`layers::patch`; the bytes are a full write's).
    pub fn commit_patching(
        self,
        write: &WriteOptions,
        last: Option<LastLayer<'_>>,
    ) -> Result<Committed, ExecError> {
        let started = std::time::Instant::now();
        let (layer, patched) = match self.commit_layer(write, last)? {
            Some((layer, patched)) => (Some(layer), patched),
            None => (None, None),
        };
        Ok(Committed {
            layer,
            took: started.elapsed(),
            patched,
        })
    }

    fn commit_layer(
        mut self,
        write: &WriteOptions,
        last: Option<LastLayer<'_>>,
    ) -> Result<Option<(Layer, Option<Patched>)>, ExecError> {
        self.unmount()?;
        let (store, layers) = (self.roots.store, self.layers);
        let (set, skip) = self.changes()?;
        if set.is_empty() {
            return Ok(None);
        }
        let patching = last.is_some();
        let (written, writer) = self.write_layer(&set, write, last)?;
        let patched = match &written.chunks {
            Some(c) if patching => Some(Patched {
                copied: written.copied,
                chunks: c.chunks.len(),
            }),
            _ => None,
        };
        let blob = written.blob;
        writer.commit(blob.digest, blob.size)?;
        let mut diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        diff_ids.push(blob.diff_id);
        let chain = chain_id(&diff_ids).ok_or(ExecError::Internal {
            what: "chain ID of an empty layer list",
        })?;
        if let Prepared::Build(builder) = store.prepare_snapshot(&chain)? {
            self.snapshot(&set, builder.path())?;
            self.mounted.dirs.settle()?;
            builder.commit(&SnapshotInfo {
                parent: layers.last().map(|l| l.chain),
                diff_id: blob.diff_id,
                source_date_epoch: write.source_date_epoch,
                skip,
                layer_chunks: written.chunks.map(Box::new),
            })?;
        }
        let layer = Layer {
            blob: blob.descriptor(),
            diff_id: blob.diff_id,
            chain,
        };
        Ok(Some((layer, patched)))
    }

    /// Writes the layer of `set` into a new blob writer: patched from `last` when it
    /// can be, else (or when the patch fails: the last blob or its index is damaged) in
    /// full.
    fn write_layer(
        &self,
        set: &ChangeSet,
        write: &WriteOptions,
        last: Option<LastLayer<'_>>,
    ) -> Result<(Written, HashedBlobWriter<'a>), ExecError> {
        let store = self.roots.store;
        if let Some(last) = last {
            let blob = last.blob;
            if let Ok(file) = store.open_blob(&blob) {
                let mut writer = store.hashed_blob_writer()?;
                let base = PatchBase {
                    blob: file,
                    chunks: last.chunks,
                    linked: last.linked,
                };
                match write_indexed(set, write, &mut writer, Some(base)) {
                    Ok(written) => return Ok((written, writer)),
                    Err(e) => self.roots.reporter.event(BuildEvent::Note {
                        message: format!(
                            "warning: cannot patch the last layer {blob} ({e}); writing it in full"
                        ),
                    }),
                }
            }
        }
        let mut writer = store.hashed_blob_writer()?;
        let written = write_indexed(set, write, &mut writer, None)?;
        Ok((written, writer))
    }

    /// What the step changed, and the directories the snapshot holds but the layer
    /// leaves out (overlay copy-ups).
    fn changes(&self) -> Result<(ChangeSet, Vec<PathBuf>), ExecError> {
        match &self.mounted.kind {
            RootKind::Overlay(_) => {
                let all = upperdir_changes(&self.mounted.dirs.path("upper"))?;
                let set = all
                    .clone()
                    .prune_unchanged_dirs(&lowers(self.roots.store, self.layers))?;
                let skip = pruned(&all, &set);
                Ok((set, skip))
            }
            RootKind::Native(flat) => Ok((flat.changes()?, Vec::new())),
        }
    }

    /// Fills the empty snapshot directory `target` with `set` in overlay form.
    fn snapshot(&self, set: &ChangeSet, target: &Path) -> Result<(), ExecError> {
        match &self.mounted.kind {
            RootKind::Native(_) => Ok(materialize(set, target, Some(self.roots.cancel))?),
            RootKind::Overlay(_) => {
                // The upperdir is the layer in overlay form: it becomes the snapshot as is.
                let upper = self.mounted.dirs.path("upper");
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
        let dir = super::env::scratch_dir(store, "step-")?;
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
        let decided = |s| Decision::new(s).get();
        assert_eq!(decided(Snapshotter::Overlayfs), Some(Kind::Overlay));
        assert_eq!(decided(Snapshotter::Native), Some(Kind::Native));
        assert_eq!(decided(Snapshotter::Auto), None);
    }
}
