//! `--cache-to`: after the image, each cache export: the records its mode selects
//! (`min`: the target stage's chain, the steps whose layers are in the image; `max`:
//! every stage built), their blobs made local (fetched from an imported cache when a
//! hit never needed them), the description and its artifact manifest put in the store,
//! then pushed (blobs the registry has are skipped or mounted, as in every push) or
//! written as an OCI layout directory. `type=inline` is [`with_inline_cache`]: the
//! target's records in the image's own config.

use std::collections::BTreeSet;
use std::path::Path;

use super::super::compress_layers::compress_records;
use super::super::env::{BuildEnv, StageOutput};
use super::super::error::{BuildError, ExecError};
use super::super::events::BuildEvent;
use super::super::{BuildOptions, CacheExport, CacheLocation, CacheMode};
use super::mounts::mount_layers;
use crate::cache::{artifact_manifest, CacheDescription, PortableRecord, INLINE_CONFIG_KEY};
use crate::digest::Digest;
use crate::image::{canonical_json, media_types, Descriptor, ImageConfig, LayerDescriptor};
use crate::plan::Plan;
use crate::publish::export::{export_oci_dir, ArchiveImage};
use crate::registry::{missing_blobs, push_onto, Client};
use crate::store::Store;

/// Writes every `--cache-to` of the build.
pub fn export_caches(
    env: &BuildEnv<'_>,
    plan: &Plan,
    outputs: &[Option<StageOutput>],
) -> Result<(), BuildError> {
    for export in &env.options.cache_to {
        let what = format!("cache to {}", export.location);
        env.reporter
            .event(BuildEvent::ExportStarted { what: what.clone() });
        let started = std::time::Instant::now();
        let failed = |reason| ExecError::RemoteCache {
            cache: export.location.to_string(),
            reason,
        };
        // A builder stage's layers are uncompressed tars: the cache gets them compressed.
        let mut records = selected(export, plan, outputs);
        compress_records(env, &mut records)?;
        let mut description = CacheDescription::new(records);
        if let Some(cap) = export.mounts {
            description = description.with_mounts(mount_layers(env, cap)?);
        }
        let client = client(env.options);
        let present = present(env, &client, &description, &export.location).map_err(failed)?;
        let manifest = put_artifact(env, &description, &present)?;
        write(env, &client, &manifest, &export.location, &present).map_err(failed)?;
        env.reporter.event(BuildEvent::ExportFinished {
            what,
            elapsed: started.elapsed(),
        });
    }
    Ok(())
}

/// The target's config, with the description of its steps under
/// [`INLINE_CONFIG_KEY`] when `--cache-to type=inline` asks for it.
pub fn with_inline_cache(
    options: &BuildOptions,
    target: &StageOutput,
) -> Result<ImageConfig, ExecError> {
    let mut config = target.config.clone();
    if options.cache_inline {
        let description = CacheDescription::new(target.records.iter().cloned());
        let value = serde_json::to_value(description).map_err(|e| ExecError::RemoteCache {
            cache: "inline".to_owned(),
            reason: e.to_string(),
        })?;
        config.extra.insert(INLINE_CONFIG_KEY.to_owned(), value);
    }
    Ok(config)
}

/// The records `export`'s mode selects.
fn selected(
    export: &CacheExport,
    plan: &Plan,
    outputs: &[Option<StageOutput>],
) -> Vec<PortableRecord> {
    match export.mode {
        CacheMode::Min => outputs
            .get(plan.target)
            .and_then(Option::as_ref)
            .map(|o| o.records.clone())
            .unwrap_or_default(),
        CacheMode::Max => outputs
            .iter()
            .flatten()
            .flat_map(|o| o.records.iter().cloned())
            .collect(),
    }
}

fn client(options: &BuildOptions) -> Client {
    let mut registry = options.registry.clone();
    registry.cancel = options.cancel.clone();
    Client::new(registry)
}

