//! `--cache-from`: each cache's manifest and description read once, before the stages
//! (a cache that cannot be read is a warning, as in BuildKit: the build goes on without
//! it); their records merged, the first cache named winning a key. A hit costs no
//! download: a layer blob is fetched ([`RemoteCache::ensure_blob`]) only when a step
//! needs it as a lower, an output reads the image, or a cache is exported; the records
//! that name a fetched blob are then written to the store's own records, so the next
//! build here hits without `--cache-from`. The image is assembled over layers a
//! registry cache keeps as lazy blobs ([`RemoteCache::ensure_blob_or_lazy`]).

use std::collections::BTreeMap;
use std::path::Path;

use super::super::error::ExecError;
use super::super::events::{BuildEvent, Reporter};
use super::super::{BuildOptions, CacheLocation};
use crate::cache::{
    check_manifest, CacheDescription, CacheKey, LayerRecord, PortableRecord, Record, Records,
    INLINE_CONFIG_KEY, MAX_DESCRIPTION,
};
use crate::digest::Digest;
use crate::image::{decode_json, media_types, Descriptor, LayerDescriptor, Manifest};
use crate::layers::{apply_layer, diff_id_of, ApplyOptions, Compression, WhiteoutMode};
use crate::publish::{copy_layout_blob, layout_manifest};
use crate::registry::{
    fetch_blob, fetch_image_blobs, fetch_lazy, fetch_manifest, missing_blobs, BlobState, Client,
    TransferEvent,
};
use crate::store::{LazyBlob, Store};

/// The records of the imported caches.
pub struct RemoteCache {
    client: Client,
    locations: Vec<CacheLocation>,
    /// Key -> the record and the index of the cache it came from.
    records: BTreeMap<CacheKey, (PortableRecord, usize)>,
    /// Layer blob -> the cache to fetch it from.
    blobs: BTreeMap<Digest, usize>,
    /// Cache-mount key -> its contents' layer and the cache it came from.
    mounts: BTreeMap<String, (LayerRecord, usize)>,
}

impl RemoteCache {
    /// Reads every `--cache-from` of `options`; what cannot be read is reported as a
    /// note and left out.
    pub fn load(store: &Store, options: &BuildOptions, reporter: &dyn Reporter) -> Self {
        let mut registry = options.registry.clone();
        registry.cancel = options.cancel.clone();
        let mut cache = RemoteCache {
            client: Client::new(registry),
            locations: options.cache_from.clone(),
            records: BTreeMap::new(),
            blobs: BTreeMap::new(),
            mounts: BTreeMap::new(),
        };
        for (index, location) in options.cache_from.iter().enumerate() {
            match cache.read(store, location) {
                Ok((description, warnings)) => {
                    for warning in warnings {
                        note(reporter, location, &warning);
                    }
                    cache.merge(description, index);
                }
                Err(reason) => note(reporter, location, &format!("not used: {reason}")),
            }
        }
        cache
    }

    /// The description of the cache at `location`: a cache manifest's, or the one in
    /// an image's config (`--cache-to type=inline`).
    fn read(
        &self,
        store: &Store,
        location: &CacheLocation,
    ) -> Result<(CacheDescription, Vec<String>), String> {
        let manifest = self.manifest(store, location)?;
        let inline = media_types::is_config(&manifest.config.media_type);
        if inline && manifest.config.size > MAX_DESCRIPTION {
            return Err(format!(
                "the image config is {} bytes",
                manifest.config.size
            ));
        }
        if !inline {
            check_manifest(&manifest).map_err(|e| e.to_string())?;
        }
        self.fetch(store, location, &manifest.config)?;
        let mut bytes = store
            .read_blob(&manifest.config.digest)
            .map_err(|e| e.to_string())?;
        if inline {
            bytes = inline_description(&bytes)?;
        }
        let (mut description, mut warnings) =
            CacheDescription::parse(&bytes, &manifest.layers).map_err(|e| e.to_string())?;
        // A hit whose blob is gone could not be undone once a later step needs it:
        // such records are dropped now (a HEAD or a stat per layer, no download).
        let missing = self.missing(location, &manifest)?;
        description.records.retain(|record| {
            let gone = record
                .layer
                .as_ref()
                .filter(|l| missing.contains(&l.digest));
            if let Some(layer) = gone {
                warnings.push(format!(
                    "cache record {} names layer {} that the cache does not hold: skipped",
                    record.key, layer.digest
                ));
            }
            gone.is_none()
        });
        Ok((description, warnings))
    }

