//! Snapshots made from layers another tool wrote. rbuild's tar writer cannot give such
//! a layer's diff ID back from the directory (another writer orders entries, pads and
//! encodes headers its own way), so a mismatch there says nothing about damage. What
//! can be checked is checked instead: the layer blob an image in the store lists for
//! that diff ID is applied again into a temporary directory, and the two trees are
//! compared entry by entry.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::Path;

use crate::digest::Digest;
use crate::image::{decode_json, media_types, Descriptor, ImageConfig, Index, Manifest};
use crate::layers::{apply_layer, first_difference, ApplyOptions, Compression, WhiteoutMode};
use crate::store::Store;

/// How deep nested indexes are followed.
const MAX_DEPTH: usize = 8;

/// The layer blobs the images in the store list, by diff ID. Unreadable images are
/// skipped (the images check reports them).
pub(super) fn layers_by_diff_id(store: &Store) -> HashMap<Digest, Descriptor> {
    let mut out = HashMap::new();
    if let Ok(index) = store.read_index() {
        for entry in &index.manifests {
            collect(store, entry, 0, &mut out);
        }
    }
    out
}

fn collect(store: &Store, desc: &Descriptor, depth: usize, out: &mut HashMap<Digest, Descriptor>) {
    let Ok(bytes) = store.read_blob(&desc.digest) else {
        return;
    };
    if media_types::is_index(&desc.media_type) && depth < MAX_DEPTH {
        if let Ok(index) = decode_json::<Index>(&bytes) {
            for child in &index.manifests {
                collect(store, child, depth + 1, out);
            }
        }
        return;
    }
    let Ok(manifest) = decode_json::<Manifest>(&bytes) else {
        return;
    };
    let Ok(config) = store.read_blob(&manifest.config.digest) else {
        return;
    };
    if let Ok(config) = ImageConfig::parse(&config) {
        for (diff_id, layer) in config.rootfs.diff_ids.iter().zip(manifest.layers) {
            out.entry(*diff_id).or_insert(layer);
        }
    }
}

/// Compares snapshot `dir` with `layer` applied again; the problem, if any.
pub(super) fn verify_against(
    store: &Store,
    dir: &Path,
    diff_id: &Digest,
    layer: &Descriptor,
) -> Result<(), String> {
    let temp = tempfile::tempdir_in(store.work_dir())
        .map_err(|e| format!("cannot make a directory to apply its layer into: {e}"))?;
    let blob = store.open_blob(&layer.digest).map_err(|e| e.to_string())?;
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        compression: Compression::from_media_type(&layer.media_type),
    };
    let applied = apply_layer(BufReader::new(blob), temp.path(), &opts)
        .map_err(|e| format!("its layer {} cannot be applied again: {e}", layer.digest))?;
    if applied.diff_id != *diff_id {
        return Err(format!(
            "its layer {} has diff ID {}, not {diff_id}",
            layer.digest, applied.diff_id
        ));
    }
    match first_difference(dir, temp.path()) {
        Ok(None) => Ok(()),
        Ok(Some(diff)) => Err(format!(
            "content differs from its layer {} applied again: {diff}",
            layer.digest
        )),
        Err(e) => Err(format!("cannot compare it with its layer: {e}")),
    }
}
