//! Image assembly: config + layer blobs -> config blob + manifest blob in the store.
//!
//! Layers are already blobs (the layers module wrote them); this writes the config and
//! the manifest through [`canonical_json`], so the same config and layers always give the
//! same manifest digest, and maps layer media types to the requested [`Format`].

use std::collections::BTreeMap;

use super::error::{Error, Result};
use crate::digest::Digest;
use crate::image::{
    canonical_json, decode_json, Descriptor, Format, ImageConfig, Index, LayerDescriptor, Manifest,
    Platform,
};
use crate::store::Store;

/// An assembled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    /// The manifest's descriptor (with the platform of the config); give it a name with
    /// [`Store::set_name`].
    pub descriptor: Descriptor,
    /// The config's descriptor; its digest is the image ID.
    pub config: Descriptor,
}

/// Writes `config` and a manifest listing `layers` (base first) and carrying
/// `annotations` to the store.
///
/// `config.rootfs.diff_ids` must have one entry per layer. Every layer blob must be in
/// the store with the given size, or lazy (a registry keeps it) with that size. The annotations change the manifest (its digest),
/// never the config (the image ID) or the layers.
pub fn assemble(
    store: &Store,
    config: &ImageConfig,
    layers: &[LayerDescriptor],
    format: Format,
    annotations: &BTreeMap<String, String>,
) -> Result<ManifestRef> {
    if config.rootfs.diff_ids.len() != layers.len() {
        return Err(Error::LayerCount {
            config: config.rootfs.diff_ids.len(),
            layers: layers.len(),
        });
    }
    let mut layer_descriptors = Vec::with_capacity(layers.len());
    for layer in layers {
        let media_type = format
            .layer(&layer.media_type)
            .ok_or_else(|| Error::LayerMediaType {
                digest: layer.digest,
                media_type: layer.media_type.clone(),
                format,
            })?;
        let actual = store.blob_or_lazy_size(&layer.digest)?;
        if actual != layer.size {
            return Err(Error::BlobSize {
                digest: layer.digest,
                expected: layer.size,
                actual,
            });
        }
        layer_descriptors.push(Descriptor::new(media_type, layer.digest, layer.size));
    }

    let config_bytes = encode(config, "image config")?;
    let (config_digest, config_size) = store.put_bytes(&config_bytes)?;
    let config_descriptor = Descriptor::new(format.config(), config_digest, config_size);

    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(format.manifest().to_owned()),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers: layer_descriptors,
        subject: None,
        annotations: annotations.clone(),
    };
    let manifest_bytes = encode(&manifest, "image manifest")?;
    let (digest, size) = store.put_bytes(&manifest_bytes)?;
    let mut descriptor = Descriptor::new(format.manifest(), digest, size);
    descriptor.platform = Some(Platform {
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        variant: config.variant.clone(),
        ..Platform::default()
    });
    Ok(ManifestRef {
        descriptor,
        config: config_descriptor,
    })
}

/// Writes an image index (a Docker manifest list in the Docker format) listing the
/// platform `manifests` (each descriptor with its platform and annotations) and
/// carrying `annotations` into the store; returns its descriptor.
pub fn assemble_index(
    store: &Store,
    manifests: &[Descriptor],
    format: Format,
    annotations: &BTreeMap<String, String>,
) -> Result<Descriptor> {
    let index = Index {
        media_type: Some(format.index().to_owned()),
        manifests: manifests.to_vec(),
        annotations: annotations.clone(),
        ..Index::default()
    };
    let bytes = encode(&index, "image index")?;
    let (digest, size) = store.put_bytes(&bytes)?;
    Ok(Descriptor::new(format.index(), digest, size))
}

fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    canonical_json(value).map_err(|source| Error::Encode { what, source })
}

/// Reads and parses the manifest blob `digest`.
pub fn read_manifest(store: &Store, digest: &Digest) -> Result<Manifest> {
    let bytes = store.read_blob(digest)?;
    decode_json(&bytes).map_err(|source| Error::Decode {
        digest: *digest,
        what: "manifest",
        source,
    })
}

