//! The portable cache: what `--cache-to` exports and `--cache-from` imports.
//!
//! A [`CacheDescription`] (a JSON blob of rbuild's own media type, [`CACHE_MEDIA_TYPE`])
//! lists step records: key, parent key, the layer (digest, size, media type, diff ID)
//! or none, and when the step ran. It is the config of an OCI image manifest whose
//! layers are the records' layer blobs ([`artifact_manifest`]), so any OCI registry
//! stores it and its layers are the very blobs of the pushed image. Nothing
//! store-local travels: no chain IDs, blob stamps or paths.
//!
//! `--cache-to type=inline` puts the same description, as an object, under
//! [`INLINE_CONFIG_KEY`] in the image's config: the image's layers are its records'
//! layers, and the pushed image serves as a cache.
//!
//! Reading one ([`CacheDescription::parse`]) trusts nothing: a description over
//! [`MAX_DESCRIPTION`] bytes, of another version or of another key version is refused
//! whole; a record whose layer is not one of the manifest's layers (same digest, size
//! and media type, OCI or Docker flavour) is dropped with a warning, so a hit can only
//! name a blob the manifest lists, and that blob's digest is checked when it is
//! fetched.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::key::{CacheKey, KEY_VERSION};
use super::record::LayerRecord;
use crate::digest::Digest;
use crate::image::{media_types, Descriptor, Manifest};

/// The media type of the description blob, and the artifact type of its manifest.
pub const CACHE_MEDIA_TYPE: &str = "application/vnd.rbuild.cache.v1+json";
/// The image config field of an inline cache (as BuildKit's `moby.buildkit.cache.v0`).
pub const INLINE_CONFIG_KEY: &str = "rbuild.cache.v1";
/// The description format's version.
pub const DESCRIPTION_VERSION: u32 = 1;
/// The largest description read (a record is ~400 bytes: ~40 000 steps).
pub const MAX_DESCRIPTION: u64 = 16 << 20;

/// One step's record, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortableRecord {
    pub key: CacheKey,
    /// The key of the step (or stage base) below; informative, the key covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<CacheKey>,
    /// `None`: the step changed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRecord>,
    /// When the step ran (RFC 3339), kept in the history of the images that use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// The contents of a `RUN --mount=type=cache` directory, as exported with
/// `--cache-to …,mounts=true`: a layer of the directory's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortableMount {
    /// The directory's name in the store (the digest of its id and seed, hex).
    pub key: String,
    pub layer: LayerRecord,
}

/// The description blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheDescription {
    /// [`DESCRIPTION_VERSION`].
    pub version: u32,
    /// [`KEY_VERSION`] of the keys: records of another key version never match.
    pub key_version: String,
    pub records: Vec<PortableRecord>,
    /// Cache-mount contents (`mounts=true`), each key once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<PortableMount>,
}

/// Why a description cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptionError {
    #[error("the cache description is {size} bytes, more than the {MAX_DESCRIPTION} read")]
    TooLarge { size: u64 },
    #[error("the cache description is malformed: {reason}")]
    Malformed { reason: String },
    #[error("the cache description has version {found}, this rbuild reads {DESCRIPTION_VERSION}")]
    Version { found: u32 },
    #[error(
        "the cache was made with key version {found:?}, this rbuild keys with {KEY_VERSION:?}"
    )]
    KeyVersion { found: String },
    #[error("not an rbuild cache: its config is a {media_type}")]
    NotCache { media_type: String },
}

impl CacheDescription {
    /// The description of `records` (each key once, the first kept; sorted by key so
    /// the same records always give the same bytes), without store-local fields.
    pub fn new(records: impl IntoIterator<Item = PortableRecord>) -> Self {
        let mut by_key = BTreeMap::new();
        for mut record in records {
            if let Some(layer) = &mut record.layer {
                layer.chain = None;
            }
            by_key.entry(record.key).or_insert(record);
        }
        CacheDescription {
            version: DESCRIPTION_VERSION,
            key_version: KEY_VERSION.to_owned(),
            records: by_key.into_values().collect(),
            mounts: Vec::new(),
        }
    }

    /// With the cache-mount contents `mounts` (sorted by key, each once).
    pub fn with_mounts(mut self, mounts: impl IntoIterator<Item = PortableMount>) -> Self {
        let mut by_key = BTreeMap::new();
        for mut mount in mounts {
            mount.layer.chain = None;
            by_key.entry(mount.key.clone()).or_insert(mount);
        }
        self.mounts = by_key.into_values().collect();
        self
    }

