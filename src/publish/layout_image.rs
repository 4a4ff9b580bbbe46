//! One image of an OCI layout directory into the store, for a named context
//! `oci-layout://PATH[:TAG][@DIGEST]`, with no network: the `index.json` entry chosen
//! as buildx chooses it (the digest when given; else the entry whose
//! `io.containerd.image.name`, then `org.opencontainers.image.ref.name`, is the tag;
//! else the only entry), an index narrowed to the build's platform, and only the
//! blobs that image reaches copied in, each opened beneath the layout without
//! following symlinks and checked against its digest. Nothing is named: the build
//! holds the store's gc lock while it uses the image.

use std::io::Read;
use std::path::Path;

use super::error::{Error, Result};
use super::import::{invalid, open_in};
use crate::digest::Digest;
use crate::image::{decode_json, media_types, Descriptor, Index, Manifest};
use crate::store::Store;

/// What to take from a layout: a tag or a digest, for a platform.
#[derive(Debug, Clone, Copy)]
pub struct LayoutPick<'a> {
    /// The tag to look up (`latest` when the reference has none).
    pub tag: &'a str,
    /// The manifest or index digest, which wins over the tag.
    pub digest: Option<Digest>,
    /// `os`, `architecture`, `variant` of the build (for an index).
    pub platform: (&'a str, &'a str, &'a str),
}

/// Copies the image `pick` names from the layout at `dir` into `store`; its manifest
/// descriptor.
pub fn import_layout_image(store: &Store, dir: &Path, pick: LayoutPick<'_>) -> Result<Descriptor> {
    let index: Index = read_index(dir)?;
    let mut chosen = match pick.digest {
        Some(digest) => by_digest(store, dir, &index, digest)?,
        None => by_tag(dir, &index, pick.tag)?,
    };
    copy_blob(store, dir, &chosen)?;
    if media_types::is_index(&chosen.media_type) {
        let nested: Index = decode(store, &chosen.digest, "index")?;
        let (os, arch, variant) = pick.platform;
        chosen = nested.select(os, arch, variant).cloned().ok_or_else(|| {
            invalid(
                dir,
                &format!(
                    "image {} has no {os}/{arch} manifest (it has {})",
                    chosen.digest,
                    nested.platforms().join(", ")
                ),
            )
        })?;
        copy_blob(store, dir, &chosen)?;
    }
    if !media_types::is_manifest(&chosen.media_type) {
        return Err(invalid(
            dir,
            &format!("{} is a {}, not an image", chosen.digest, chosen.media_type),
        ));
    }
    let manifest: Manifest = decode(store, &chosen.digest, "manifest")?;
    copy_blob(store, dir, &manifest.config)?;
    for layer in &manifest.layers {
        copy_blob(store, dir, layer)?;
    }
    chosen.annotations = Default::default();
    Ok(chosen)
}

/// The manifest of the layout at `dir` that `index.json` tags `tag` (or its only
/// entry), copied into the store; nothing it reaches is copied (the build cache reads
/// its layers only when a step needs them, through [`copy_blob`]).
pub fn layout_manifest(store: &Store, dir: &Path, tag: &str) -> Result<Descriptor> {
    let index: Index = read_index(dir)?;
    let chosen = by_tag(dir, &index, tag)?;
    if !media_types::is_manifest(&chosen.media_type) || chosen.size > MAX_MANIFEST {
        return Err(invalid(
            dir,
            &format!(
                "{} is not an image manifest of at most 4 MiB",
                chosen.digest
            ),
        ));
    }
    copy_blob(store, dir, &chosen)?;
    Ok(chosen)
}

/// The largest `index.json` read (a layout lists its images there, not their content).
const MAX_INDEX: u64 = 16 << 20;

fn read_index(dir: &Path) -> Result<Index> {
    let mut bytes = Vec::new();
    open_in(dir, "index.json")?
        .take(MAX_INDEX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(dir, &format!("cannot read index.json: {e}")))?;
    if bytes.len() as u64 > MAX_INDEX {
        return Err(invalid(dir, "index.json is larger than 16 MiB"));
    }
    decode_json(&bytes).map_err(|e| invalid(dir, &format!("index.json: {e}")))
}

/// The entry tagged `tag` (buildx's `ociindex.Get`), else the only entry.
fn by_tag(dir: &Path, index: &Index, tag: &str) -> Result<Descriptor> {
    let tagged = |key: &str| {
        index
            .manifests
            .iter()
            .find(|d| d.annotations.get(key).is_some_and(|t| t == tag))
    };
    let found = tagged("io.containerd.image.name")
        .or_else(|| tagged("org.opencontainers.image.ref.name"))
        .or(match index.manifests.as_slice() {
            [only] => Some(only),
            _ => None,
        });
    found.cloned().ok_or_else(|| {
        let tags: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get("org.opencontainers.image.ref.name"))
            .map(String::as_str)
            .collect();
        invalid(
            dir,
            &format!("no image is tagged {tag:?} (tags: {})", tags.join(", ")),
        )
    })
}

/// The entry of `digest`, or the blob itself when `index.json` does not list it.
fn by_digest(store: &Store, dir: &Path, index: &Index, digest: Digest) -> Result<Descriptor> {
    if let Some(listed) = index.manifests.iter().find(|d| d.digest == digest) {
        return Ok(listed.clone());
    }
    let size = copy_bounded(store, dir, &digest, MAX_MANIFEST)?;
    let bytes = store.read_blob(&digest)?;
    let media_type = media_types::declared(&bytes).ok_or_else(|| {
        invalid(
            dir,
            &format!("{} is neither a manifest nor an index", blob_rel(&digest)),
        )
    })?;
    Ok(Descriptor::new(&media_type, digest, size))
}

/// The largest manifest or index read without a descriptor giving its size (the
/// registry's limit, 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;

/// Copies the blob `descriptor` names from the layout at `dir` into the store unless
/// it is there (opened beneath `dir`, digest and size checked).
pub fn copy_blob(store: &Store, dir: &Path, descriptor: &Descriptor) -> Result<()> {
    if store.has_blob(&descriptor.digest) {
        return Ok(());
    }
    let size = copy_bounded(store, dir, &descriptor.digest, descriptor.size)?;
    if size != descriptor.size {
        return Err(invalid(
            dir,
            &format!(
                "{} has {size} bytes, its descriptor says {}",
                blob_rel(&descriptor.digest),
                descriptor.size
            ),
        ));
    }
    Ok(())
}

/// Copies blob `digest` of the layout into the store, reading at most one byte more
/// than `limit` (a file longer than its descriptor says fails its digest without
/// being read to its end); its size.
fn copy_bounded(store: &Store, dir: &Path, digest: &Digest, limit: u64) -> Result<u64> {
    let rel = blob_rel(digest);
    let file = open_in(dir, &rel)?;
    let mut writer = store.blob_writer()?;
    std::io::copy(&mut file.take(limit.saturating_add(1)), &mut writer)
        .map_err(|e| invalid(dir, &format!("cannot copy {rel}: {e}")))?;
    Ok(writer.commit(Some(*digest))?.1)
}

fn blob_rel(digest: &Digest) -> String {
    let text = digest.to_string();
    let hex = text.strip_prefix("sha256:").unwrap_or(&text);
    format!("blobs/sha256/{hex}")
}

fn decode<T: serde::de::DeserializeOwned>(
    store: &Store,
    digest: &Digest,
    what: &'static str,
) -> Result<T> {
    let bytes = store.read_blob(digest)?;
    decode_json(&bytes).map_err(|source| Error::Decode {
        digest: *digest,
        what,
        source,
    })
}
