//! Pulling an image into the store: resolve the reference to a manifest (through an
//! index / manifest list for the wanted platform), download the config and the layers
//! that are not in the store yet, a few at once, each verified while it streams, then
//! write the manifest (and index) and name the image. Nothing is named before every
//! blob it reaches is in the store, so an interrupted pull leaves only blobs that the
//! next pull reuses.

use super::client::Client;
use super::error::RegistryError;
use super::reference::Reference;
use super::repo::{FetchedManifest, Repo};
use super::sources;
use super::transfer::{
    for_each_concurrently, metered, BlobState, Progress, TransferEvent, DEFAULT_CONCURRENCY,
};
use crate::digest::Digest;
use crate::image::{media_types, Descriptor, Index, Manifest};
use crate::plan::Platform;
use crate::store::{ImageName, Store};

/// What a pull brought.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The platform manifest, as stored (the digest cache keys use).
    pub descriptor: Descriptor,
    /// The index it was chosen from, if the reference named one.
    pub index: Option<Digest>,
    /// The local name given (`None` for a digest reference).
    pub name: Option<ImageName>,
    /// Blobs downloaded, and their bytes.
    pub downloaded: (usize, u64),
}

/// Pulls `reference` for `platform` into `store` and names it.
pub fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
    progress: &Progress<'_>,
) -> Result<Pulled, RegistryError> {
    let pulled = pull_unnamed(client, store, reference, platform, progress)?;
    name_pulled(store, &pulled)?;
    Ok(pulled)
}

/// Pulls `reference` for `platform` into `store` without naming it yet: `name` is the
/// name [`name_pulled`] gives it (`rbuild pull` unpacks the layers first, so that an
/// image whose layers are refused is not named).
pub fn pull_unnamed(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
    progress: &Progress<'_>,
) -> Result<Pulled, RegistryError> {
    let repo = Repo::new(client, reference, false, &[]);
    let text = reference.to_string();
    let (index, manifest) = platform_manifest(&repo, reference, platform, progress)?;
    let parsed = usable_manifest(&manifest, &text)?;
    let downloaded = fetch_blobs(&repo, store, reference, &parsed, progress)?;
    check_config(store, &parsed.config, &text)?;
    let (descriptor, name) = store_manifest(store, reference, &manifest, index.as_ref())?;
    Ok(Pulled {
        descriptor,
        index: index.map(|i| i.digest),
        name,
        downloaded,
    })
}

/// Gives the image [`pull_unnamed`] stored its name (none for a digest reference).
pub fn name_pulled(store: &Store, pulled: &Pulled) -> Result<(), RegistryError> {
    if let Some(name) = &pulled.name {
        store.set_name(name, &pulled.descriptor)?;
    }
    Ok(())
}

/// The manifest `reference` names for `platform`, and the index it was chosen from
/// when the reference names one.
fn platform_manifest(
    repo: &Repo<'_>,
    reference: &Reference,
    platform: &Platform,
    progress: &Progress<'_>,
) -> Result<(Option<FetchedManifest>, FetchedManifest), RegistryError> {
    let top = repo.get_manifest(&reference.manifest_ref())?;
    let text = reference.to_string();
    progress(TransferEvent::Manifest {
        reference: &text,
        digest: &top.digest,
    });
    if !media_types::is_index(&top.media_type) {
        return Ok((None, top));
    }
    let parsed: Index = parse(&top, &text)?;
    let chosen = parsed
        .select(&platform.os, &platform.architecture, &platform.variant)
        .ok_or_else(|| RegistryError::NoPlatform {
            reference: text.clone(),
            wanted: platform_text(platform),
            available: parsed.platforms().join(", "),
        })?;
    let manifest = repo.get_manifest(&chosen.digest.to_string())?;
    if manifest.bytes.len() as u64 != chosen.size {
        return Err(RegistryError::SizeMismatch {
            registry: reference.registry.clone(),
            what: format!("manifest {}", chosen.digest),
            expected: chosen.size,
            actual: manifest.bytes.len() as u64,
        });
    }
    Ok((Some(top), manifest))
}

