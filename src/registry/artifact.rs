//! Single calls for callers that read an artifact other than an image (the build
//! cache of `--cache-from`): one manifest by reference, one blob into the store. Auth,
//! TLS, retries and the checks of digests and sizes are those of every pull.

use super::client::Client;
use super::error::RegistryError;
use super::reference::Reference;
use super::repo::{FetchedManifest, Repo};
use super::sources;
use super::transfer::Meter;
use crate::image::Descriptor;
use crate::store::Store;

/// The manifest `reference` names (its tag or digest), bytes as served, at most 4 MiB.
pub fn fetch_manifest(
    client: &Client,
    reference: &Reference,
) -> Result<FetchedManifest, RegistryError> {
    Repo::new(client, reference, false, &[]).get_manifest(&reference.manifest_ref())
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
    sources::record(
        store,
        &desc.digest,
        &reference.registry,
        &reference.repository,
    );
    Ok(meter.get())
}
