//! `--cache-to …,mounts=true`: the `RUN --mount=type=cache` directories steps of this
//! build used, each as a layer of its tree (content-addressed: an unchanged directory
//! gives the same blob), the most recently changed first, then the imported ones this
//! build did not touch; a directory over [`MAX_MOUNT`] or one that would take the total
//! over the export's cap is left out with a note, so the oldest go first.

use std::path::PathBuf;
use std::time::SystemTime;

use super::super::env::BuildEnv;
use super::super::error::ExecError;
use super::super::events::BuildEvent;
use crate::cache::{LayerRecord, PortableMount};
use crate::layers::{tree_changes, write_changes};

/// The largest cache-mount layer exported.
pub const MAX_MOUNT: u64 = 1 << 30;

/// The cache-mount contents to export, at most `cap` bytes of layers in all.
pub fn mount_layers(env: &BuildEnv<'_>, cap: u64) -> Result<Vec<PortableMount>, ExecError> {
    let used: Vec<(String, PathBuf)> = env
        .used_mounts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, p)| (k.clone(), p.clone()))
        .collect();
    let mut candidates = Vec::new();
    for (key, dir) in recent_first(used) {
        if let Some(layer) = dir_layer(env, &dir)? {
            candidates.push(PortableMount { key, layer });
        }
    }
    let imported = env
        .remote
        .mounts()
        .filter(|(key, _)| !candidates.iter().any(|c| c.key == **key));
    let imported: Vec<PortableMount> = imported
        .map(|(key, layer)| PortableMount {
            key: key.clone(),
            layer: layer.clone(),
        })
        .collect();
    let mut total = 0u64;
    let mut out = Vec::new();
    for mount in candidates.into_iter().chain(imported) {
        let size = mount.layer.size;
        if size > MAX_MOUNT || total.saturating_add(size) > cap {
            env.reporter.event(BuildEvent::Note {
                message: format!(
                    "cache mount {} ({size} bytes) left out of the cache export: over the size cap",
                    mount.key
                ),
            });
            continue;
        }
        total += size;
        out.push(mount);
    }
    Ok(out)
}

/// `dirs` by last modification, newest first.
fn recent_first(mut dirs: Vec<(String, PathBuf)>) -> Vec<(String, PathBuf)> {
    let modified = |p: &PathBuf| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    dirs.sort_by_key(|(_, p)| std::cmp::Reverse(modified(p)));
    dirs
}

/// The layer of directory `dir`'s tree, in the store; `None` when it is empty.
fn dir_layer(env: &BuildEnv<'_>, dir: &std::path::Path) -> Result<Option<LayerRecord>, ExecError> {
    let set = tree_changes(dir)?;
    if set.is_empty() {
        return Ok(None);
    }
    let mut writer = env.store.hashed_blob_writer()?;
    let blob = write_changes(&set, &env.write, &mut writer)?;
    writer.commit(blob.digest, blob.size)?;
    Ok(Some(LayerRecord {
        digest: blob.digest,
        size: blob.size,
        media_type: blob.media_type.to_owned(),
        diff_id: blob.diff_id,
        chain: None,
    }))
}
