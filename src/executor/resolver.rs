//! `FROM <image>`: the local store first, a registry when the image is missing (or
//! always, with `--pull=always`), as `docker build --pull` does. The resolved manifest
//! digest is what cache keys use, so a base that moved in the registry misses.

use super::events::{BuildEvent, Reporter};
use crate::image::{decode_json, media_types, Descriptor, Index, JsonError};
use crate::plan::{BaseError, BaseImage, BaseResolver, Platform};
use crate::publish::{self, read_config, read_manifest};
use crate::registry::{
    self, BlobState, Client, Reference, ReferenceError, RegistryError, TransferEvent,
};
use crate::store::{self, Store};

/// Why a `FROM` image cannot be resolved; the plan reports it after the reference.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The pulled or stored manifest or config cannot be read.
    #[error(transparent)]
    Image(#[from] publish::Error),
    #[error("the stored index of {reference} is malformed: {source}")]
    MalformedIndex {
        reference: String,
        #[source]
        source: JsonError,
    },
    #[error("image {reference:?} is not in the local store and --pull=never forbids pulling it")]
    NotLocal { reference: String },
    /// The store has the name for another platform, and a pull could not bring this one.
    #[error(
        "the local image {reference:?} is {has}, not {wanted}{}",
        match pull {
            None => " (--pull=never forbids pulling it)".to_owned(),
            Some(e) => format!(", and pulling {wanted} failed: {e}"),
        }
    )]
    OtherPlatform {
        reference: String,
        has: String,
        wanted: String,
        pull: Option<Box<RegistryError>>,
    },
}

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
    fn local(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<Descriptor>, ResolveError> {
        let mut found = self.store.resolve(reference)?;
        if found.is_none() {
            if let Ok(parsed) = Reference::parse(reference) {
                if parsed.familiar() != reference {
                    found = self.store.resolve(&parsed.familiar())?;
                }
            }
        }
        let Some(descriptor) = found else {
            return Ok(None);
        };
        if !media_types::is_index(&descriptor.media_type) {
            return Ok(Some(descriptor));
        }
        let bytes = self.store.read_blob(&descriptor.digest)?;
        let index: Index = decode_json(&bytes).map_err(|source| ResolveError::MalformedIndex {
            reference: reference.to_owned(),
            source,
        })?;
        match index.select(&platform.os, &platform.architecture, &platform.variant) {
            Some(d) if self.store.has_blob(&d.digest) => Ok(Some(d.clone())),
            _ => Ok(None),
        }
    }

    fn pull(&self, reference: &str, platform: &Platform) -> Result<Descriptor, ResolveError> {
        let parsed = Reference::parse(reference)?;
        let started = std::time::Instant::now();
        self.reporter.event(BuildEvent::PullStarted {
            reference: parsed.to_string(),
        });
        let progress = |event: TransferEvent<'_>| {
            if let Some(event) = blob_progress(event) {
                self.reporter.event(event);
            }
        };
        let pulled = registry::pull(self.client, self.store, &parsed, platform, &progress)?;
        let (blobs, bytes) = pulled.downloaded;
        self.reporter.event(BuildEvent::PullFinished {
            reference: parsed.to_string(),
            digest: pulled.descriptor.digest.to_string(),
            blobs,
            bytes,
            elapsed: started.elapsed(),
        });
        Ok(pulled.descriptor)
    }

    /// The base image `reference` names, from the store or a registry per the policy.
    /// A stored image of another platform (pulled earlier for another `--platform`)
    /// is pulled again for this one, never used in its place.
    pub(super) fn base(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<BaseImage, ResolveError> {
        let local = match self.policy {
            PullPolicy::Always => None,
            PullPolicy::Missing | PullPolicy::Never => self.local(reference, platform)?,
        };
        let Some(descriptor) = local else {
            if self.policy == PullPolicy::Never {
                return Err(ResolveError::NotLocal {
                    reference: reference.to_owned(),
                });
            }
            let pulled = self.pull(reference, platform)?;
            return self.read_base(reference, pulled);
        };
        let stored = self.read_base(reference, descriptor)?;
        let c = &stored.config;
        let has = Platform::of_image(&c.os, &c.architecture, &c.variant);
        if platform.accepts(&has) {
            return Ok(stored);
        }
        let other = |source: Option<Box<RegistryError>>| ResolveError::OtherPlatform {
            reference: reference.to_owned(),
            has: has.to_string(),
            wanted: platform.to_string(),
            pull: source,
        };
        if self.policy == PullPolicy::Never {
            return Err(other(None));
        }
        match self.pull(reference, platform) {
            Ok(pulled) => self.read_base(reference, pulled),
            Err(ResolveError::Registry(e)) => Err(other(Some(Box::new(e)))),
            Err(e) => Err(e),
        }
    }

    /// The stored image `descriptor` as a base.
    fn read_base(
        &self,
        reference: &str,
        descriptor: Descriptor,
    ) -> Result<BaseImage, ResolveError> {
        let manifest = read_manifest(self.store, &descriptor.digest)?;
        let config = read_config(self.store, &manifest.config.digest)?;
        Ok(BaseImage {
            reference: reference.to_owned(),
            digest: descriptor.digest,
            config,
        })
    }
}

/// The build event of a pull's transfer event: the bytes of a blob that moves (none
/// for a blob the store has).
fn blob_progress(event: TransferEvent<'_>) -> Option<BuildEvent> {
    let (digest, done, total) = match event {
        TransferEvent::Blob {
            digest,
            size,
            state: BlobState::Started,
        } => (digest, 0, size),
        TransferEvent::Blob {
            digest,
            size,
            state: BlobState::Done,
        } => (digest, size, size),
        TransferEvent::Bytes {
            digest,
            done,
            total,
        } => (digest, done, total),
        TransferEvent::Blob { .. } | TransferEvent::Manifest { .. } => return None,
    };
    Some(BuildEvent::BlobProgress {
        digest: digest.to_string(),
        done,
        total,
    })
}

impl BaseResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<BaseImage, BaseError> {
        self.base(reference, platform).map_err(BaseError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::NoReporter;
    use crate::registry::RegistryOptions;

    #[test]
    fn errors_keep_their_type_and_wording() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let client = Client::new(RegistryOptions::default());
        let resolver = StoreResolver {
            store: &store,
            client: &client,
            policy: PullPolicy::Never,
            reporter: &NoReporter,
        };
        let err = resolver.base("app:1", &Platform::host()).unwrap_err();
        assert!(matches!(err, ResolveError::NotLocal { .. }), "{err:?}");
        let shown = resolver
            .resolve("app:1", &Platform::host())
            .unwrap_err()
            .to_string();
        assert_eq!(
            shown,
            "image \"app:1\" is not in the local store and --pull=never forbids pulling it"
        );
        let err = resolver.base("UPPER:1", &Platform::host()).unwrap_err();
        assert!(matches!(err, ResolveError::Store(_)), "{err:?}");
    }
}
