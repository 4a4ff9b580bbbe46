//! Layers that become the image's after being made uncompressed.
//!
//! A stage whose layers are not the image's (a builder stage: see
//! [`super::stage_env::StageEnv::exported`]) writes them as uncompressed tars: nothing
//! reads them compressed, and squeezing them was most of the CPU a multi-stage build
//! spent on layers (BuildKit compresses nothing until an export needs it either). When
//! a later build's image takes such a layer in (`--target builder`, a cache hit from a
//! stage that was a builder then), [`compress_made_layers`] compresses the tar blob
//! once, to the bytes the step would have written compressed, and points the step's
//! record at the compressed blob, so the next build finds it as it is.
//!
//! Only layers that the target's records name are touched: a base image's own layers
//! keep the blobs their image has, as in every build.

use std::collections::BTreeMap;

use super::env::{BuildEnv, StageOutput};
use super::error::ExecError;
use crate::cache::{LayerRecord, PortableRecord, Record, Records};
use crate::digest::Digest;
use crate::image::LayerDescriptor;
use crate::layers::{compress_tar, Compression, MEDIA_TYPE_TAR};

/// `target` with each layer a step made as an uncompressed tar in the image's
/// compression (its records, and the store's, naming the compressed blob).
pub fn compress_made_layers(
    env: &BuildEnv<'_>,
    target: &StageOutput,
) -> Result<StageOutput, ExecError> {
    let mut out = target.clone();
    let compressed = compress_records(env, &mut out.records)?;
    for layer in &mut out.layers {
        if let Some(blob) = compressed.get(&layer.blob.digest) {
            layer.blob = blob.clone();
        }
    }
    Ok(out)
}

/// Gives each record of `records` whose layer is an uncompressed tar the build's
/// compression: the blob is compressed (once per digest; not at all when the store's
/// record of the same key already names a compressed blob of it), the record and the
/// store's record repointed. Returns tar digest -> compressed blob.
pub fn compress_records(
    env: &BuildEnv<'_>,
    records: &mut [PortableRecord],
) -> Result<BTreeMap<Digest, LayerDescriptor>, ExecError> {
    let mut compressed: BTreeMap<Digest, LayerDescriptor> = BTreeMap::new();
    if env.write.compression == Compression::None {
        return Ok(compressed);
    }
    let local = Records::new(env.store);
    for record in records {
        let Some(layer) = record
            .layer
            .as_mut()
            .filter(|l| l.media_type == MEDIA_TYPE_TAR)
        else {
            continue;
        };
        let stored = local.get(&record.key)?;
        let done = compressed.get(&layer.digest).cloned();
        let blob = match done.or_else(|| already(stored.as_ref(), layer)) {
            Some(blob) => blob,
            None => compress_blob(env, layer)?,
        };
        compressed.insert(layer.digest, blob.clone());
        layer.digest = blob.digest;
        layer.size = blob.size;
        layer.media_type = blob.media_type;
        if let Some(mut stored) = stored.filter(|s| s.layer.as_ref() != Some(layer)) {
            stored.layer = Some(layer.clone());
            local.put(&stored)?;
        }
    }
    Ok(compressed)
}

/// The compressed blob the store's record `stored` names for the same layer as `tar`
/// (an earlier export compressed it), if any.
fn already(stored: Option<&Record>, tar: &LayerRecord) -> Option<LayerDescriptor> {
    let layer = stored?.layer.as_ref()?;
    (layer.diff_id == tar.diff_id && layer.media_type != MEDIA_TYPE_TAR).then(|| layer.descriptor())
}

/// Writes the compressed blob of the uncompressed layer `tar`.
fn compress_blob(env: &BuildEnv<'_>, tar: &LayerRecord) -> Result<LayerDescriptor, ExecError> {
    let file = env.store.open_blob(&tar.digest)?;
    let mut writer = env.store.hashed_blob_writer()?;
    let blob = compress_tar(std::io::BufReader::new(file), &env.write, &mut writer)?;
    if blob.diff_id != tar.diff_id {
        return Err(ExecError::Internal {
            what: "an uncompressed layer blob does not hash to its diff ID",
        });
    }
    writer.commit(blob.digest, blob.size)?;
    Ok(blob.descriptor())
}