    /// The manifest at `location` (a layout's only or `latest` entry).
    fn manifest(&self, store: &Store, location: &CacheLocation) -> Result<Manifest, String> {
        Ok(match location {
            CacheLocation::Registry(reference) => {
                let fetched = fetch_manifest(&self.client, reference).map_err(|e| e.to_string())?;
                decode_json(&fetched.bytes).map_err(|e| e.to_string())?
            }
            CacheLocation::Local(dir) => {
                let desc = layout_manifest(store, dir, "latest").map_err(|e| e.to_string())?;
                decode_json(&store.read_blob(&desc.digest).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?
            }
        })
    }

    /// The layers of `manifest` the cache at `location` does not hold.
    fn missing(
        &self,
        location: &CacheLocation,
        manifest: &Manifest,
    ) -> Result<Vec<Digest>, String> {
        let layers: Vec<Digest> = manifest.layers.iter().map(|l| l.digest).collect();
        match location {
            CacheLocation::Registry(reference) => {
                missing_blobs(&self.client, reference, &layers).map_err(|e| e.to_string())
            }
            CacheLocation::Local(dir) => Ok(layers
                .into_iter()
                .filter(|d| !dir.join("blobs/sha256").join(d.hex()).is_file())
                .collect()),
        }
    }

    fn merge(&mut self, description: CacheDescription, index: usize) {
        for mount in description.mounts {
            self.blobs.entry(mount.layer.digest).or_insert(index);
            self.mounts.entry(mount.key).or_insert((mount.layer, index));
        }
        for record in description.records {
            if let Some(layer) = &record.layer {
                self.blobs.entry(layer.digest).or_insert(index);
            }
            self.records.entry(record.key).or_insert((record, index));
        }
    }

    /// The imported record of `key` and where it came from.
    pub fn lookup(&self, key: &CacheKey) -> Option<(Record, String)> {
        let (portable, index) = self.records.get(key)?;
        let mut record = Record::new(*key, portable.layer.clone());
        record.created = portable.created.clone();
        let from = self.locations.get(*index)?.to_string();
        Some((record, from))
    }

    /// Makes sure layer blob `blob` is in the store, downloading it from the cache
    /// that listed it when it is not (its diff ID checked); a blob no cache lists is
    /// left to the caller.
    pub fn ensure_blob(
        &self,
        store: &Store,
        blob: &LayerDescriptor,
        reporter: &dyn Reporter,
    ) -> Result<(), ExecError> {
        self.fetch_layer(store, blob, "the image being built", reporter, true)
    }

    /// [`Self::ensure_blob`] for a blob of `image` (for messages) about to be applied,
    /// whose diff ID the applier checks in its own pass (then [`Self::applied`]); a
    /// lazy blob of an image in the store is fetched from where its record says.
    pub fn ensure_blob_to_apply(
        &self,
        store: &Store,
        blob: &LayerDescriptor,
        image: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), ExecError> {
        self.fetch_layer(store, blob, image, reporter, false)
    }

    /// For the image being assembled: makes layer `blob` lazy (its record says which
    /// registry holds it, nothing is downloaded) when a registry cache listed it, else
    /// makes sure it is in the store ([`Self::ensure_blob`]).
    pub fn ensure_blob_or_lazy(
        &self,
        store: &Store,
        blob: &LayerDescriptor,
        reporter: &dyn Reporter,
    ) -> Result<(), ExecError> {
        if store.has_blob(&blob.digest) {
            return Ok(());
        }
        let location = self.location_of(&blob.digest);
        let Some(CacheLocation::Registry(reference)) = location else {
            return self.ensure_blob(store, blob, reporter);
        };
        store.add_lazy(&LazyBlob {
            digest: blob.digest,
            size: blob.size,
            media_type: blob.media_type.clone(),
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
        })?;
        Ok(())
    }

    /// Fetches the lazy blobs stored image `image` reaches (before an export reads
    /// them), reporting each one's bytes.
    pub fn fetch_image(
        &self,
        store: &Store,
        image: &Descriptor,
        reporter: &dyn Reporter,
    ) -> Result<(), ExecError> {
        fetch_image_blobs(&self.client, store, image, &|event| {
            if let TransferEvent::Blob {
                digest,
                size,
                state: BlobState::Done,
            } = event
            {
                reporter.event(BuildEvent::BlobProgress {
                    digest: digest.to_string(),
                    done: size,
                    total: size,
                });
            }
        })?;
        Ok(())
    }

    /// The cache that listed layer `digest`.
    fn location_of(&self, digest: &Digest) -> Option<&CacheLocation> {
        self.blobs.get(digest).and_then(|&i| self.locations.get(i))
    }

    fn fetch_layer(
        &self,
        store: &Store,
        blob: &LayerDescriptor,
        image: &str,
        reporter: &dyn Reporter,
        check_diff_id: bool,
    ) -> Result<(), ExecError> {
        if store.has_blob(&blob.digest) {
            return Ok(());
        }
        let Some(location) = self.location_of(&blob.digest) else {
            // A lazy layer of an image in the store (a base image built here from a
            // registry cache): fetched from where its record says.
            if let Some(lazy) = store.lazy_blob(&blob.digest) {
                fetch_lazy(&self.client, store, &lazy, image)?;
            }
            return Ok(());
        };
        let desc = Descriptor::new(blob.media_type.clone(), blob.digest, blob.size);
        self.fetch(store, location, &desc)
            .map_err(|reason| ExecError::RemoteCache {
                cache: location.to_string(),
                reason: format!("cannot fetch layer {}: {reason}", blob.digest),
            })?;
        reporter.event(BuildEvent::BlobProgress {
            digest: blob.digest.to_string(),
            done: blob.size,
            total: blob.size,
        });
        if !check_diff_id {
            return Ok(());
        }
        let diff_id = self.check_diff_id(store, blob, location)?;
        self.keep_records(store, &blob.digest, diff_id)
    }

    /// The imported cache mounts, by key, with the cache each came from.
    pub fn mounts(&self) -> impl Iterator<Item = (&String, &LayerRecord)> {
        self.mounts.iter().map(|(key, (layer, _))| (key, layer))
    }

    /// Fills the new cache-mount directory `dir` of `key` from the imported cache that
    /// has it (its layer fetched, digest and diff ID checked as it is applied); nothing
    /// when none has it.
    pub fn restore_mount(
        &self,
        store: &Store,
        key: &str,
        dir: &Path,
        reporter: &dyn Reporter,
    ) -> Result<(), ExecError> {
        let Some((layer, index)) = self.mounts.get(key) else {
            return Ok(());
        };
        let blob = layer.descriptor();
        self.ensure_blob_to_apply(store, &blob, "a cache mount", reporter)?;
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Delete,
            compression: Compression::from_media_type(&layer.media_type),
        };
        let file = std::io::BufReader::new(store.open_blob(&layer.digest)?);
        let applied = apply_layer(file, dir, &opts).map_err(|source| ExecError::ApplyLayer {
            digest: layer.digest,
            source,
        })?;
        let from = self
            .locations
            .get(*index)
            .map(|l| l.to_string())
            .unwrap_or_default();
        if applied.digest != layer.digest || applied.diff_id != layer.diff_id {
            return Err(ExecError::RemoteCache {
                cache: from,
                reason: format!(
                    "cache mount layer {} is not what its record says",
                    layer.digest
                ),
            });
        }
        reporter.event(BuildEvent::Note {
            message: format!("cache mount restored from {from}"),
        });
        Ok(())
    }