/// Reads and parses the config blob `digest`.
pub fn read_config(store: &Store, digest: &Digest) -> Result<ImageConfig> {
    let bytes = store.read_blob(digest)?;
    ImageConfig::parse(&bytes).map_err(|source| Error::Decode {
        digest: *digest,
        what: "image config",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::media_types::*;

    fn none() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn fixture() -> (tempfile::TempDir, Store, ImageConfig, Vec<LayerDescriptor>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (digest, size) = store.put_bytes(b"not really a gzip tar").unwrap();
        let mut config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        config.rootfs.diff_ids.push(Digest::of(b"a tar"));
        let layers = vec![LayerDescriptor {
            digest,
            size,
            media_type: OCI_LAYER_GZIP.into(),
        }];
        (dir, store, config, layers)
    }

    #[test]
    fn same_inputs_same_digest() {
        let (_d, store, config, layers) = fixture();
        let a = assemble(&store, &config, &layers, Format::Oci, &none()).unwrap();
        let b = assemble(&store, &config.clone(), &layers, Format::Oci, &none()).unwrap();
        assert_eq!(a, b);
        let m = read_manifest(&store, &a.descriptor.digest).unwrap();
        assert_eq!(m.media_type.as_deref(), Some(OCI_MANIFEST));
        assert_eq!(m.config.media_type, OCI_CONFIG);
        assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(read_config(&store, &a.config.digest).unwrap(), config);
    }

    #[test]
    fn annotations_change_the_manifest_not_the_image_id() {
        let (_d, store, config, layers) = fixture();
        let plain = assemble(&store, &config, &layers, Format::Oci, &none()).unwrap();
        let notes = BTreeMap::from([("org.opencontainers.image.title".to_owned(), "t".to_owned())]);
        let annotated = assemble(&store, &config, &layers, Format::Oci, &notes).unwrap();
        assert_eq!(annotated.config, plain.config);
        assert_ne!(annotated.descriptor.digest, plain.descriptor.digest);
        let m = read_manifest(&store, &annotated.descriptor.digest).unwrap();
        assert_eq!(m.annotations, notes);
        assert_eq!(
            m.layers,
            read_manifest(&store, &plain.descriptor.digest)
                .unwrap()
                .layers
        );
    }

    #[test]
    fn docker_format_maps_media_types() {
        let (_d, store, config, layers) = fixture();
        let r = assemble(&store, &config, &layers, Format::Docker, &none()).unwrap();
        assert_eq!(r.descriptor.media_type, DOCKER_MANIFEST);
        let m = read_manifest(&store, &r.descriptor.digest).unwrap();
        assert_eq!(m.config.media_type, DOCKER_CONFIG);
        assert_eq!(m.layers[0].media_type, DOCKER_LAYER_GZIP);
        // Same config bytes in both formats: the image ID does not depend on the format.
        let o = assemble(&store, &config, &layers, Format::Oci, &none()).unwrap();
        assert_eq!(o.config.digest, r.config.digest);
        assert_ne!(o.descriptor.digest, r.descriptor.digest);
    }

    #[test]
    fn inconsistent_inputs_are_refused() {
        let (_d, store, config, mut layers) = fixture();
        let mut two = config.clone();
        two.rootfs.diff_ids.push(Digest::of(b"b"));
        assert!(matches!(
            assemble(&store, &two, &layers, Format::Oci, &none()),
            Err(Error::LayerCount {
                config: 2,
                layers: 1
            })
        ));
        layers[0].size += 1;
        assert!(matches!(
            assemble(&store, &config, &layers, Format::Oci, &none()),
            Err(Error::BlobSize { .. })
        ));
        layers[0].size -= 1;
        layers[0].media_type = OCI_LAYER_ZSTD.into();
        assert!(matches!(
            assemble(&store, &config, &layers, Format::Docker, &none()),
            Err(Error::LayerMediaType { .. })
        ));
        layers[0].digest = Digest::of(b"absent");
        assert!(matches!(
            assemble(&store, &config, &layers, Format::Oci, &none()),
            Err(Error::Store(crate::store::Error::BlobNotFound { .. }))
        ));
    }
}