    /// The layers of the records, then of the mounts, each once.
    pub fn layers(&self) -> Vec<Descriptor> {
        let mut seen = BTreeSet::new();
        let mounts = self.mounts.iter().map(|m| &m.layer);
        self.records
            .iter()
            .filter_map(|r| r.layer.as_ref())
            .chain(mounts)
            .filter(|l| seen.insert(l.digest))
            .map(|l| Descriptor::new(l.media_type.clone(), l.digest, l.size))
            .collect()
    }

    /// Reads the description `bytes` of a manifest with `layers` (a cache manifest,
    /// or an image with an inline cache); the warnings name the records dropped.
    pub fn parse(
        bytes: &[u8],
        layers: &[Descriptor],
    ) -> Result<(CacheDescription, Vec<String>), DescriptionError> {
        if bytes.len() as u64 > MAX_DESCRIPTION {
            return Err(DescriptionError::TooLarge {
                size: bytes.len() as u64,
            });
        }
        let mut description: CacheDescription =
            serde_json::from_slice(bytes).map_err(|e| DescriptionError::Malformed {
                reason: e.to_string(),
            })?;
        if description.version != DESCRIPTION_VERSION {
            return Err(DescriptionError::Version {
                found: description.version,
            });
        }
        if description.key_version != KEY_VERSION {
            return Err(DescriptionError::KeyVersion {
                found: description.key_version,
            });
        }
        let listed: BTreeMap<Digest, &Descriptor> = layers.iter().map(|d| (d.digest, d)).collect();
        let flavour = |t: &str| media_types::Format::Oci.layer(t);
        let fits = |layer: &LayerRecord| {
            listed.get(&layer.digest).is_some_and(|d| {
                d.size == layer.size
                    && flavour(&d.media_type).is_some()
                    && flavour(&d.media_type) == flavour(&layer.media_type)
            })
        };
        let mut warnings = Vec::new();
        let mut unlisted = |what: String, layer: &LayerRecord| {
            warnings.push(format!(
                "{what} names layer {} that the cache manifest does not list as such: skipped",
                layer.digest
            ));
        };
        description.records.retain(|record| match &record.layer {
            Some(layer) if !fits(layer) => {
                unlisted(format!("cache record {}", record.key), layer);
                false
            }
            _ => true,
        });
        description.mounts.retain(|mount| {
            let ok = fits(&mount.layer) && is_mount_key(&mount.key);
            if !ok {
                unlisted(format!("cache mount {:?}", mount.key), &mount.layer);
            }
            ok
        });
        let layers = description
            .records
            .iter_mut()
            .filter_map(|r| r.layer.as_mut());
        for layer in layers.chain(description.mounts.iter_mut().map(|m| &mut m.layer)) {
            layer.chain = None;
        }
        Ok((description, warnings))
    }
}

/// Whether `key` can name a cache-mount directory: 64 lowercase hex digits (it
/// becomes a path below the store: nothing else may).
fn is_mount_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `manifest` is an rbuild cache manifest.
pub fn check_manifest(manifest: &Manifest) -> Result<(), DescriptionError> {
    if manifest.config.media_type != CACHE_MEDIA_TYPE {
        return Err(DescriptionError::NotCache {
            media_type: manifest.config.media_type.clone(),
        });
    }
    if manifest.config.size > MAX_DESCRIPTION {
        return Err(DescriptionError::TooLarge {
            size: manifest.config.size,
        });
    }
    Ok(())
}

