//! Image IDs and images without a name.
//!
//! An image's ID is what docker and podman call it: the digest of its config (of an
//! index, the index's own digest, as containerd's image store does). The manifest
//! digest stays the image's address in registries and in this store's blobs.
//!
//! - Every `index.json` entry rbuild writes records its image's ID in the
//!   [`IMAGE_ID_ANNOTATION`], so a lookup by ID reads no manifest; an entry without it
//!   (another tool's, an older rbuild's) has its manifest read instead.
//! - `unnamed.json` lists the images made without a name (a build without `-t`, a
//!   loaded archive without names), newest first, as an OCI index whose entries carry
//!   the same annotation. It is not a garbage-collection root: as `docker image prune`
//!   removes dangling images, a prune removes their blobs, and an entry whose
//!   manifest or config is gone (or that got a name) is no longer listed, and is
//!   dropped from the file at its next write. The file is written under
//!   `locks/index.lock`.
//! - [`Store::find_by_id`]: a full ID or manifest digest, or a prefix of either, to
//!   the one image it names; a prefix shared by several images is an error listing
//!   them.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{Error, Result};
use super::layout::{self, INDEX_LOCK, UNNAMED_FILE};
use super::lock::FileLock;
use super::Store;
use crate::digest::Digest;
use crate::fs_error::FsError;
use crate::image::{media_types, Descriptor, Index, Manifest};

/// The annotation of rbuild's `index.json` (and `unnamed.json`) entries holding the
/// image ID. Store-private: descriptors handed out by the store do not carry it.
pub const IMAGE_ID_ANNOTATION: &str = "io.rbuild.image.id";

/// How many candidates an ambiguous-prefix error lists.
const LISTED_CANDIDATES: usize = 5;

/// An image the store holds without a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnnamedImage {
    /// Its manifest (or index) descriptor.
    pub descriptor: Descriptor,
    /// Its image ID.
    pub id: Digest,
}

/// The ID an entry records, if it records a valid one.
pub(super) fn recorded_id(entry: &Descriptor) -> Option<Digest> {
    entry.annotations.get(IMAGE_ID_ANNOTATION)?.parse().ok()
}

/// The descriptor without the store's own annotations (name and ID).
pub(super) fn bare(entry: &Descriptor) -> Descriptor {
    let mut d = entry.clone();
    d.annotations.remove(super::REF_NAME_ANNOTATION);
    d.annotations.remove(IMAGE_ID_ANNOTATION);
    d
}

/// Whether `text` is a hex digest or prefix (`3fa2`, `sha256:3fa2...`); its hex part.
pub(super) fn hex_part(text: &str) -> Option<&str> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    let is_hex = !hex.is_empty()
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    is_hex.then_some(hex)
}

impl Store {
    /// The image ID of the manifest or index `descriptor`: the recorded one, else the
    /// config digest read from the manifest (an index's own digest).
    pub fn image_id(&self, descriptor: &Descriptor) -> Result<Digest> {
        if let Some(id) = recorded_id(descriptor) {
            return Ok(id);
        }
        if !media_types::is_manifest(&descriptor.media_type) {
            return Ok(descriptor.digest);
        }
        let bytes = self.read_blob(&descriptor.digest)?;
        let manifest: Manifest =
            crate::image::decode_json(&bytes).map_err(|source| Error::CorruptBlob {
                digest: descriptor.digest,
                what: "manifest",
                source,
            })?;
        Ok(manifest.config.digest)
    }

    /// `descriptor` with its image ID recorded, as the store's entries keep it.
    pub(super) fn with_id(&self, descriptor: &Descriptor) -> Result<Descriptor> {
        let id = self.image_id(descriptor)?;
        let mut entry = descriptor.clone();
        entry
            .annotations
            .insert(IMAGE_ID_ANNOTATION.to_owned(), id.to_string());
        Ok(entry)
    }

    /// Records `descriptor` (a complete image in the store) as an image without a name,
    /// first in the list; does nothing if a name already points at it.
    pub fn add_unnamed(&self, descriptor: &Descriptor) -> Result<()> {
        let mut entry = self.with_id(descriptor)?;
        entry.annotations.remove(super::REF_NAME_ANNOTATION);
        let _lock = FileLock::exclusive(&self.root.join(INDEX_LOCK))?;
        let named = self.named_digests()?;
        if named.contains(&entry.digest) {
            return Ok(());
        }
        let mut list = self.read_unnamed()?;
        list.manifests
            .retain(|d| d.digest != entry.digest && self.lists_unnamed(d, &named));
        list.manifests.insert(0, entry);
        self.write_unnamed(&list)
    }

