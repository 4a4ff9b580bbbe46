//! Single calls for callers that read an artifact other than an image (the build
//! cache of `--cache-from`): one manifest by reference, one blob into the store. Auth,
//! TLS, retries and the checks of digests and sizes are those of every pull.

use super::client::Client;
use super::error::RegistryError;
use super::reference::Reference;
use super::repo::{FetchedManifest, Repo};
use super::sources;
use super::transfer::{for_each_concurrently, Meter, DEFAULT_CONCURRENCY};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::store::Store;

/// The manifest `reference` names (its tag or digest), bytes as served, at most 4 MiB.
pub fn fetch_manifest(
    client: &Client,
    reference: &Reference,
) -> Result<FetchedManifest, RegistryError> {
    Repo::new(client, reference, false, &[]).get_manifest(&reference.manifest_ref())
}

/// The blobs of `blobs` that `reference`'s repository does not have (`HEAD`, a few at
/// once, nothing downloaded).
pub fn missing_blobs(
    client: &Client,
    reference: &Reference,
    blobs: &[Digest],
) -> Result<Vec<Digest>, RegistryError> {
    let repo = Repo::new(client, reference, false, &[]);
    let missing = std::sync::Mutex::new(Vec::new());
    for_each_concurrently(blobs, DEFAULT_CONCURRENCY, |digest| {
        if !repo.has_blob(digest)? {
            missing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(*digest);
        }
        Ok::<(), RegistryError>(())
    })?;
    let mut missing = missing.into_inner().unwrap_or_else(|p| p.into_inner());
    missing.sort();
    Ok(missing)
}

/// Downloads blob `desc` of `reference`'s repository into `store` unless it is there
/// (digest and size checked while it streams); the bytes received. The store then
/// knows the repository has it, so a push to the same registry mounts it.
pub fn fetch_blob(
    client: &Client,
    reference: &Reference,
    desc: &Descriptor,
    store: &Store,
) -> Result<u64, RegistryError> {
    let meter = Meter::default();
    Repo::new(client, reference, false, &[]).fetch_blob(desc, store, &meter)?;
    // Whatever fetched it, a lazy record of this blob is now stale.
    store.remove_lazy(&desc.digest);
    sources::record(
        store,
        &desc.digest,
        &reference.registry,
        &reference.repository,
    );
    Ok(meter.get())
}
