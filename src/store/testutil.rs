//! Test helpers shared by the store's and the CLI's unit tests.

use super::Store;
use crate::digest::Digest;
use crate::image::{media_types, Descriptor, Format, ImageConfig, LayerDescriptor};
use crate::publish::assemble;

/// A store in a fresh temp dir with one small image assembled in it (not named).
pub(crate) fn store_with_image(layer: &[u8]) -> (tempfile::TempDir, Store, Descriptor) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let desc = image_in(&store, layer);
    (dir, store, desc)
}

/// Assembles in `store` an image whose single (fake, uncompressed) layer is `layer`.
pub(crate) fn image_in(store: &Store, layer: &[u8]) -> Descriptor {
    let (digest, size) = store.put_bytes(layer).unwrap();
    let mut config = ImageConfig {
        created: Some("2024-01-01T00:00:00Z".into()),
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    config.rootfs.diff_ids.push(Digest::of(layer));
    let layers = [LayerDescriptor {
        digest,
        size,
        media_type: media_types::OCI_LAYER.into(),
    }];
    assemble(store, &config, &layers, Format::Oci, &Default::default())
        .unwrap()
        .descriptor
}
