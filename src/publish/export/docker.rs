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

use std::io::Write;

use serde::Serialize;

use super::oci::write_layout;
use super::sink::{blob_path, Sink, TarSink};
use super::{decode, encode};
use crate::image::{media_types, Descriptor, Manifest};
use crate::publish::error::{Error, Result};
use crate::store::{ImageName, Store};

/// One image of `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes the image `image` (a single-platform manifest in `store`) as a docker archive
/// to `out`, tagged with `names`; returns `out`.
pub fn export_docker<W: Write>(
    store: &Store,
    image: &Descriptor,
    names: &[ImageName],
    out: W,
) -> Result<W> {
    if !media_types::is_manifest(&image.media_type) {
        return Err(Error::Unsupported {
            digest: image.digest,
            media_type: image.media_type.clone(),
            reason: "a docker archive holds single-platform images: export one platform's manifest",
        });
    }
    let manifest: Manifest = decode(store, image, "manifest")?;
    let entry = ArchiveEntry {
        config: blob_path(&manifest.config.digest),
        repo_tags: names.iter().map(ToString::to_string).collect(),
        layers: manifest
            .layers
            .iter()
            .map(|l| blob_path(&l.digest))
            .collect(),
    };

    let mut sink = TarSink::new(out);
    write_layout(store, image, names, &mut sink)?;
    sink.file("manifest.json", &encode(&[entry], "manifest.json")?)?;
    sink.finish()
}
