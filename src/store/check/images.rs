//! Images: `index.json` parses, and every entry reaches only present, intact blobs
//! of the sizes its descriptors say: a manifest's config and layers, an index's
//! children (nested up to [`MAX_DEPTH`]).
//!
//! Repair: a torn `index.json` is moved aside (`index.json.broken-<id>`, kept for a
//! human) and replaced by an empty index; an entry that reaches a missing or damaged
//! blob is removed from `index.json` (the image must be built again).

use std::fs;

use super::{Finding, Report};
use crate::fs_error::FsError;
use crate::image::{media_types, Descriptor, Index, Manifest};
use crate::store::error::{Error, Result};
use crate::store::layout::{self, INDEX_FILE, INDEX_LOCK};
use crate::store::lock::FileLock;
use crate::store::{Store, REF_NAME_ANNOTATION};

/// How deep nested indexes are followed.
const MAX_DEPTH: usize = 8;

pub(super) fn check(store: &Store, repair: bool, report: &mut Report) -> Result<()> {
    let path = store.root().join(INDEX_FILE);
    let bytes = fs::read(&path).map_err(Error::fs("read", &path))?;
    let index: Index = match crate::image::decode_json(&bytes) {
        Ok(index) => index,
        Err(e) => {
            let mut f = Finding::damage(
                "layout",
                INDEX_FILE,
                &path,
                format!("not a valid index: {e}"),
            );
            if repair {
                f = f.repaired(replace_index(store)?);
            }
            report.findings.push(f);
            return Ok(());
        }
    };
    let mut broken = Vec::new();
    for entry in &index.manifests {
        report.checked.images += 1;
        if let Err(problem) = check_descriptor(store, report, entry, 0) {
            let name = entry_label(entry);
            let mut f = Finding::damage("image", name, &path, problem);
            if repair {
                f = f.repaired("name removed from index.json (build the image again)");
            }
            report.findings.push(f);
            broken.push(entry.clone());
        }
    }
    if repair && !broken.is_empty() {
        store.update_index(|index| {
            index.manifests.retain(|d| !broken.contains(d));
            Ok(())
        })?;
    }
    Ok(())
}

/// The name of an index entry, or its digest when it has none.
fn entry_label(entry: &Descriptor) -> String {
    entry
        .annotations
        .get(REF_NAME_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| entry.digest.to_string())
}

/// Checks the blob of `desc` and what it refers to; the first problem found.
fn check_descriptor(
    store: &Store,
    report: &Report,
    desc: &Descriptor,
    depth: usize,
) -> std::result::Result<(), String> {
    report.image_blob_ok(&desc.digest, desc.size)?;
    let what = if media_types::is_manifest(&desc.media_type) {
        "manifest"
    } else if media_types::is_index(&desc.media_type) {
        "index"
    } else {
        return Ok(());
    };
    if depth >= MAX_DEPTH {
        return Err(format!("indexes nested more than {MAX_DEPTH} deep"));
    }
    let bytes = store
        .read_blob(&desc.digest)
        .map_err(|e| format!("{what} {}: {e}", desc.digest))?;
    let invalid = |e: crate::image::JsonError| format!("{what} {} is not valid: {e}", desc.digest);
    if what == "manifest" {
        let manifest: Manifest = crate::image::decode_json(&bytes).map_err(invalid)?;
        report
            .image_blob_ok(&manifest.config.digest, manifest.config.size)
            .map_err(|e| format!("config: {e}"))?;
        for (i, layer) in manifest.layers.iter().enumerate() {
            report
                .image_blob_ok(&layer.digest, layer.size)
                .map_err(|e| format!("layer {}: {e}", i + 1))?;
        }
    } else {
        let index: Index = crate::image::decode_json(&bytes).map_err(invalid)?;
        for child in &index.manifests {
            check_descriptor(store, report, child, depth + 1)
                .map_err(|e| format!("{} in index {}: {e}", child.digest, desc.digest))?;
        }
    }
    Ok(())
}

/// Moves a torn `index.json` aside and writes an empty one, under the index lock.
fn replace_index(store: &Store) -> Result<String> {
    let _lock = FileLock::exclusive(&store.root().join(INDEX_LOCK))?;
    let path = store.root().join(INDEX_FILE);
    let aside = store.root().join(layout::unique_name("index.json.broken"));
    fs::rename(&path, &aside).map_err(Error::fs("move aside", &path))?;
    let bytes = layout::encode(&Index::default(), "index.json")?;
    layout::write_atomic(store.work_dir(), &path, &bytes)?;
    Ok(format!(
        "replaced by an empty index (image names lost); the broken file is `{}`",
        aside.display()
    ))
}
