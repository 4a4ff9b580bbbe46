//! `FROM <image>` resolved in the local store (a registry pull comes with the registry
//! client): the image's manifest digest and configuration.

use crate::image::{read_config, read_manifest};
use crate::plan::{BaseImage, BaseResolver, Platform};
use crate::store::Store;

/// Resolves base images by their local name.
pub struct StoreResolver<'a> {
    pub store: &'a Store,
}

impl BaseResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<BaseImage, String> {
        let descriptor = self
            .store
            .resolve(reference)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("image {reference:?} is not in the local store (pulling from a registry is not available yet); build it first or tag an image with that name"))?;
        let manifest = read_manifest(self.store, &descriptor.digest).map_err(|e| e.to_string())?;
        let config = read_config(self.store, &manifest.config.digest).map_err(|e| e.to_string())?;
        Ok(BaseImage {
            reference: reference.to_owned(),
            digest: descriptor.digest,
            config,
        })
    }
}
