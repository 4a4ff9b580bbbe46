//! `type=docker`: a docker archive, as `docker save` writes it since Docker 25.
//!
//! The tar holds the blobs under `blobs/sha256/`, an OCI `index.json` + `oci-layout`
//! (read by containerd-based `docker load`) and the legacy `manifest.json`
//! (`[{"Config", "RepoTags", "Layers"}]`, read by classic `docker load` and by
//! `podman load`'s docker-archive transport). Layers stay compressed, as stored: both
//! loaders decompress layer files (containers/image auto-detects the compression of
//! each `Layers` entry; Docker's loader goes through `DecompressStream`), so the layer
//! digests in the manifest blob still hold.

use std::io::Write;

use serde::Serialize;

use super::oci::OCI_LAYOUT;
use super::sink::{blob_path, Sink, TarSink};
use super::{decode, encode, export_index, plain};
use crate::image::descriptor::Descriptor;
use crate::image::error::{Error, Result};
use crate::image::manifest::Manifest;
use crate::image::media_types;
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
    sink.dir("blobs")?;
    sink.dir("blobs/sha256")?;
    let mut written = std::collections::BTreeSet::new();
    let image = plain(image);
    for blob in manifest.layers.iter().chain([&manifest.config, &image]) {
        // An image may repeat a layer; the archive holds it once.
        if written.insert(blob.digest) {
            sink.blob(store, blob)?;
        }
    }
    sink.file(
        "index.json",
        &encode(&export_index(&image, names), "index.json")?,
    )?;
    sink.file("manifest.json", &encode(&[entry], "manifest.json")?)?;
    sink.file("oci-layout", OCI_LAYOUT)?;
    sink.finish()
}