    /// Layer `digest` was applied and has `diff_id`: the imported records that say
    /// so become the store's own.
    pub fn applied(
        &self,
        store: &Store,
        digest: &Digest,
        diff_id: Digest,
    ) -> Result<(), ExecError> {
        if self.blobs.contains_key(digest) {
            self.keep_records(store, digest, Some(diff_id))?;
        }
        Ok(())
    }

    /// Checks that the fetched layer `blob` has the diff ID its records give it (an
    /// image's config lists it, and a blob the image needs may never be applied here);
    /// a wrong one is removed and fails the build. The diff ID, if a record names it.
    fn check_diff_id(
        &self,
        store: &Store,
        blob: &LayerDescriptor,
        location: &CacheLocation,
    ) -> Result<Option<Digest>, ExecError> {
        let expected = self.records.values().find_map(|(r, _)| {
            r.layer
                .as_ref()
                .filter(|l| l.digest == blob.digest)
                .map(|l| l.diff_id)
        });
        let Some(expected) = expected else {
            return Ok(None);
        };
        let file = store.open_blob(&blob.digest)?;
        let compression = Compression::from_media_type(&blob.media_type);
        let actual = diff_id_of(std::io::BufReader::new(file), compression);
        if actual.as_ref().ok() == Some(&expected) {
            return Ok(Some(expected));
        }
        let _ = std::fs::remove_file(store.blob_path(&blob.digest));
        Err(ExecError::RemoteCache {
            cache: location.to_string(),
            reason: match actual {
                Ok(actual) => format!(
                    "layer {} has diff ID {actual}, its records say {expected}",
                    blob.digest
                ),
                Err(e) => format!("layer {} cannot be read: {e}", blob.digest),
            },
        })
    }

