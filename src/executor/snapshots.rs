//! Layers made into snapshots: a base image's layers, and layers taken from the cache,
//! each applied from its blob once (checking the blob's digest and diff ID in the same
//! pass) when a step first needs it as a lower directory; the blob of a hit from an
//! imported cache is downloaded then, not before.

use super::cache_io::RemoteCache;
use super::env::Layer;
use super::error::ExecError;
use super::events::{BuildEvent, Reporter};
use crate::image::LayerDescriptor;
use crate::layers::{apply_layer, ApplyOptions, Compression, WhiteoutMode};
use crate::plan::BaseImage;
use crate::publish::{read_config, read_manifest};
use crate::store::{chain_id, Prepared, SnapshotInfo, Store};

/// An image's layers from the store, each applied once to its snapshot.
pub fn image_layers(
    store: &Store,
    remote: &RemoteCache,
    image: &BaseImage,
    reporter: &dyn Reporter,
) -> Result<Vec<Layer>, ExecError> {
    layers_of(
        store,
        Some(remote),
        &image.digest,
        &image.reference,
        reporter,
    )
}

/// Makes the snapshots of the stored image manifest `digest` (`rbuild pull`: a pulled
/// image is ready to build on, as `docker pull` leaves it); returns its layer count.
pub fn unpack_image(
    store: &Store,
    digest: &crate::digest::Digest,
    reference: &str,
    reporter: &dyn Reporter,
) -> Result<usize, ExecError> {
    Ok(layers_of(store, None, digest, reference, reporter)?.len())
}

/// The layers of the stored manifest `digest`, each applied once to its snapshot.
fn layers_of(
    store: &Store,
    remote: Option<&RemoteCache>,
    digest: &crate::digest::Digest,
    reference: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<Layer>, ExecError> {
    let manifest = read_manifest(store, digest)?;
    let config = read_config(store, &manifest.config.digest)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(ExecError::BadImage {
            reference: reference.to_owned(),
            reason: "layer count differs from diff_ids".into(),
        });
    }
    let mut out = Vec::new();
    for (i, (desc, diff_id)) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
    {
        let chain = chain_id(&config.rootfs.diff_ids[..=i]).ok_or_else(|| ExecError::BadImage {
            reference: reference.to_owned(),
            reason: "empty layer list".into(),
        })?;
        let blob = LayerDescriptor {
            digest: desc.digest,
            size: desc.size,
            media_type: desc.media_type.clone(),
        };
        let layer = Layer {
            blob,
            diff_id: *diff_id,
            chain,
        };
        ensure_snapshot(store, remote, &layer, out.last(), reference, reporter)?;
        out.push(layer);
    }
    Ok(out)
}

/// Makes the snapshots of `layers` that are missing (layers that came from the cache
/// and were never unpacked here, or were pruned) by applying their blobs.
pub fn ensure_snapshots(
    store: &Store,
    remote: &RemoteCache,
    layers: &[Layer],
    reporter: &dyn Reporter,
) -> Result<(), ExecError> {
    for (i, layer) in layers.iter().enumerate() {
        let parent = i.checked_sub(1).and_then(|p| layers.get(p));
        ensure_snapshot(
            store,
            Some(remote),
            layer,
            parent,
            "a cached step",
            reporter,
        )?;
    }
    Ok(())
}

/// Applies `layer`'s blob to its snapshot unless the snapshot exists (intact: the store
/// checks it at first use), checking in the same pass that the blob has its digest and
/// the diff ID it was recorded with.
fn ensure_snapshot(
    store: &Store,
    remote: Option<&RemoteCache>,
    layer: &Layer,
    parent: Option<&Layer>,
    reference: &str,
    reporter: &dyn Reporter,
) -> Result<(), ExecError> {
    // Its last use, for a size-capped prune (the directory's own times are content).
    store.touch_snapshot(&layer.chain);
    if let Prepared::Build(builder) = store.prepare_snapshot(&layer.chain)? {
        let started = std::time::Instant::now();
        let digest = layer.blob.digest.to_string();
        reporter.event(BuildEvent::LayerUnpacking {
            digest: digest.clone(),
            size: layer.blob.size,
        });
        if let Some(remote) = remote {
            remote.ensure_blob_to_apply(store, &layer.blob, reference, reporter)?;
        }
        let blob = store.open_blob(&layer.blob.digest)?;
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            compression: Compression::from_media_type(&layer.blob.media_type),
        };
        let applied = apply_layer(std::io::BufReader::new(blob), builder.path(), &opts).map_err(
            |source| ExecError::ApplyLayer {
                digest: layer.blob.digest,
                source,
            },
        )?;
        if applied.digest != layer.blob.digest {
            return Err(ExecError::CorruptBlob {
                digest: layer.blob.digest,
                actual: applied.digest,
                size: applied.size,
            });
        }
        if applied.diff_id != layer.diff_id {
            return Err(ExecError::BadImage {
                reference: reference.to_owned(),
                reason: format!(
                    "layer {} has diff ID {}, expected {}",
                    layer.blob.digest, applied.diff_id, layer.diff_id
                ),
            });
        }
        if let Some(remote) = remote {
            remote.applied(store, &layer.blob.digest, layer.diff_id)?;
        }
        builder.commit(&SnapshotInfo {
            parent: parent.map(|p| p.chain),
            diff_id: layer.diff_id,
            source_date_epoch: None,
            skip: Vec::new(),
            layer_chunks: None,
        })?;
        reporter.event(BuildEvent::LayerUnpacked {
            digest,
            elapsed: started.elapsed(),
        });
    }
    Ok(())
}
