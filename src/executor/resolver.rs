//! `FROM <image>`: the local store first, a registry when the image is missing (or
//! always, with `--pull=always`), as `docker build --pull` does. The resolved manifest
//! digest is what cache keys use, so a base that moved in the registry misses.

use super::events::{BuildEvent, Reporter};
use crate::image::{media_types, Descriptor, Index};
use crate::plan::{BaseImage, BaseResolver, Platform};
use crate::publish::{read_config, read_manifest};
use crate::push::{self, Client, Reference};
use crate::store::Store;

/// When `FROM` images are pulled (`--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Always ask the registry (a moved tag is pulled; same digest costs a manifest GET).
    Always,
    /// Only when the store does not have the image.
    #[default]
    Missing,
    /// Never: the store only.
    Never,
}

/// Resolves base images in the store, pulling through `client` per `policy`.
pub struct StoreResolver<'a> {
    pub store: &'a Store,
    pub client: &'a Client,
    pub policy: PullPolicy,
    pub reporter: &'a dyn Reporter,
}

impl StoreResolver<'_> {
    /// The stored image `reference` names (as written, or in Docker's familiar form),
    /// a multi-platform index narrowed to `platform`.
    fn local(&self, reference: &str, platform: &Platform) -> Result<Option<Descriptor>, String> {
        let mut found = self.store.resolve(reference).map_err(|e| e.to_string())?;
        if found.is_none() {
            if let Ok(parsed) = Reference::parse(reference) {
                if parsed.familiar() != reference {
                    found = self
                        .store
                        .resolve(&parsed.familiar())
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let Some(descriptor) = found else {
            return Ok(None);
        };
        if !media_types::is_index(&descriptor.media_type) {
            return Ok(Some(descriptor));
        }
        let bytes = self
            .store
            .read_blob(&descriptor.digest)
            .map_err(|e| e.to_string())?;
        let index: Index = crate::image::decode_json(&bytes)
            .map_err(|e| format!("the stored index of {reference} is malformed: {e}"))?;
        match index.select(&platform.os, &platform.architecture, &platform.variant) {
            Some(d) if self.store.has_blob(&d.digest) => Ok(Some(d.clone())),
            _ => Ok(None),
        }
    }

    fn pull(&self, reference: &str, platform: &Platform) -> Result<Descriptor, String> {
        let parsed = Reference::parse(reference).map_err(|e| e.to_string())?;
        self.reporter.event(BuildEvent::Note {
            message: format!("pulling {parsed}"),
        });
        let pulled = push::pull(self.client, self.store, &parsed, platform, &|_| {})
            .map_err(|e| e.to_string())?;
        let (count, bytes) = pulled.downloaded;
        self.reporter.event(BuildEvent::Note {
            message: format!(
                "pulled {parsed}: {} ({count} blobs, {bytes} bytes downloaded)",
                pulled.descriptor.digest
            ),
        });
        Ok(pulled.descriptor)
    }
}

impl BaseResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<BaseImage, String> {
        let descriptor = match self.policy {
            PullPolicy::Always => self.pull(reference, platform)?,
            PullPolicy::Missing => match self.local(reference, platform)? {
                Some(d) => d,
                None => self.pull(reference, platform)?,
            },
            PullPolicy::Never => self.local(reference, platform)?.ok_or_else(|| {
                format!("image {reference:?} is not in the local store and --pull=never forbids pulling it")
            })?,
        };
        let manifest = read_manifest(self.store, &descriptor.digest).map_err(|e| e.to_string())?;
        let config = read_config(self.store, &manifest.config.digest).map_err(|e| e.to_string())?;
        Ok(BaseImage {
            reference: reference.to_owned(),
            digest: descriptor.digest,
            config,
        })
    }
}