    /// Writes the imported records whose layer is `digest` (now in the store) with the
    /// verified `diff_id` to the store's records.
    fn keep_records(
        &self,
        store: &Store,
        digest: &Digest,
        diff_id: Option<Digest>,
    ) -> Result<(), ExecError> {
        let Some(diff_id) = diff_id else {
            return Ok(());
        };
        let records = Records::new(store);
        let naming = self.records.values().filter(|(r, _)| {
            r.layer
                .as_ref()
                .is_some_and(|l| l.digest == *digest && l.diff_id == diff_id)
        });
        for (portable, _) in naming {
            let mut record = Record::new(portable.key, portable.layer.clone());
            record.created = portable.created.clone();
            records.put(&record)?;
        }
        Ok(())
    }

    /// Copies blob `desc` of the cache at `location` into the store (checked).
    fn fetch(
        &self,
        store: &Store,
        location: &CacheLocation,
        desc: &Descriptor,
    ) -> Result<(), String> {
        match location {
            CacheLocation::Registry(reference) => fetch_blob(&self.client, reference, desc, store)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            CacheLocation::Local(dir) => {
                copy_layout_blob(store, Path::new(dir), desc).map_err(|e| e.to_string())
            }
        }
    }
}

/// The description an image config carries under [`INLINE_CONFIG_KEY`], as bytes.
fn inline_description(config: &[u8]) -> Result<Vec<u8>, String> {
    let value: serde_json::Value = serde_json::from_slice(config).map_err(|e| e.to_string())?;
    let description = value.get(INLINE_CONFIG_KEY).ok_or_else(|| {
        "the image carries no rbuild cache (build it with --cache-to type=inline)".to_owned()
    })?;
    serde_json::to_vec(description).map_err(|e| e.to_string())
}

fn note(reporter: &dyn Reporter, location: &CacheLocation, message: &str) {
    reporter.event(BuildEvent::Note {
        message: format!("warning: cache {location}: {message}"),
    });
}
