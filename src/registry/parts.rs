//! What a stored image is made of: its manifests (an index's children first) and the
//! blobs they name, read from the store for a push or a fetch of lazy blobs.

use std::collections::BTreeSet;

use super::error::RegistryError;
use crate::image::{media_types, Descriptor, Index, Manifest};
use crate::store::Store;

/// The manifests (children first) and blobs of a stored image.
pub(super) struct Parts {
    pub manifests: Vec<(Descriptor, Vec<u8>)>,
    pub blobs: Vec<Descriptor>,
}

/// The parts of stored image `top` (a manifest or an index); its manifests must be in
/// the store, its other blobs may be absent.
pub(super) fn image_parts(store: &Store, top: &Descriptor) -> Result<Parts, RegistryError> {
    let mut parts = Parts {
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut add_manifest = |desc: &Descriptor, parts: &mut Parts| -> Result<(), RegistryError> {
        let bytes = store.read_blob(&desc.digest)?;
        let manifest: Manifest =
            crate::image::decode_json(&bytes).map_err(|e| RegistryError::Unsupported {
                reference: desc.digest.to_string(),
                reason: format!("the stored manifest is malformed: {e}"),
            })?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if seen.insert(blob.digest) {
                parts.blobs.push(blob.clone());
            }
        }
        parts.manifests.push((desc.clone(), bytes));
        Ok(())
    };
    if media_types::is_index(&top.media_type) {
        let bytes = store.read_blob(&top.digest)?;
        let index: Index =
            crate::image::decode_json(&bytes).map_err(|e| RegistryError::Unsupported {
                reference: top.digest.to_string(),
                reason: format!("the stored index is malformed: {e}"),
            })?;
        for child in &index.manifests {
            if media_types::is_manifest(&child.media_type) {
                add_manifest(child, &mut parts)?;
            }
        }
        parts.manifests.push((top.clone(), bytes));
    } else {
        add_manifest(top, &mut parts)?;
    }
    Ok(parts)
}
