//! `type=docker`: a docker archive, as `docker save` writes it since Docker 25.
//!
//! The tar is the OCI layout of [`export_oci_tar`](super::export_oci_tar) (blobs under
//! `blobs/sha256/`, `index.json`, `oci-layout`: what containerd-based `docker load` and
//! `podman load` read) plus the legacy `manifest.json`
//! (`[{"Config", "RepoTags", "Layers"}]`, read by classic `docker load` and by
//! `podman load`'s docker-archive transport). Layers stay compressed, as stored: both
//! loaders decompress layer files (containers/image auto-detects the compression of
//! each `Layers` entry; Docker's loader goes through `DecompressStream`), so the layer
//! digests in the manifest blob still hold. Checked with podman 4.3 (both readings) and
//! Docker 20.10's classic loader, which verifies every layer's diff ID.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::oci::write_layout;
use super::sink::{blob_path, Sink, TarSink};
use super::{decode, encode, ArchiveImage};
use crate::image::{host_architecture, media_types, Descriptor, Index, Manifest};
use crate::publish::error::{Error, Result};
use crate::store::Store;

/// One image of `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes `images` (manifests or indexes in `store`) as a docker archive to `out`,
/// each with its names as `RepoTags`; returns `out`.
///
/// Beside the layout: `manifest.json`, one entry per image, and, when some image has
/// a name, the legacy `repositories` (`{"repo": {"tag": "<top layer hex>"}}`) that
/// `docker save` writes; loaders read `manifest.json` first.
pub fn export_docker<W: Write>(store: &Store, images: &[ArchiveImage], out: W) -> Result<W> {
    let mut entries = Vec::with_capacity(images.len());
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let entry = archive_entry(store, image)?;
        if let Some(top) = entry.layers.last() {
            let top = top.rsplit('/').next().unwrap_or(top);
            for name in &image.names {
                repositories
                    .entry(name.familiar_repository().to_owned())
                    .or_default()
                    .insert(name.tag().to_owned(), top.to_owned());
            }
        }
        entries.push(entry);
    }
    let mut sink = TarSink::new(out);
    write_layout(store, images, &mut sink)?;
    sink.file("manifest.json", &encode(&entries, "manifest.json")?)?;
    if !repositories.is_empty() {
        sink.file("repositories", &encode(&repositories, "repositories")?)?;
    }
    sink.finish()
}

/// The `manifest.json` entry of one image. `manifest.json` has no place for an index:
/// an index (a multi-platform image, whole in the layout's `index.json`, which
/// containerd-based `docker load` reads) is entered as its manifest for this machine's
/// platform (else its first), what classic `docker load` can run here.
fn archive_entry(store: &Store, image: &ArchiveImage) -> Result<ArchiveEntry> {
    let desc = native_manifest(store, &image.descriptor)?;
    let manifest: Manifest = decode(store, &desc, "manifest")?;
    Ok(ArchiveEntry {
        config: blob_path(&manifest.config.digest),
        repo_tags: image.names.iter().map(ToString::to_string).collect(),
        layers: manifest
            .layers
            .iter()
            .map(|l| blob_path(&l.digest))
            .collect(),
    })
}

/// `desc` if it is a manifest; for an index, its entry for linux on this machine's
/// architecture, else its first manifest.
fn native_manifest(store: &Store, desc: &Descriptor) -> Result<Descriptor> {
    if media_types::is_manifest(&desc.media_type) {
        return Ok(desc.clone());
    }
    let unsupported = |reason| Error::Unsupported {
        digest: desc.digest,
        media_type: desc.media_type.clone(),
        reason,
    };
    if !media_types::is_index(&desc.media_type) {
        return Err(unsupported(
            "a docker archive holds images: export a manifest or an index",
        ));
    }
    let index: Index = decode(store, desc, "index")?;
    let manifests = || {
        index
            .manifests
            .iter()
            .filter(|d| media_types::is_manifest(&d.media_type))
    };
    let native = manifests().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == host_architecture())
    });
    native
        .or_else(|| manifests().next())
        .cloned()
        .ok_or_else(|| unsupported("the index lists no image manifest"))
}
