//! Lazy blobs ([`crate::store::LazyBlob`]) fetched on first use: a blob an image in
//! the store names but a registry keeps (a layer of a `--cache-from` hit) is downloaded
//! with the auth, TLS, retries and digest and size checks of every pull, its record
//! then removed. Readers of blob contents (exports, `save`, `--load`, a push to another
//! registry, a snapshot of a base layer) call these first; a push to the registry that
//! holds it mounts it instead (`upload.rs`).

use super::artifact::fetch_blob;
use super::client::Client;
use super::error::RegistryError;
use super::parts::image_parts;
use super::reference::Reference;
use super::transfer::DEFAULT_CONCURRENCY;
use super::transfer::{for_each_concurrently, BlobState, Progress, TransferEvent};
use crate::image::Descriptor;
use crate::store::{LazyBlob, Store};

/// Downloads lazy blob `lazy` into the store (checked) for image `image` (named in an
/// error with the layer and the remote); the bytes received.
pub fn fetch_lazy(
    client: &Client,
    store: &Store,
    lazy: &LazyBlob,
    image: &str,
) -> Result<u64, RegistryError> {
    let reference = Reference {
        registry: lazy.registry.clone(),
        repository: lazy.repository.clone(),
        tag: None,
        digest: None,
    };
    let desc = Descriptor::new(lazy.media_type.clone(), lazy.digest, lazy.size);
    let bytes =
        fetch_blob(client, &reference, &desc, store).map_err(|e| RegistryError::LazyFetch {
            image: image.to_owned(),
            layer: lazy.digest,
            remote: lazy.remote(),
            reason: e.to_string(),
        })?;
    store.remove_lazy(&lazy.digest);
    Ok(bytes)
}

/// Fetches the lazy ones among `blobs` of image `top` that `wanted` accepts, a few at
/// once, reporting each to `progress`.
pub(super) fn fetch_lazy_blobs(
    client: &Client,
    store: &Store,
    top: &Descriptor,
    blobs: &[Descriptor],
    wanted: impl Fn(&LazyBlob) -> bool + Sync,
    progress: &Progress<'_>,
) -> Result<(), RegistryError> {
    let lazy: Vec<LazyBlob> = blobs
        .iter()
        .filter_map(|b| store.lazy_blob(&b.digest))
        .filter(|l| wanted(l))
        .collect();
    let image = top.digest.to_string();
    for_each_concurrently(&lazy, DEFAULT_CONCURRENCY, |blob| {
        let event = |state| TransferEvent::Blob {
            digest: &blob.digest,
            size: blob.size,
            state,
        };
        progress(event(BlobState::Started));
        fetch_lazy(client, store, blob, &image)?;
        progress(event(BlobState::Done));
        Ok(())
    })
}

/// Makes stored image `image` (a manifest or index) whole: every lazy blob it reaches
/// is fetched. Nothing moves for an image without lazy blobs.
pub fn fetch_image_blobs(
    client: &Client,
    store: &Store,
    image: &Descriptor,
    progress: &Progress<'_>,
) -> Result<(), RegistryError> {
    let parts = image_parts(store, image)?;
    fetch_lazy_blobs(client, store, image, &parts.blobs, |_| true, progress)
}
