//! Exports of an image from the store: an OCI image layout (`type=oci`, as a tar or a
//! directory) and a docker archive (`type=docker`, what `docker save` writes).
//!
//! Both contain exactly the blobs the image reaches, streamed from the store with
//! bounded memory and re-verified on the way (see `sink.rs`). `type=local` and
//! `type=tar` (the final root filesystem) need the layer applier and live elsewhere.
//!
//! An archive holds one or several images ([`ArchiveImage`]: `rbuild save a b`, as
//! `docker save` does), their blobs once each.
//!
//! Names: in an exported `index.json` each name is one entry annotated with
//! `org.opencontainers.image.ref.name` = the tag (as BuildKit and `docker save` write
//! it) and `io.containerd.image.name` = the fully qualified name; an image without a
//! name has one entry without them. An image's own entry annotations (BuildKit's
//! `annotation-manifest-descriptor.*`) are on each of its entries.

mod docker;
mod oci;
mod sink;

use std::collections::{BTreeMap, BTreeSet};

pub use docker::export_docker;
pub use oci::{export_oci_dir, export_oci_tar};

/// The blobs an image reaches (see [`image_blobs`]) and their total size in bytes.
pub fn image_size(store: &Store, image: &Descriptor) -> Result<u64> {
    // Sizes come from manifests: saturate rather than overflow on hostile ones.
    Ok(image_blobs(store, image)?
        .iter()
        .fold(0u64, |total, d| total.saturating_add(d.size)))
}

use super::error::{Error, Result};
use crate::digest::Digest;
use crate::image::{canonical_json, decode_json, media_types, Descriptor, Index, Manifest};
use crate::store::{ImageName, Store, CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION};

/// How deep nested indexes may go (real images have one level).
const MAX_NESTING: usize = 8;

/// One image of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// Its manifest (or index) in the store.
    pub descriptor: Descriptor,
    /// The names it is listed under (none: listed once, unnamed).
    pub names: Vec<ImageName>,
    /// Annotations of its `index.json` entries.
    pub annotations: BTreeMap<String, String>,
}

impl ArchiveImage {
    /// `descriptor` listed under `names`, without entry annotations.
    pub fn new(descriptor: Descriptor, names: Vec<ImageName>) -> Self {
        ArchiveImage {
            descriptor,
            names,
            annotations: BTreeMap::new(),
        }
    }
}

/// The blobs `image` reaches, each once, children before parents: for a manifest its
/// config, its layers, then itself; for an index each child's blobs, then itself.
pub fn image_blobs(store: &Store, image: &Descriptor) -> Result<Vec<Descriptor>> {
    archive_blobs(store, std::slice::from_ref(image))
}

/// The blobs `images` reach, each once (layers they share too), children before
/// parents.
fn archive_blobs(store: &Store, images: &[Descriptor]) -> Result<Vec<Descriptor>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for image in images {
        collect(store, image, 0, &mut out, &mut seen)?;
    }
    Ok(out)
}

fn collect(
    store: &Store,
    desc: &Descriptor,
    depth: usize,
    out: &mut Vec<Descriptor>,
    seen: &mut BTreeSet<Digest>,
) -> Result<()> {
    if seen.contains(&desc.digest) {
        return Ok(());
    }
    if media_types::is_manifest(&desc.media_type) {
        let manifest: Manifest = decode(store, desc, "manifest")?;
        for child in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if seen.insert(child.digest) {
                out.push(child.clone());
            }
        }
    } else if media_types::is_index(&desc.media_type) && depth < MAX_NESTING {
        let index: Index = decode(store, desc, "index")?;
        for child in &index.manifests {
            collect(store, child, depth + 1, out, seen)?;
        }
    } else {
        return Err(Error::Unsupported {
            digest: desc.digest,
            media_type: desc.media_type.clone(),
            reason: "not an image manifest or index",
        });
    }
    seen.insert(desc.digest);
    out.push(plain(desc));
    Ok(())
}

/// Reads and parses a JSON blob.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    store: &Store,
    desc: &Descriptor,
    what: &'static str,
) -> Result<T> {
    let bytes = store.read_blob(&desc.digest)?;
    decode_json(&bytes).map_err(|source| Error::Decode {
        digest: desc.digest,
        what,
        source,
    })
}

/// The descriptor without annotations (they belong to where it is listed, not to it).
fn plain(desc: &Descriptor) -> Descriptor {
    let mut d = desc.clone();
    d.annotations.clear();
    d
}

/// The `index.json` of an exported layout: per image, one entry per name (or one
/// unnamed entry), in the order given.
pub(crate) fn export_index(images: &[ArchiveImage]) -> Index {
    let mut index = Index::default();
    for image in images {
        let mut own = plain(&image.descriptor);
        own.annotations = image.annotations.clone();
        if image.names.is_empty() {
            index.manifests.push(own.clone());
        }
        for name in &image.names {
            let mut entry = own.clone();
            entry
                .annotations
                .insert(REF_NAME_ANNOTATION.to_owned(), name.tag().to_owned());
            entry.annotations.insert(
                CONTAINERD_NAME_ANNOTATION.to_owned(),
                name.fully_qualified(),
            );
            index.manifests.push(entry);
        }
    }
    index
}

/// Canonical JSON of an export record.
pub(crate) fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    canonical_json(value).map_err(|source| Error::Encode { what, source })
}

#[cfg(test)]
mod interop_tests;
