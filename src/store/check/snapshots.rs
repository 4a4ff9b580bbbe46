//! Snapshots: each `snapshots/<chain>/` must have a valid sidecar (`<chain>.json`)
//! whose chain ID follows from its parent and diff ID, the fingerprint taken at commit,
//! and, recomputed from the directory in overlay form with the layers module's tar
//! writer (`upperdir_changes` minus the sidecar's skipped copy-ups, `write_tar` with
//! the sidecar's mtime clamp, SHA-256 of the uncompressed tar), the layer's diff ID.
//!
//! Repair removes a bad snapshot under its lock (a build rebuilds it from its blob);
//! one whose lock a build holds is left alone. A sidecar without a directory is a
//! leftover of a commit that crashed before its rename.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{removal, Finding, Report};
use crate::digest::{Digest, Hasher};
use crate::fs_error::FsError;
use crate::image::Descriptor;
use crate::layers::{upperdir_changes, write_tar, Change, ChangeSet, TarOptions};
use crate::store::error::{Error, Result};
use crate::store::layout::SNAPSHOTS_DIR;
use crate::store::lock::FileLock;
use crate::store::{fingerprint, read_sidecar, Sidecar, SnapshotMeta, Store};

pub(super) fn check(store: &Store, repair: bool, report: &mut Report) -> Result<()> {
    let dir = store.root().join(SNAPSHOTS_DIR);
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).map_err(Error::fs("read directory", &dir))? {
        let entry = entry.map_err(Error::fs("read directory", &dir))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        names.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    names.sort();
    let layers = super::applied::layers_by_diff_id(store);
    let dirs: HashSet<&str> = names
        .iter()
        .filter(|(_, d)| *d)
        .map(|(n, _)| n.as_str())
        .collect();
    for (name, is_dir) in &names {
        let path = dir.join(name);
        let chain = format!("sha256:{}", name.trim_end_matches(".json"))
            .parse::<Digest>()
            .ok();
        match (chain, is_dir, name.strip_suffix(".json")) {
            (Some(chain), true, None) => {
                report.checked.snapshots += 1;
                if let Err(problem) = verify(store, &chain, &layers) {
                    let mut f = Finding::damage("snapshot", chain.to_string(), &path, problem);
                    if repair {
                        f = f.repaired(discard(store, &chain)?);
                    }
                    report.findings.push(f);
                }
            }
            (Some(chain), false, Some(hex)) if !dirs.contains(hex) => {
                let problem = "sidecar without its snapshot (a commit was interrupted)";
                let mut f = Finding::leftover("snapshot", chain.to_string(), &path, problem.into());
                if repair {
                    f = f.repaired(remove_sidecar(store, &chain, &path)?);
                }
                report.findings.push(f);
            }
            (Some(_), false, Some(_)) => {} // a sidecar, checked with its snapshot
            // Garbage collection's last-use marks (`<chain-hex>.used`, on main): theirs.
            _ if !*is_dir && is_gc_mark(name) => {}
            _ => {
                let problem = "not a snapshot or a snapshot sidecar".to_owned();
                let mut f = Finding::damage("snapshot", name.clone(), &path, problem);
                if repair {
                    f = f.repaired(removal(&path));
                }
                report.findings.push(f);
            }
        }
    }
    Ok(())
}

/// Verifies snapshot `chain` against its sidecar; the problem if any. `layers`: the
/// layer blobs of the store's images by diff ID, for snapshots of layers other tools
/// wrote (see `applied.rs`).
fn verify(
    store: &Store,
    chain: &Digest,
    layers: &HashMap<Digest, Descriptor>,
) -> std::result::Result<(), String> {
    let meta = match read_sidecar(&store.snapshot_sidecar_path(chain)) {
        Ok(Sidecar::Valid(meta)) => meta,
        Ok(Sidecar::Missing) => return Err("no sidecar: the snapshot cannot be verified".into()),
        Ok(Sidecar::Invalid(why)) => return Err(format!("sidecar is not valid: {why}")),
        Err(e) => return Err(e.to_string()),
    };
    if meta.chain_id != *chain || !meta.chain_is_consistent() {
        return Err(format!(
            "sidecar names chain {} (parent {:?}, diff ID {}): not this snapshot's",
            meta.chain_id, meta.parent, meta.diff_id
        ));
    }
    let path = store.snapshot_path(chain);
    let print = fingerprint(&path, meta.fingerprint_version()).map_err(|e| e.to_string())?;
    if print.digest != meta.fingerprint {
        return Err(format!(
            "modified since it was made: fingerprint of {} entries differs from the {} recorded",
            print.entries, meta.entries
        ));
    }
    let actual = diff_id(&path, &meta).map_err(|e| format!("cannot recompute its diff ID: {e}"))?;
    if actual == meta.diff_id {
        return Ok(());
    }
    match layers.get(&meta.diff_id) {
        Some(layer) => super::applied::verify_against(store, &path, &meta.diff_id, layer),
        None => Err(format!(
            "content does not match its layer: diff ID {actual}, expected {}",
            meta.diff_id
        )),
    }
}

/// The diff ID of the layer the snapshot directory holds (see the module doc).
pub(crate) fn diff_id(dir: &Path, meta: &SnapshotMeta) -> crate::layers::Result<Digest> {
    let set = upperdir_changes(dir)?;
    let skip: HashSet<PathBuf> = meta.skip_paths().into_iter().collect();
    let set = if skip.is_empty() {
        set
    } else {
        let kept: Vec<Change> = set
            .changes()
            .iter()
            .filter(|c| !skip.contains(&c.path))
            .cloned()
            .collect();
        ChangeSet::new(dir.to_path_buf(), kept)
    };
    let opts = TarOptions {
        source_date_epoch: meta.source_date_epoch,
    };
    let mut out = BufWriter::with_capacity(256 * 1024, Hasher::new(std::io::sink()));
    write_tar(&set, &opts, &mut out)?;
    out.flush()
        .map_err(|source| crate::layers::Error::WriteBlob { source })?;
    let hasher = out
        .into_inner()
        .map_err(|e| crate::layers::Error::WriteBlob {
            source: e.into_error(),
        })?;
    Ok(hasher.finish().0)
}

/// Removes a bad snapshot unless a build holds its lock.
fn discard(store: &Store, chain: &Digest) -> Result<String> {
    let Some(_lock) = FileLock::try_exclusive(&store.snapshot_lock_path(chain))? else {
        return Ok("left alone: a running build holds its lock".into());
    };
    store.discard_snapshot(chain)?;
    Ok("removed (a build re-makes it from its blob)".into())
}

/// Removes a sidecar without a snapshot unless a commit of that chain is under way.
fn remove_sidecar(store: &Store, chain: &Digest, path: &Path) -> Result<String> {
    let Some(_lock) = FileLock::try_exclusive(&store.snapshot_lock_path(chain))? else {
        return Ok("left alone: a running build holds its lock".into());
    };
    if store.has_snapshot(chain) {
        return Ok("left alone: its snapshot was committed meanwhile".into());
    }
    Ok(removal(path))
}

/// Whether `name` is `<chain-hex>.used`, the last-use mark garbage collection keeps.
fn is_gc_mark(name: &str) -> bool {
    name.strip_suffix(".used")
        .is_some_and(|hex| format!("sha256:{hex}").parse::<Digest>().is_ok())
}
