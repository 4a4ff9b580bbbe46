//! What garbage collection needs from the store: the store-wide lock, snapshot last-use
//! sidecars, the blobs and snapshots named images need, and `config.json`.
//!
//! - `locks/gc.lock`: a build holds it shared for its whole duration, a prune holds it
//!   exclusively, so a prune never removes what a running build reads or is about to
//!   record (a blob written but not yet referenced, a snapshot used as a lower dir).
//! - `snapshots/<chain-hex>.used`: touched each time a snapshot is used. A snapshot
//!   directory's own mtime belongs to the image's file system, so it cannot say when
//!   the snapshot was last used.
//! - [`ImageRoots`]: everything the entries of `index.json` reach. Every entry counts,
//!   named or not (entries another tool added are kept untouched).
//!
//! Does not: decide what to remove (the cache module's `prune` does).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use super::error::{Error, Result};
use super::lock::FileLock;
use super::usage::SNAPSHOT_USED_SUFFIX;
use super::{chain_ids, Store};
use crate::digest::Digest;
use crate::fs_error::FsError;
use crate::image::{media_types, Descriptor, ImageConfig, Index, Manifest};

/// The store-wide garbage-collection lock, relative to the root.
pub const GC_LOCK: &str = "locks/gc.lock";
/// The store's settings file, relative to the root.
pub const CONFIG_FILE: &str = "config.json";

/// How deep nested indexes may go (real images have one level).
const MAX_NESTING: usize = 8;

impl Store {
    fn gc_lock_path(&self) -> PathBuf {
        self.root.join(GC_LOCK)
    }

    /// Takes the gc lock shared (a build) if no prune holds it; `None` if one does.
    pub fn try_gc_shared(&self) -> Result<Option<FileLock>> {
        FileLock::try_shared(&self.gc_lock_path())
    }

    /// Waits for the gc lock, shared (a build).
    pub fn gc_shared(&self) -> Result<FileLock> {
        FileLock::shared(&self.gc_lock_path())
    }

    /// Takes the gc lock exclusively (a prune) if nobody holds it; `None` if a build or
    /// another prune does.
    pub fn try_gc_exclusive(&self) -> Result<Option<FileLock>> {
        FileLock::try_exclusive(&self.gc_lock_path())
    }

    /// Waits for the gc lock, exclusively (a prune).
    pub fn gc_exclusive(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.gc_lock_path())
    }

    /// The last-use sidecar of snapshot `chain_id`.
    pub fn snapshot_used_path(&self, chain_id: &Digest) -> PathBuf {
        self.root
            .join(super::layout::SNAPSHOTS_DIR)
            .join(format!("{}{SNAPSHOT_USED_SUFFIX}", chain_id.hex()))
    }

    /// Records that snapshot `chain_id` is being used now. Best effort: a failure only
    /// makes the snapshot look older to a size-capped prune.
    pub fn touch_snapshot(&self, chain_id: &Digest) {
        let path = self.snapshot_used_path(chain_id);
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        if let Ok(file) = file {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// What the entries of `index.json`, and `extra` images, reach.
    pub fn image_roots(&self, extra: &[Descriptor]) -> Result<ImageRoots> {
        let index = self.read_index()?;
        let mut roots = ImageRoots::default();
        for desc in index.manifests.iter().chain(extra) {
            roots.images += 1;
            self.reach(desc, 0, &mut roots)?;
        }
        Ok(roots)
    }

    fn reach(&self, desc: &Descriptor, depth: usize, roots: &mut ImageRoots) -> Result<()> {
        if !roots.blobs.insert(desc.digest) || !self.has_blob(&desc.digest) {
            return Ok(()); // seen, or missing: nothing below it to keep
        }
        let nested = media_types::is_index(&desc.media_type) && depth < MAX_NESTING;
        if !media_types::is_manifest(&desc.media_type) && !nested {
            return Ok(());
        }
        let bytes = self.read_blob(&desc.digest)?;
        if media_types::is_manifest(&desc.media_type) {
            match crate::image::decode_json::<Manifest>(&bytes) {
                Ok(manifest) => self.reach_manifest(&manifest, roots)?,
                Err(_) => keep_every_digest(&bytes, roots),
            }
        } else {
            match crate::image::decode_json::<Index>(&bytes) {
                Ok(index) => {
                    for child in &index.manifests {
                        self.reach(child, depth + 1, roots)?;
                    }
                }
                Err(_) => keep_every_digest(&bytes, roots),
            }
        }
        Ok(())
    }

    fn reach_manifest(&self, manifest: &Manifest, roots: &mut ImageRoots) -> Result<()> {
        roots.blobs.insert(manifest.config.digest);
        roots.blobs.extend(manifest.layers.iter().map(|l| l.digest));
        if self.has_blob(&manifest.config.digest) {
            let bytes = self.read_blob(&manifest.config.digest)?;
            // A config that is not an image config (an artifact) has no snapshots.
            if let Ok(config) = ImageConfig::parse(&bytes) {
                roots.chains.extend(chain_ids(&config.rootfs.diff_ids));
            }
        }
        Ok(())
    }
}

/// A manifest or index rbuild cannot read still protects what it might refer to: every
/// string in it that is a digest is kept. Losing a layer of an image that another tool
/// can read would be worse than keeping a few blobs too many.
fn keep_every_digest(bytes: &[u8], roots: &mut ImageRoots) {
    fn walk(value: &serde_json::Value, roots: &mut ImageRoots) {
        match value {
            serde_json::Value::String(s) => {
                if let Ok(d) = s.parse::<Digest>() {
                    roots.blobs.insert(d);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, roots)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, roots)),
            _ => {}
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        walk(&value, roots);
    }
}

/// What images need: blobs that must never be removed, and the chain IDs of their
/// layer stacks (snapshots worth keeping, though they can be made again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRoots {
    /// Entries of `index.json` (and extra images) walked.
    pub images: usize,
    /// Manifests, indexes, configs and layers they reach.
    pub blobs: BTreeSet<Digest>,
    /// Chain IDs of their layer stacks (every prefix).
    pub chains: BTreeSet<Digest>,
}