/// The OCI manifest of a cache: the description blob `config` (its digest and size)
/// and the `layers` it names.
pub fn artifact_manifest(config: (Digest, u64), layers: Vec<Descriptor>) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.to_owned()),
        artifact_type: Some(CACHE_MEDIA_TYPE.to_owned()),
        config: Descriptor::new(CACHE_MEDIA_TYPE, config.0, config.1),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(seed: &[u8]) -> LayerRecord {
        LayerRecord {
            digest: Digest::of(seed),
            size: 10,
            media_type: media_types::OCI_LAYER_GZIP.to_owned(),
            diff_id: Digest::of(&[seed, b"-diff"].concat()),
            chain: Some(Digest::of(b"local chain")),
        }
    }

    fn record(key: &[u8], layer: Option<LayerRecord>) -> PortableRecord {
        PortableRecord {
            key: Digest::of(key),
            parent: None,
            layer,
            created: Some("1970-01-01T00:00:00Z".to_owned()),
        }
    }

    fn round_trip(description: &CacheDescription) -> (Manifest, Vec<u8>) {
        let bytes = crate::image::canonical_json(description).unwrap();
        let manifest = artifact_manifest(
            (Digest::of(&bytes), bytes.len() as u64),
            description.layers(),
        );
        (manifest, bytes)
    }

    #[test]
    fn records_travel_without_store_local_fields_and_in_key_order() {
        let a = CacheDescription::new([record(b"b", Some(layer(b"1"))), record(b"a", None)]);
        let b = CacheDescription::new([record(b"a", None), record(b"b", Some(layer(b"1")))]);
        assert_eq!(a, b, "the same records give the same description");
        assert!(a
            .records
            .iter()
            .all(|r| r.layer.as_ref().is_none_or(|l| l.chain.is_none())));
        let (manifest, bytes) = round_trip(&a);
        assert_eq!(manifest.layers.len(), 1);
        let (parsed, warnings) = CacheDescription::parse(&bytes, &manifest.layers).unwrap();
        assert_eq!(parsed, a);
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_record_naming_an_unlisted_or_different_layer_is_dropped() {
        let good = record(b"good", Some(layer(b"1")));
        let description = CacheDescription::new([good.clone(), record(b"bad", Some(layer(b"2")))]);
        let (mut manifest, bytes) = round_trip(&description);
        manifest.layers.retain(|l| l.digest == Digest::of(b"1"));
        let (parsed, warnings) = CacheDescription::parse(&bytes, &manifest.layers).unwrap();
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].key, good.key);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        manifest.layers[0].media_type = media_types::DOCKER_LAYER_GZIP.to_owned();
        let (parsed, _) = CacheDescription::parse(&bytes, &manifest.layers).unwrap();
        assert_eq!(
            parsed.records.len(),
            1,
            "the Docker flavour of the same type"
        );
        manifest.layers[0].size = 11;
        let (parsed, _) = CacheDescription::parse(&bytes, &manifest.layers).unwrap();
        assert!(
            parsed.records.is_empty(),
            "a size that differs is not the layer"
        );
    }

    #[test]
    fn mounts_travel_with_their_layers_and_a_key_that_is_not_a_name_is_dropped() {
        let mount = |key: &str, seed: &[u8]| PortableMount {
            key: key.to_owned(),
            layer: layer(seed),
        };
        let good = "ab".repeat(32);
        let description = CacheDescription::new([record(b"a", Some(layer(b"1")))])
            .with_mounts([mount(&good, b"m"), mount("../../etc", b"n")]);
        assert_eq!(description.layers().len(), 3);
        let (manifest, bytes) = round_trip(&description);
        let (parsed, warnings) = CacheDescription::parse(&bytes, &manifest.layers).unwrap();
        assert_eq!(parsed.mounts.len(), 1, "{warnings:?}");
        assert_eq!(parsed.mounts[0].key, good);
        assert!(parsed.mounts[0].layer.chain.is_none());
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn foreign_versions_garbage_and_huge_descriptions_are_refused() {
        let mut description = CacheDescription::new([record(b"a", None)]);
        description.version = 2;
        let (manifest, bytes) = round_trip(&description);
        assert!(matches!(
            CacheDescription::parse(&bytes, &manifest.layers),
            Err(DescriptionError::Version { found: 2 })
        ));
        description.version = 1;
        description.key_version = "rbuild-cache-v0".into();
        let (manifest, bytes) = round_trip(&description);
        assert!(matches!(
            CacheDescription::parse(&bytes, &manifest.layers),
            Err(DescriptionError::KeyVersion { .. })
        ));
        assert!(matches!(
            CacheDescription::parse(b"{\"version\":", &manifest.layers),
            Err(DescriptionError::Malformed { .. })
        ));
        let huge = vec![b' '; MAX_DESCRIPTION as usize + 1];
        assert!(matches!(
            CacheDescription::parse(&huge, &manifest.layers),
            Err(DescriptionError::TooLarge { .. })
        ));
        let mut image = manifest.clone();
        image.config.media_type = media_types::OCI_CONFIG.to_owned();
        assert!(matches!(
            check_manifest(&image),
            Err(DescriptionError::NotCache { .. })
        ));
        assert!(check_manifest(&manifest).is_ok());
    }
}
