//! Pushing a stored image to a registry: every blob the image reaches is checked with
//! `HEAD` first and skipped when the registry has it, mounted from another repository
//! of the same registry when the store knows one that has it (a lazy blob's own
//! repository: it is never downloaded for that), else uploaded (from the
//! store's file, a few at once); then the manifests, with their exact bytes and media
//! types: an index's children by digest, the top one under the tag.

use std::collections::BTreeSet;

use super::client::Client;
use super::error::RegistryError;
use super::lazy::{fetch_lazy, fetch_lazy_blobs};
use super::parts::{image_parts, Parts};
use super::reference::Reference;
use super::repo::Repo;
use super::sources;
use super::transfer::{
    for_each_concurrently, metered, BlobState, Progress, TransferEvent, DEFAULT_CONCURRENCY,
};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::store::{LazyBlob, Store};

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The digest of the pushed manifest (or index).
    pub digest: Digest,
    /// Its size and media type.
    pub size: u64,
    pub media_type: String,
    /// Blobs uploaded (count, bytes), mounted, and already present.
    pub uploaded: (usize, u64),
    pub mounted: usize,
    pub existing: usize,
}

/// The parts of `top` for a push to `dest`: every blob must be in the store, except
/// those of `present` (blobs the destination is known to have, which the push skips
/// after its `HEAD`) and lazy ones, fetched first unless they are in `dest`'s registry
/// (then mounted or found there).
fn collect(
    client: &Client,
    store: &Store,
    top: &Descriptor,
    dest: &Reference,
    present: &BTreeSet<Digest>,
    progress: &Progress<'_>,
) -> Result<Parts, RegistryError> {
    let parts = image_parts(store, top)?;
    let elsewhere = |lazy: &LazyBlob| lazy.registry != dest.registry;
    fetch_lazy_blobs(client, store, top, &parts.blobs, elsewhere, progress)?;
    for blob in &parts.blobs {
        if !store.has_blob_or_lazy(&blob.digest) && !present.contains(&blob.digest) {
            return Err(RegistryError::Unsupported {
                reference: top.digest.to_string(),
                reason: format!(
                    "blob {} is missing from the store (run `rbuild store check`)",
                    blob.digest
                ),
            });
        }
    }
    Ok(parts)
}

/// Pushes the stored image `image` (a manifest or index descriptor) to `dest`.
pub fn push(
    client: &Client,
    store: &Store,
    image: &Descriptor,
    dest: &Reference,
    progress: &Progress<'_>,
) -> Result<Pushed, RegistryError> {
    push_onto(client, store, image, dest, &BTreeSet::new(), progress)
}

/// [`push`] of a manifest some of whose blobs are not in the store but known to be in
/// `dest`'s repository (`present`: a build cache whose layers stayed there).
pub fn push_onto(
    client: &Client,
    store: &Store,
    image: &Descriptor,
    dest: &Reference,
    present: &BTreeSet<Digest>,
    progress: &Progress<'_>,
) -> Result<Pushed, RegistryError> {
    let parts = collect(client, store, image, dest, present, progress)?;
    // Repositories of the destination registry that have some of these blobs.
    let mut mount_from: Vec<String> = parts
        .blobs
        .iter()
        .flat_map(|b| {
            let lazy = store.lazy_blob(&b.digest).map(|l| l.repository);
            let known = sources::repositories(store, &b.digest, &dest.registry);
            known.into_iter().chain(lazy)
        })
        .filter(|r| *r != dest.repository)
        .collect();
    mount_from.sort();
    mount_from.dedup();
    let repo = Repo::new(client, dest, true, &mount_from);
    let tally = std::sync::Mutex::new(Pushed {
        digest: image.digest,
        size: image.size,
        media_type: image.media_type.clone(),
        uploaded: (0, 0),
        mounted: 0,
        existing: 0,
    });
    for_each_concurrently(
        &parts.blobs,
        DEFAULT_CONCURRENCY,
        |blob| -> Result<(), RegistryError> {
            let state = push_blob(&repo, store, blob, dest, progress)?;
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            match state {
                BlobState::Exists => t.existing += 1,
                BlobState::Mounted => t.mounted += 1,
                _ => {
                    t.uploaded.0 += 1;
                    t.uploaded.1 = t.uploaded.1.saturating_add(blob.size);
                }
            }
            drop(t);
            sources::record(store, &blob.digest, &dest.registry, &dest.repository);
            Ok(())
        },
    )?;
    let mut pushed = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    let last = parts.manifests.len().saturating_sub(1);
    for (i, (desc, bytes)) in parts.manifests.iter().enumerate() {
        let reference = if i == last {
            dest.manifest_ref()
        } else {
            desc.digest.to_string()
        };
        let digest = repo.put_manifest(&reference, bytes, &desc.media_type)?;
        progress(TransferEvent::Manifest {
            reference: &reference,
            digest: &digest,
        });
        if i == last {
            pushed.digest = digest;
            pushed.size = bytes.len() as u64;
            pushed.media_type = desc.media_type.clone();
        }
    }
    Ok(pushed)
}

fn push_blob(
    repo: &Repo<'_>,
    store: &Store,
    blob: &Descriptor,
    dest: &Reference,
    progress: &Progress<'_>,
) -> Result<BlobState, RegistryError> {
    let event = |state| TransferEvent::Blob {
        digest: &blob.digest,
        size: blob.size,
        state,
    };
    if repo.has_blob(&blob.digest)? {
        progress(event(BlobState::Exists));
        return Ok(BlobState::Exists);
    }
    if let Some(lazy) = store.lazy_blob(&blob.digest) {
        // In this registry (else `collect` fetched it): mounted, or fetched after all.
        if repo.mount_blob(&blob.digest, &lazy.repository)? {
            progress(event(BlobState::Mounted));
            return Ok(BlobState::Mounted);
        }
        fetch_lazy(repo.client(), store, &lazy, &dest.to_string())?;
    }
    let from = sources::repositories(store, &blob.digest, &dest.registry)
        .into_iter()
        .find(|r| *r != dest.repository);
    progress(event(BlobState::Started));
    let mounted = metered(&blob.digest, blob.size, progress, |meter| {
        repo.upload_blob(blob, store, from.as_deref(), meter)
    })?;
    let state = if mounted {
        BlobState::Mounted
    } else {
        BlobState::Done
    };
    progress(event(state));
    Ok(state)
}