/// The image manifest, refused unless rbuild can use it: OCI or Docker schema 2, every
/// layer of a compression it reads.
fn usable_manifest(manifest: &FetchedManifest, reference: &str) -> Result<Manifest, RegistryError> {
    let unsupported = |reason: String| RegistryError::Unsupported {
        reference: reference.to_owned(),
        reason,
    };
    if !media_types::is_manifest(&manifest.media_type) {
        return Err(unsupported(format!(
            "{:?} is not an image manifest rbuild can use (OCI or Docker schema 2)",
            manifest.media_type
        )));
    }
    let parsed: Manifest = parse(manifest, reference)?;
    for layer in &parsed.layers {
        if crate::layers::Compression::from_media_type(&layer.media_type).is_none() {
            return Err(unsupported(format!(
                "layer {} has media type {:?}",
                layer.digest, layer.media_type
            )));
        }
    }
    Ok(parsed)
}

/// Downloads the config and the layers not in the store yet, a few at once; returns
/// the blobs downloaded and their bytes.
fn fetch_blobs(
    repo: &Repo<'_>,
    store: &Store,
    reference: &Reference,
    manifest: &Manifest,
    progress: &Progress<'_>,
) -> Result<(usize, u64), RegistryError> {
    let blobs: Vec<&Descriptor> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .collect();
    let counted = std::sync::Mutex::new((0usize, 0u64));
    for_each_concurrently(
        &blobs,
        DEFAULT_CONCURRENCY,
        |desc| -> Result<(), RegistryError> {
            sources::record(
                store,
                &desc.digest,
                &reference.registry,
                &reference.repository,
            );
            if store.has_blob(&desc.digest) {
                progress(blob_event(desc, BlobState::Exists));
                return Ok(());
            }
            progress(blob_event(desc, BlobState::Started));
            let fetched = metered(&desc.digest, desc.size, progress, |meter| {
                repo.fetch_blob(desc, store, meter)
            });
            if fetched? {
                let mut c = counted.lock().unwrap_or_else(|p| p.into_inner());
                c.0 += 1;
                c.1 = c.1.saturating_add(desc.size);
            }
            progress(blob_event(desc, BlobState::Done));
            Ok(())
        },
    )?;
    Ok(counted.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// Stores the manifest (and index) after the blobs they reach, then names the image
/// (not for a digest reference).
/// Stores the manifest (and index) blobs; returns the manifest's descriptor and the
/// name it is to get.
fn store_manifest(
    store: &Store,
    reference: &Reference,
    manifest: &FetchedManifest,
    index: Option<&FetchedManifest>,
) -> Result<(Descriptor, Option<ImageName>), RegistryError> {
    store.put_bytes(&manifest.bytes)?;
    if let Some(index) = index {
        store.put_bytes(&index.bytes)?;
    }
    let descriptor = Descriptor::new(
        manifest.media_type.clone(),
        manifest.digest,
        manifest.bytes.len() as u64,
    );
    if reference.digest.is_some() {
        return Ok((descriptor, None));
    }
    let name = ImageName::parse(&reference.familiar())?;
    Ok((descriptor, Some(name)))
}

/// Refuses, before it is named, an image whose config rbuild cannot use: not an image
/// config (an artifact), or one that does not parse. The error names the field.
fn check_config(store: &Store, config: &Descriptor, reference: &str) -> Result<(), RegistryError> {
    let unsupported = |reason: String| RegistryError::Unsupported {
        reference: reference.to_owned(),
        reason,
    };
    if !matches!(
        config.media_type.as_str(),
        media_types::OCI_CONFIG | media_types::DOCKER_CONFIG
    ) {
        return Err(unsupported(format!(
            "its config has media type {:?}: it is not a container image",
            config.media_type
        )));
    }
    let bytes = store.read_blob(&config.digest)?;
    crate::image::ImageConfig::parse(&bytes)
        .map(drop)
        .map_err(|e| {
            unsupported(format!(
                "its image config {} is not valid: {e}",
                config.digest
            ))
        })
}

fn blob_event(desc: &Descriptor, state: BlobState) -> TransferEvent<'_> {
    TransferEvent::Blob {
        digest: &desc.digest,
        size: desc.size,
        state,
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    fetched: &FetchedManifest,
    reference: &str,
) -> Result<T, RegistryError> {
    crate::image::decode_json(&fetched.bytes).map_err(|e| RegistryError::Unsupported {
        reference: reference.to_owned(),
        reason: format!(
            "its {} {} is malformed: {e}",
            fetched.media_type, fetched.digest
        ),
    })
}

/// `os/arch[/variant]`.
pub fn platform_text(platform: &Platform) -> String {
    let mut text = format!("{}/{}", platform.os, platform.architecture);
    if !platform.variant.is_empty() {
        text.push('/');
        text.push_str(&platform.variant);
    }
    text
}
