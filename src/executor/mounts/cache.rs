//! `RUN --mount=type=cache`: directories kept in the store between builds, under
//! `<store>/cache/mounts/<sha256 of the key>`.
//!
//! The key is the cache id; with `from=` it also names what seeds the cache (the
//! source stage's or image's top snapshot and the `source=` path), as BuildKit keys a
//! cache with a base by the base too. A new directory is made in a temporary place and
//! renamed, so two builds creating the same cache at once agree on one directory.
//!
//! Sharing: `shared` lets concurrent steps use the directory together; `locked`
//! makes them wait for each other (an exclusive `flock` on `<dir>.lock`, taken for all
//! of a step's locked caches up front in sorted order, so no two steps deadlock); `private`
//! gives a step that finds the directory in use a directory of its own (`<dir>-1`,
//! `<dir>-2`, ..., each kept for later private users), as BuildKit does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::super::error::ExecError;
use crate::digest::Digest;
use crate::parser::instructions::values::{Mount as MountSpec, Sharing};
use crate::store::{FileLock, Store};

/// A cache directory ready to mount, and the lock held for the step (if any).
pub(super) struct CacheDir {
    pub path: PathBuf,
    /// Whether the directory was made for this step (a `from=` seed must be copied in).
    pub created: bool,
    pub lock: Option<FileLock>,
}

/// Where the cache `spec` lives; `seed` names what seeds it (`from=`).
pub(super) fn dir_for(
    store: &Store,
    spec: &MountSpec,
    seed: Option<&str>,
) -> Result<PathBuf, ExecError> {
    let base = store.cache_dir().join("mounts");
    fs::create_dir_all(&base).map_err(ExecError::fs("cannot create", &base))?;
    let mut key = spec.cache_id();
    if let Some(seed) = seed {
        key.push('\0');
        key.push_str(seed);
    }
    Ok(base.join(Digest::of(key.as_bytes()).hex()))
}

/// Takes the locks of `locked` cache directories in one global order (sorted, each
/// once), so steps that lock several caches cannot deadlock each other.
pub(super) fn lock_all(mut dirs: Vec<PathBuf>) -> Result<Vec<FileLock>, ExecError> {
    dirs.sort();
    dirs.dedup();
    dirs.iter()
        .map(|d| Ok(FileLock::exclusive(&d.with_extension("lock"))?))
        .collect()
}

/// The directory for the cache `spec`; `seed` names what seeds it (`from=`). A
/// `locked` cache must already be locked by the caller ([`lock_all`]).
pub(super) fn open(
    store: &Store,
    spec: &MountSpec,
    seed: Option<&str>,
) -> Result<CacheDir, ExecError> {
    let dir = dir_for(store, spec, seed)?;
    let (path, lock) = match spec.sharing_mode() {
        Sharing::Shared | Sharing::Locked => (dir, None),
        Sharing::Private => private(&dir)?,
    };
    let created = ensure(&path, spec)?;
    Ok(CacheDir {
        path,
        created,
        lock,
    })
}

/// The first of `dir`, `dir-1`, `dir-2`, ... that no other step holds.
fn private(dir: &Path) -> Result<(PathBuf, Option<FileLock>), ExecError> {
    for n in 0u32.. {
        let candidate = if n == 0 {
            dir.to_path_buf()
        } else {
            PathBuf::from(format!("{}-{n}", dir.display()))
        };
        if let Some(lock) = FileLock::try_exclusive(&candidate.with_extension("lock"))? {
            return Ok((candidate, Some(lock)));
        }
    }
    Err(ExecError::Internal {
        what: "no free private cache directory",
    })
}

/// Makes the cache directory (mode, owner from the mount) unless it exists; returns
/// whether it was made now.
fn ensure(dir: &Path, spec: &MountSpec) -> Result<bool, ExecError> {
    if dir.is_dir() {
        return Ok(false);
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let tmp = tempfile::Builder::new()
        .prefix(".new-")
        .tempdir_in(parent)
        .map_err(ExecError::fs("cannot create cache mount in", parent))?;
    let mode = spec.file_mode().unwrap_or(0o755);
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
        .map_err(ExecError::fs("cannot set mode of", tmp.path()))?;
    std::os::unix::fs::lchown(
        tmp.path(),
        Some(spec.uid.unwrap_or(0)),
        Some(spec.gid.unwrap_or(0)),
    )
    .map_err(ExecError::fs("cannot change owner of", tmp.path()))?;
    let made = tmp.keep();
    match fs::rename(&made, dir) {
        Ok(()) => Ok(true),
        // Another build made it first: use theirs.
        Err(_) if dir.is_dir() => {
            let _ = fs::remove_dir(&made);
            Ok(false)
        }
        Err(e) => {
            let _ = fs::remove_dir(&made);
            Err(ExecError::fs("cannot create cache mount", dir)(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::instructions::values::parse_mount;

    #[test]
    fn private_caches_do_not_share_while_in_use() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let spec = parse_mount("type=cache,target=/c,sharing=private").unwrap();
        let a = open(&store, &spec, None).unwrap();
        let b = open(&store, &spec, None).unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.created && b.created);
        let a_path = a.path.clone();
        drop(a);
        let c = open(&store, &spec, None).unwrap();
        assert_eq!(c.path, a_path, "a released private cache is reused");
        assert!(!c.created);
    }

    #[test]
    fn shared_caches_and_seeds() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let spec = parse_mount("type=cache,target=/c,mode=0700,uid=7,gid=8").unwrap();
        let a = open(&store, &spec, None).unwrap();
        let b = open(&store, &spec, None).unwrap();
        assert_eq!(a.path, b.path);
        assert!(a.created && !b.created);
        let meta = fs::metadata(&a.path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.uid(), meta.gid()), (7, 8));
        let seeded = open(&store, &spec, Some("stage-chain:/src")).unwrap();
        assert_ne!(seeded.path, a.path);
    }
}