    /// Removes `digest` from the images without a name; whether it was one.
    pub fn remove_unnamed(&self, digest: &Digest) -> Result<bool> {
        let _lock = FileLock::exclusive(&self.root.join(INDEX_LOCK))?;
        let mut list = self.read_unnamed()?;
        let before = list.manifests.len();
        list.manifests.retain(|d| d.digest != *digest);
        if list.manifests.len() == before {
            return Ok(false);
        }
        self.write_unnamed(&list)?;
        Ok(true)
    }

    /// The images without a name whose manifest and config are in the store, newest
    /// first.
    pub fn list_unnamed(&self) -> Result<Vec<UnnamedImage>> {
        let named = self.named_digests()?;
        let mut out = Vec::new();
        for entry in self.read_unnamed()?.manifests {
            if self.lists_unnamed(&entry, &named) {
                let id = self.image_id(&entry)?;
                out.push(UnnamedImage {
                    descriptor: bare(&entry),
                    id,
                });
            }
        }
        Ok(out)
    }

    /// Whether an `unnamed.json` entry is still an unnamed image: no name points at
    /// it, and its manifest and (recorded) config are present.
    fn lists_unnamed(&self, entry: &Descriptor, named: &BTreeSet<Digest>) -> bool {
        let config_present = match recorded_id(entry) {
            Some(id) if media_types::is_manifest(&entry.media_type) => self.has_blob(&id),
            _ => true,
        };
        !named.contains(&entry.digest) && self.has_blob(&entry.digest) && config_present
    }

    /// The manifests (and indexes) that have a name.
    fn named_digests(&self) -> Result<BTreeSet<Digest>> {
        let index = self.read_index()?;
        Ok(index.manifests.iter().map(|d| d.digest).collect())
    }

    fn read_unnamed(&self) -> Result<Index> {
        let path = self.root.join(UNNAMED_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => crate::image::decode_json(&bytes)
                .map_err(|source| Error::CorruptFile { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(Error::fs("read", &path)(e)),
        }
    }

    fn write_unnamed(&self, list: &Index) -> Result<()> {
        let bytes = layout::encode(list, UNNAMED_FILE)?;
        layout::write_atomic(self.work_dir(), &self.root.join(UNNAMED_FILE), &bytes)
    }

    /// The one image `hex` (a full ID or manifest digest, or a prefix of either) names
    /// among `named` (raw `index.json` entries) and the unnamed images; `None` when
    /// none matches.
    pub(super) fn find_by_id(
        &self,
        reference: &str,
        hex: &str,
        named: &[Descriptor],
    ) -> Result<Option<Descriptor>> {
        let mut matches: BTreeMap<Digest, Match> = BTreeMap::new();
        let unnamed = self.list_unnamed()?;
        let candidates = named
            .iter()
            .map(|d| (d.clone(), recorded_id(d)))
            .chain(unnamed.into_iter().map(|u| (u.descriptor, Some(u.id))));
        for (entry, id) in candidates {
            let id = match id {
                Some(id) => id,
                None => self.image_id(&entry)?,
            };
            if id.hex().starts_with(hex) || entry.digest.hex().starts_with(hex) {
                let slot = matches.entry(entry.digest).or_insert_with(|| Match {
                    descriptor: bare(&entry),
                    id,
                    names: Vec::new(),
                });
                if let Some(name) = entry.annotations.get(super::REF_NAME_ANNOTATION) {
                    slot.names.push(name.clone());
                }
            }
        }
        if matches.len() > 1 {
            return Err(ambiguous(reference, &matches));
        }
        Ok(matches.into_values().next().map(|m| m.descriptor))
    }
}

/// An image a prefix matches.
struct Match {
    descriptor: Descriptor,
    id: Digest,
    names: Vec<String>,
}

/// The error for a prefix of several images: each as `ID <id> (<names>)`.
fn ambiguous(reference: &str, matches: &BTreeMap<Digest, Match>) -> Error {
    let mut candidates: Vec<String> = matches
        .values()
        .take(LISTED_CANDIDATES)
        .map(|m| {
            let names = if m.names.is_empty() {
                "unnamed".to_owned()
            } else {
                m.names.join(", ")
            };
            format!(
                "ID {} digest {} ({names})",
                m.id.short(),
                m.descriptor.digest.short()
            )
        })
        .collect();
    if matches.len() > LISTED_CANDIDATES {
        candidates.push(format!("and {} more", matches.len() - LISTED_CANDIDATES));
    }
    Error::AmbiguousId {
        prefix: reference.to_owned(),
        count: matches.len(),
        candidates: candidates.join(", "),
    }
}

#[cfg(test)]
#[path = "ids_tests.rs"]
mod tests;