/// `<store>/config.json`: settings of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreConfig {
    /// A size cap (`10GiB`, go-units `RAMInBytes` syntax), enforced after each build.
    #[serde(default)]
    pub max_store_size: Option<String>,
    /// Registries (`host` or `host:port`) reached over plain HTTP, as
    /// `--insecure-registry` does.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
}

impl StoreConfig {
    /// Reads `<root>/config.json`; the default when there is none.
    pub fn load(root: &Path) -> Result<StoreConfig> {
        let path = root.join(CONFIG_FILE);
        match fs::read(&path) {
            Ok(bytes) => crate::image::decode_json(&bytes)
                .map_err(|source| Error::CorruptFile { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreConfig::default()),
            Err(e) => Err(Error::fs("read", &path)(e)),
        }
    }

    /// The size cap in bytes, if one is set.
    pub fn max_store_size(&self, root: &Path) -> Result<Option<u64>> {
        self.max_store_size
            .as_deref()
            .map(|text| {
                crate::parser::instructions::values::ram_in_bytes(text).ok_or_else(|| {
                    Error::InvalidSetting {
                        path: root.join(CONFIG_FILE),
                        key: "maxStoreSize",
                        value: text.to_owned(),
                    }
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::store_with_image;
    use crate::store::ImageName;

    #[test]
    fn roots_reach_manifest_config_layers_and_chains() {
        let (_dir, store, desc) = store_with_image(b"layer");
        assert_eq!(store.image_roots(&[]).unwrap(), ImageRoots::default());
        store
            .set_name(&ImageName::parse("a:1").unwrap(), &desc)
            .unwrap();
        let roots = store.image_roots(&[]).unwrap();
        assert_eq!(roots.images, 1);
        // manifest, config, layer
        assert_eq!(roots.blobs.len(), 3);
        assert!(roots.blobs.contains(&desc.digest));
        assert!(roots.blobs.contains(&Digest::of(b"layer")));
        assert_eq!(
            roots.chains,
            BTreeSet::from([Digest::of(b"layer")]),
            "one layer: its chain ID is its diff ID"
        );
        // An unnamed image passed as extra counts too.
        assert_eq!(store.image_roots(&[desc]).unwrap().images, 2);
    }

    #[test]
    fn roots_of_an_index_include_its_children() {
        let (_dir, store, child) = store_with_image(b"layer");
        let index = Index {
            manifests: vec![child.clone()],
            ..Index::default()
        };
        let bytes = crate::image::canonical_json(&index).unwrap();
        let (digest, size) = store.put_bytes(&bytes).unwrap();
        let desc = Descriptor::new(media_types::OCI_INDEX.to_owned(), digest, size);
        let roots = store.image_roots(&[desc]).unwrap();
        assert_eq!(roots.blobs.len(), 4);
        assert!(roots.blobs.contains(&child.digest));
    }

    #[test]
    fn config_file_sets_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(StoreConfig::load(root).unwrap(), StoreConfig::default());
        fs::write(root.join(CONFIG_FILE), br#"{"maxStoreSize": "10GiB"}"#).unwrap();
        let config = StoreConfig::load(root).unwrap();
        assert_eq!(config.max_store_size(root).unwrap(), Some(10 << 30));
        fs::write(root.join(CONFIG_FILE), br#"{"maxStoreSize": "ten"}"#).unwrap();
        let err = StoreConfig::load(root)
            .unwrap()
            .max_store_size(root)
            .unwrap_err();
        assert!(err.to_string().contains("maxStoreSize"), "{err}");
        fs::write(root.join(CONFIG_FILE), b"{").unwrap();
        assert!(StoreConfig::load(root).is_err());
    }

    #[test]
    fn gc_lock_excludes_prune_while_builds_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let build = store.gc_shared().unwrap();
        let other_build = store.try_gc_shared().unwrap();
        assert!(other_build.is_some(), "builds share the lock");
        assert!(store.try_gc_exclusive().unwrap().is_none());
        drop((build, other_build));
        let prune = store.try_gc_exclusive().unwrap();
        assert!(prune.is_some());
        assert!(store.try_gc_shared().unwrap().is_none());
    }

    #[test]
    fn touching_a_snapshot_leaves_its_directory_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let chain = Digest::of(b"chain");
        fs::create_dir(store.snapshot_path(&chain)).unwrap();
        let before = fs::metadata(store.snapshot_path(&chain))
            .unwrap()
            .modified()
            .unwrap();
        store.touch_snapshot(&chain);
        assert!(store.snapshot_used_path(&chain).is_file());
        let after = fs::metadata(store.snapshot_path(&chain))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
    }
}
