//! Local image names: `index.json` entries annotated `org.opencontainers.image.ref.name`.
//!
//! The annotation holds the full name (`app:1`, `registry.example/team/app:1`), so the
//! store reads as an OCI layout with those refs (`skopeo inspect oci:<root>:app:1`). A
//! name without a tag means `:latest`. Entries without the annotation (if another tool
//! adds some) are kept untouched. `index.json` is rewritten only under
//! `locks/index.lock`, and an entry is added only after every blob it reaches exists.
//! Each entry rbuild writes also records the image ID (see `ids.rs`, which also keeps
//! the images without a name).

use std::fmt;
use std::str::FromStr;

use super::error::{Error, Result};
use super::layout::{self, INDEX_FILE, INDEX_LOCK};
use super::lock::FileLock;
use super::Store;
use crate::digest::Digest;
use crate::image::{media_types, Descriptor, Index, Manifest};

/// The OCI annotation naming an image in an image layout.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd (and Docker 25+ `docker save`) use for the full name.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// How deep nested indexes may go before a name is refused (real ones have 1 level).
const MAX_NESTING: usize = 8;

/// A local image name: `repository:tag`, as the user wrote it (not qualified).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageName {
    repository: String,
    tag: String,
}

impl ImageName {
    /// Parses `repo[:tag]` (Docker's reference grammar without a digest); a missing tag
    /// becomes `latest`.
    pub fn parse(text: &str) -> Result<ImageName> {
        let invalid = |reason| Error::InvalidName {
            name: text.to_owned(),
            reason,
        };
        if text.contains('@') {
            return Err(invalid("a digest reference cannot name a local image"));
        }
        let slash = text.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match text[slash..].rfind(':') {
            Some(i) => (&text[..slash + i], &text[slash + i + 1..]),
            None => (text, "latest"),
        };
        check_tag(tag).map_err(invalid)?;
        check_repository(repository).map_err(invalid)?;
        Ok(ImageName {
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The repository part (`app`, `registry.example/team/app`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The repository as Docker shows it: `docker.io/library/app` -> `app`,
    /// `docker.io/team/app` -> `team/app`, anything else as written.
    pub fn familiar_repository(&self) -> &str {
        let repo = self.repository.as_str();
        repo.strip_prefix("docker.io/library/")
            .or_else(|| repo.strip_prefix("docker.io/"))
            .unwrap_or(repo)
    }

    /// The name as Docker normalizes it: `app:1` -> `docker.io/library/app:1`.
    pub fn fully_qualified(&self) -> String {
        match (
            registry_host(&self.repository),
            self.repository.contains('/'),
        ) {
            (Some(_), _) => self.to_string(),
            (None, true) => format!("docker.io/{self}"),
            (None, false) => format!("docker.io/library/{self}"),
        }
    }
}

/// The registry host of a repository (`localhost:5000/app` -> `localhost:5000`), told
/// apart as Docker does: a first component with a `.` or `:`, or `localhost`.
fn registry_host(repository: &str) -> Option<&str> {
    let (first, _) = repository.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

impl FromStr for ImageName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ImageName::parse(s)
    }
}

fn check_tag(tag: &str) -> std::result::Result<(), &'static str> {
    let ok_first = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok_rest = |b: u8| ok_first(b) || b == b'.' || b == b'-';
    match tag.as_bytes() {
        [] => Err("empty tag"),
        t if t.len() > 128 => Err("tag longer than 128 characters"),
        [first, rest @ ..] if ok_first(*first) && rest.iter().all(|&b| ok_rest(b)) => Ok(()),
        _ => Err("a tag is [A-Za-z0-9_][A-Za-z0-9_.-]*"),
    }
}

fn check_repository(repo: &str) -> std::result::Result<(), &'static str> {
    if repo.is_empty() {
        return Err("empty repository");
    }
    if repo.len() > 255 {
        return Err("repository longer than 255 characters");
    }
    let mut parts = repo.split('/');
    if let Some(host) = registry_host(repo) {
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"-.:".contains(&b);
        if !host.bytes().all(ok) {
            return Err("invalid registry host");
        }
        parts.next();
    }
    for part in parts {
        // Path components: lowercase alphanumerics joined by `.`, `_`, `__` or dashes.
        let bytes = part.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let sep = |b: &u8| matches!(b, b'.' | b'_' | b'-');
        let ends_ok = bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum);
        let chars_ok = bytes.iter().all(|b| alnum(b) || sep(b));
        let seps_ok = !part.contains("..")
            && !part.contains("___")
            && !part.contains("._")
            && !part.contains("_.");
        if !(ends_ok && chars_ok && seps_ok) {
            return Err("a repository path is lowercase letters and digits separated by `/`, `.`, `_` or `-`");
        }
    }
    Ok(())
}

/// A named image of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedImage {
    /// Its name.
    pub name: ImageName,
    /// Its manifest (or index) descriptor, without the store's annotations.
    pub descriptor: Descriptor,
    /// Its image ID when the entry records it (else [`Store::image_id`] reads it).
    pub id: Option<Digest>,
}

/// The name an index entry carries, if any (and if it parses).
fn entry_name(entry: &Descriptor) -> Option<ImageName> {
    entry
        .annotations
        .get(REF_NAME_ANNOTATION)
        .and_then(|n| ImageName::parse(n).ok())
}

/// The descriptor without the store's annotations (its name and image ID).
fn unnamed(entry: &Descriptor) -> Descriptor {
    super::ids::bare(entry)
}

impl Store {
    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<Index> {
        layout::read_index(&self.root)
    }