/// The layers of `description` that are not in the store but already in the
/// destination registry's repository (imported hits whose blobs stayed there: the
/// usual `--cache-from X --cache-to X` of CI), which the export neither downloads nor
/// uploads.
fn present(
    env: &BuildEnv<'_>,
    client: &Client,
    description: &CacheDescription,
    to: &CacheLocation,
) -> Result<BTreeSet<Digest>, String> {
    let CacheLocation::Registry(reference) = to else {
        return Ok(BTreeSet::new());
    };
    let absent: Vec<Digest> = description
        .layers()
        .iter()
        .map(|l| l.digest)
        .filter(|d| !env.store.has_blob(d))
        .collect();
    if absent.is_empty() {
        return Ok(BTreeSet::new());
    }
    let missing = missing_blobs(client, reference, &absent).map_err(|e| e.to_string())?;
    Ok(absent
        .into_iter()
        .filter(|d| !missing.contains(d))
        .collect())
}

/// The description and its manifest in the store, every layer blob local but those
/// `present` where the cache goes; the manifest's descriptor.
fn put_artifact(
    env: &BuildEnv<'_>,
    description: &CacheDescription,
    present: &BTreeSet<Digest>,
) -> Result<Descriptor, ExecError> {
    let layers = description.layers();
    for layer in layers.iter().filter(|l| !present.contains(&l.digest)) {
        let blob = LayerDescriptor {
            digest: layer.digest,
            size: layer.size,
            media_type: layer.media_type.clone(),
        };
        env.remote.ensure_blob(env.store, &blob, env.reporter)?;
    }
    let encode = |e: serde_json::Error| ExecError::RemoteCache {
        cache: "description".to_owned(),
        reason: e.to_string(),
    };
    let bytes = canonical_json(description).map_err(encode)?;
    let config = env.store.put_bytes(&bytes)?;
    let manifest = canonical_json(&artifact_manifest(config, layers)).map_err(encode)?;
    let (digest, size) = env.store.put_bytes(&manifest)?;
    Ok(Descriptor::new(media_types::OCI_MANIFEST, digest, size))
}

/// Pushes the cache manifest `manifest` or writes it as a layout directory.
fn write(
    env: &BuildEnv<'_>,
    client: &Client,
    manifest: &Descriptor,
    to: &CacheLocation,
    present: &BTreeSet<Digest>,
) -> Result<(), String> {
    match to {
        CacheLocation::Registry(reference) => {
            push_onto(client, env.store, manifest, reference, present, &|_| {})
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        CacheLocation::Local(dir) => write_layout(env.store, manifest, dir),
    }
}

/// Writes the cache as an OCI layout at `dir`: a new or empty directory is written in
/// place; a layout there (the last export) is replaced whole, the new one written
/// beside it first; anything else is refused rather than overwritten.
fn write_layout(store: &Store, manifest: &Descriptor, dir: &Path) -> Result<(), String> {
    let images = [ArchiveImage::new(manifest.clone(), Vec::new())];
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    if empty {
        return export_oci_dir(store, &images, dir).map_err(|e| e.to_string());
    }
    if !dir.join("oci-layout").is_file() || !dir.join("index.json").is_file() {
        return Err(format!(
            "{} is not empty and not an OCI layout: give a new or empty directory",
            dir.display()
        ));
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let sibling = |tag: &str| {
        dir.with_file_name(format!(
            ".{}.{tag}-{}",
            name.as_deref().unwrap_or("cache"),
            std::process::id()
        ))
    };
    let (fresh, old) = (sibling("new"), sibling("old"));
    export_oci_dir(store, &images, &fresh).map_err(|e| e.to_string())?;
    let swap = std::fs::rename(dir, &old).and_then(|()| std::fs::rename(&fresh, dir));
    swap.map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
    std::fs::remove_dir_all(&old).map_err(|e| format!("cannot remove {}: {e}", old.display()))
}