    /// Read-modify-write of `index.json` under the exclusive index lock; `edit` returning
    /// an error leaves the file as it was.
    pub(super) fn update_index<T>(&self, edit: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = FileLock::exclusive(&self.root.join(INDEX_LOCK))?;
        let mut index = self.read_index()?;
        let out = edit(&mut index)?;
        // Entries sorted by name, unnamed ones first: the file depends only on the set.
        index.manifests.sort_by(|a, b| {
            a.annotations
                .get(REF_NAME_ANNOTATION)
                .cmp(&b.annotations.get(REF_NAME_ANNOTATION))
        });
        let bytes = layout::encode(&index, "index.json")?;
        layout::write_atomic(self.work_dir(), &self.root.join(INDEX_FILE), &bytes)?;
        Ok(out)
    }

    /// Names `descriptor` (a manifest or index already in the store) `name`, replacing
    /// whatever the name pointed to. Every blob the image reaches must exist.
    pub fn set_name(&self, name: &ImageName, descriptor: &Descriptor) -> Result<()> {
        self.check_complete(name, descriptor, 0)?;
        let mut entry = self.with_id(descriptor)?;
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), name.to_string());
        self.update_index(|index| {
            index
                .manifests
                .retain(|d| entry_name(d).as_ref() != Some(name));
            index.manifests.push(entry);
            Ok(())
        })
    }

    /// Checks that the blob of `descriptor` and every blob it refers to are present
    /// (layers and configs may be lazy).
    fn check_complete(
        &self,
        name: &ImageName,
        descriptor: &Descriptor,
        depth: usize,
    ) -> Result<()> {
        let missing = |digest: &Digest| Error::Incomplete {
            name: name.to_string(),
            missing: *digest,
        };
        if !self.has_blob(&descriptor.digest) {
            return Err(missing(&descriptor.digest));
        }
        let what = if media_types::is_manifest(&descriptor.media_type) {
            "manifest"
        } else if media_types::is_index(&descriptor.media_type) && depth < MAX_NESTING {
            "index"
        } else {
            return Ok(());
        };
        let bytes = self.read_blob(&descriptor.digest)?;
        let corrupt = |source| Error::CorruptBlob {
            digest: descriptor.digest,
            what,
            source,
        };
        if what == "manifest" {
            let manifest: Manifest = crate::image::decode_json(&bytes).map_err(corrupt)?;
            let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
            if let Some(absent) = blobs.map(|d| &d.digest).find(|d| !self.has_blob_or_lazy(d)) {
                return Err(missing(absent));
            }
        } else {
            let index: Index = crate::image::decode_json(&bytes).map_err(corrupt)?;
            for child in &index.manifests {
                self.check_complete(name, child, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Finds an image by name (`app` means `app:latest`), else by image ID (config
    /// digest) or manifest digest, whole (`sha256:<hex>`, `<hex>`) or a prefix of
    /// either (`3fa2`) that names one image only, named or not (see `ids.rs`). A full
    /// digest of a manifest or index blob in the store that is no image (a base
    /// image's platform manifest) describes that blob. `None` when nothing matches.
    pub fn resolve(&self, reference: &str) -> Result<Option<Descriptor>> {
        let index = self.read_index()?;
        let parsed = ImageName::parse(reference);
        if let Ok(name) = &parsed {
            if let Some(d) = index
                .manifests
                .iter()
                .find(|d| entry_name(d).as_ref() == Some(name))
            {
                return Ok(Some(unnamed(d)));
            }
        }
        let Some(hex) = super::ids::hex_part(reference) else {
            return parsed.map(|_| None);
        };
        if let Some(found) = self.find_by_id(reference, hex, &index.manifests)? {
            return Ok(Some(found));
        }
        match reference.parse::<Digest>() {
            Ok(digest) => self.describe_blob(&digest),
            Err(_) => Ok(None),
        }
    }

    /// A descriptor for the manifest or index blob `digest`, if it is in the store;
    /// the media type comes from the blob's `mediaType` (or its shape, when absent).
    fn describe_blob(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        // Layers are blobs too, and may be large: those are not images.
        if !self.has_blob(digest) || self.blob_size(digest)? > super::MAX_JSON_BLOB {
            return Ok(None);
        }
        let bytes = self.read_blob(digest)?;
        let Some(media_type) = media_types::declared(&bytes) else {
            return Ok(None);
        };
        let is_image = media_types::is_manifest(&media_type) || media_types::is_index(&media_type);
        Ok(is_image.then(|| Descriptor::new(media_type, *digest, bytes.len() as u64)))
    }

    /// All named images, sorted by name.
    pub fn list(&self) -> Result<Vec<NamedImage>> {
        let index = self.read_index()?;
        let mut images: Vec<NamedImage> = index
            .manifests
            .iter()
            .filter_map(|d| {
                entry_name(d).map(|name| NamedImage {
                    name,
                    descriptor: unnamed(d),
                    id: super::ids::recorded_id(d),
                })
            })
            .collect();
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(images)
    }

    /// Removes a name; returns what it pointed to. The blobs stay (garbage collection
    /// removes unreferenced ones).
    pub fn remove_name(&self, name: &ImageName) -> Result<Descriptor> {
        self.update_index(|index| {
            let pos = index
                .manifests
                .iter()
                .position(|d| entry_name(d).as_ref() == Some(name))
                .ok_or_else(|| Error::ImageNotFound {
                    name: name.to_string(),
                })?;
            Ok(unnamed(&index.manifests.remove(pos)))
        })
    }

    /// Gives the image `src` (a name or digest, as in [`resolve`](Self::resolve)) the
    /// additional name `dst`; returns its descriptor.
    pub fn tag(&self, src: &str, dst: &ImageName) -> Result<Descriptor> {
        let descriptor = self.resolve(src)?.ok_or_else(|| Error::ImageNotFound {
            name: src.to_owned(),
        })?;
        self.set_name(dst, &descriptor)?;
        Ok(descriptor)
    }
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
