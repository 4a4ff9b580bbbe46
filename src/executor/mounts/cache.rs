//! `RUN --mount=type=cache`: directories kept in the store between builds, under
//! `<store>/cache/mounts/<sha256 of the key>`.
//!
//! The key is the cache id; with `from=` it also names what seeds the cache (the
//! source stage's or image's top snapshot and the `source=` path), as BuildKit keys a
//! cache with a base by the base too. A new directory is made complete (mode, owner,
//! seed) in the process's work dir and renamed into place only if nothing is there
//! (`RENAME_NOREPLACE`): of several steps or builds creating the same cache at once,
//! one publishes its directory and the others use it and drop theirs. A published
//! cache directory is never replaced or removed by a build: another step may already
//! hold it for its sandbox.
//!
//! `--no-cache` (and `--no-cache-filter` for its stages) starts each cache mount empty,
//! once per build at its first use, as BuildKit does, and what the build writes is
//! the cache from then on: a fresh directory is exchanged with the published one
//! (`RENAME_EXCHANGE`), and the old one is removed unless a step of another build
//! still has it mounted. Every step holds a shared `flock` on the directory it mounts
//! ([`InUse`]); the old directory is removed only under an exclusive one, and otherwise
//! left as `stale-*` beside the caches for the next `--no-cache` build (or `prune`).
//!
//! Sharing: `shared` lets concurrent steps use the directory together; `locked`
//! makes them wait for each other (an exclusive `flock` on `<dir>.lock`, taken for all
//! of a step's locked caches up front in sorted order, so no two steps deadlock); `private`
//! gives a step that finds the directory in use a directory of its own (`<dir>-1`,
//! `<dir>-2`, ..., each kept for later private users), as BuildKit does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{
    flock, open as open_fd, renameat_with, FlockOperation, Mode, OFlags, RenameFlags, CWD,
};
use rustix::io::Errno;

use super::super::error::ExecError;
use crate::digest::Digest;
use crate::executor::env::FreshCaches;
use crate::parser::instructions::values::{Mount as MountSpec, Sharing};
use crate::store::{FileLock, Store};

/// A cache directory ready to mount, and the locks held for the step.
pub(super) struct CacheDir {
    pub path: PathBuf,
    /// The sharing lock (`locked`, `private`).
    pub lock: Option<FileLock>,
    /// Marks the directory in use while the step runs.
    pub in_use: InUse,
}

/// A shared `flock` on a cache directory itself: while one is held, a `--no-cache`
/// build that replaces the directory leaves the old one alone.
pub(crate) struct InUse(#[allow(dead_code)] OwnedFd);

/// Takes `how` on the directory `dir` (`None`: a non-blocking lock is held by
/// another).
fn lock_dir(dir: &Path, how: FlockOperation) -> Result<Option<OwnedFd>, ExecError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let fd = open_fd(dir, flags, Mode::empty())
        .map_err(|e| ExecError::fs("cannot open cache directory", dir)(e.into()))?;
    match flock(&fd, how) {
        Ok(()) => Ok(Some(fd)),
        Err(Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(ExecError::fs("cannot lock cache directory", dir)(e.into())),
    }
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

/// The directory for the cache `spec`; `seed` names what seeds it (`from=`), and
/// `fill` seeds a new directory before it is published (not called when the directory
/// exists). With `fresh` (a `--no-cache` stage) a directory this build has not used
/// yet is replaced by a new one. A `locked` cache must already be locked by the caller
/// ([`lock_all`]).
pub(super) fn open(
    store: &Store,
    spec: &MountSpec,
    seed: Option<&str>,
    fresh: Option<&FreshCaches>,
    fill: impl FnOnce(&Path) -> Result<(), ExecError>,
) -> Result<CacheDir, ExecError> {
    let dir = dir_for(store, spec, seed)?;
    let (path, lock) = match spec.sharing_mode() {
        Sharing::Shared | Sharing::Locked => (dir, None),
        Sharing::Private => private(&dir)?,
    };
    // Held while replacing: a stage of this build that opens the cache meanwhile waits
    // and then uses the new directory.
    let mut fresh = fresh.map(|f| f.lock().unwrap_or_else(|e| e.into_inner()));
    let first_use = fresh.as_mut().is_some_and(|f| f.insert(path.clone()));
    if first_use && path.is_dir() {
        replace(store.work_dir(), &path, spec, fill)?;
    } else {
        ensure(store.work_dir(), &path, spec, fill)?;
    }
    let in_use = lock_dir(&path, FlockOperation::LockShared)?.ok_or(ExecError::Internal {
        what: "a blocking lock was refused",
    })?;
    Ok(CacheDir {
        path,
        lock,
        in_use: InUse(in_use),
    })
}

/// Exchanges the cache directory `dir` with a new one made as [`ensure`] makes it;
/// the old one is removed if no step holds it, else left as `stale-*` beside it.
fn replace(
    work: &Path,
    dir: &Path,
    spec: &MountSpec,
    fill: impl FnOnce(&Path) -> Result<(), ExecError>,
) -> Result<(), ExecError> {
    let new = prepared(work, spec, fill)?;
    renameat_with(CWD, new.path(), CWD, dir, RenameFlags::EXCHANGE)
        .map_err(|e| ExecError::fs("cannot replace cache mount", dir)(e.into()))?;
    // `new` now names the old directory.
    let parent = dir.parent().unwrap_or(work);
    sweep(parent, new);
    Ok(())
}

/// Removes `old` (and earlier `stale-*` directories of `mounts`) unless a step holds
/// it; keeps it as `mounts/stale-*` otherwise.
fn sweep(mounts: &Path, old: tempfile::TempDir) {
    let free = |dir: &Path| {
        matches!(
            lock_dir(dir, FlockOperation::NonBlockingLockExclusive),
            Ok(Some(_))
        )
    };
    if free(old.path()) {
        drop(old);
    } else {
        // A unique empty directory, which the rename replaces.
        let kept = tempfile::Builder::new().prefix("stale-").tempdir_in(mounts);
        if let Ok(kept) = kept {
            if fs::rename(old.path(), kept.path()).is_ok() {
                let _ = kept.keep();
                let _ = old.keep();
            }
        }
    }
    let Ok(entries) = fs::read_dir(mounts) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry.file_name().to_string_lossy().starts_with("stale-");
        if stale && free(&path) {
            let _ = fs::remove_dir_all(&path);
        }
    }
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

/// Makes the cache directory `dir` unless it exists: prepared in `work` (mode and
/// owner from the mount, then `fill`) and renamed into place.
///
/// The rename must not replace: a plain `rename` replaces an existing directory while
/// it is empty, and a cache another step has just made is empty until its command
/// writes. That step has already handed the path to its sandbox, which holds the
/// directory itself: attaching a replaced directory fails with ENOENT, and what a
/// running command writes into one is lost.
fn ensure(
    work: &Path,
    dir: &Path,
    spec: &MountSpec,
    fill: impl FnOnce(&Path) -> Result<(), ExecError>,
) -> Result<(), ExecError> {
    if dir.is_dir() {
        return Ok(());
    }
    let tmp = prepared(work, spec, fill)?;
    match renameat_with(CWD, tmp.path(), CWD, dir, RenameFlags::NOREPLACE) {
        Ok(()) => {
            // Published: nothing left to remove.
            let _ = tmp.keep();
            Ok(())
        }
        // Another step or build published it first: use theirs.
        Err(Errno::EXIST | Errno::NOTEMPTY) if dir.is_dir() => Ok(()),
        Err(e) => Err(ExecError::fs("cannot create cache mount", dir)(e.into())),
    }
}

/// A new cache directory in `work` (removed when dropped), with the mount's mode and
/// owner, filled by `fill`.
fn prepared(
    work: &Path,
    spec: &MountSpec,
    fill: impl FnOnce(&Path) -> Result<(), ExecError>,
) -> Result<tempfile::TempDir, ExecError> {
    let tmp = tempfile::Builder::new()
        .prefix("cache-mount-")
        .tempdir_in(work)
        .map_err(ExecError::fs("cannot create cache mount in", work))?;
    let mode = spec.file_mode().unwrap_or(0o755);
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
        .map_err(ExecError::fs("cannot set mode of", tmp.path()))?;
    std::os::unix::fs::lchown(
        tmp.path(),
        Some(spec.uid.unwrap_or(0)),
        Some(spec.gid.unwrap_or(0)),
    )
    .map_err(ExecError::fs("cannot change owner of", tmp.path()))?;
    fill(tmp.path())?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::instructions::values::parse_mount;

    /// A seed that leaves the file `name` in the new directory.
    fn mark(name: &str) -> impl FnOnce(&Path) -> Result<(), ExecError> + '_ {
        move |new: &Path| fs::write(new.join(name), "x").map_err(ExecError::fs("cannot write", new))
    }

    fn not_made(_: &Path) -> Result<(), ExecError> {
        panic!("an existing cache is not made again")
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn no_cache_starts_each_cache_afresh_once_per_build_and_keeps_one_in_use() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let spec = parse_mount("type=cache,target=/c").unwrap();
        let first = open(&store, &spec, None, None, mark("old")).unwrap();
        let path = first.path.clone();
        drop(first);
        // A --no-cache build: the first use gets an empty directory, the next step of
        // the same build the one the first wrote into.
        let fresh = FreshCaches::default();
        let a = open(&store, &spec, None, Some(&fresh), mark("new")).unwrap();
        assert_eq!(
            (a.path.clone(), entries(&a.path)),
            (path.clone(), vec!["new".into()])
        );
        fs::write(a.path.join("written"), "x").unwrap();
        let b = open(&store, &spec, None, Some(&fresh), not_made).unwrap();
        assert_eq!(entries(&b.path), ["new", "written"]);
        let mounts = path.parent().unwrap().to_owned();
        let stale = |dir: &Path| {
            entries(dir)
                .into_iter()
                .filter(|n| n.starts_with("stale-"))
                .count()
        };
        assert_eq!(stale(&mounts), 0, "the old directory was free: removed");
        // Another --no-cache build while a step still holds the directory: it is kept
        // aside, and removed by a later one once free.
        let held = fs::File::open(&b.path).unwrap();
        let other = FreshCaches::default();
        let c = open(&store, &spec, None, Some(&other), mark("third")).unwrap();
        assert_eq!(entries(&c.path), ["third"]);
        assert_eq!(stale(&mounts), 1, "in use: kept");
        assert_eq!(entries(&held_dir(&held)), ["new", "written"]);
        drop((a, b, c, held));
        let last = FreshCaches::default();
        open(&store, &spec, None, Some(&last), mark("fourth")).unwrap();
        assert_eq!(stale(&mounts), 0, "freed: swept");
    }

    /// The directory an open handle refers to, wherever it was moved.
    fn held_dir(file: &fs::File) -> PathBuf {
        use std::os::fd::AsRawFd;
        fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap()
    }

    #[test]
    fn private_caches_do_not_share_while_in_use() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let spec = parse_mount("type=cache,target=/c,sharing=private").unwrap();
        let a = open(&store, &spec, None, None, mark("a")).unwrap();
        let b = open(&store, &spec, None, None, mark("b")).unwrap();
        assert_ne!(a.path, b.path);
        assert_eq!(
            (entries(&a.path), entries(&b.path)),
            (vec!["a".into()], vec!["b".into()])
        );
        let a_path = a.path.clone();
        drop(a);
        let c = open(&store, &spec, None, None, not_made).unwrap();
        assert_eq!(c.path, a_path, "a released private cache is reused");
    }

    #[test]
    fn steps_opening_one_new_cache_at_once_all_get_the_same_directory() {
        // Parallel stages (or builds) open the same new shared cache at once. Each keeps
        // the directory it was given open, as its sandbox does between cloning the bind
        // source and attaching it: that directory must stay the cache, never be replaced
        // by another opener's (attaching a replaced directory fails with ENOENT).
        use std::os::unix::fs::MetadataExt;
        const THREADS: usize = 8;
        const ROUNDS: usize = 25;
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        for round in 0..ROUNDS {
            let spec = parse_mount(&format!("type=cache,id=race-{round},target=/c")).unwrap();
            let barrier = std::sync::Barrier::new(THREADS);
            let opened: Vec<(PathBuf, fs::File)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|i| {
                        let (store, spec, barrier) = (&store, &spec, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            let made = format!("made-by-{i}");
                            let dir = open(store, spec, None, None, mark(&made)).unwrap();
                            let held = fs::File::open(&dir.path).unwrap();
                            (dir.path, held)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let cache = fs::metadata(&opened[0].0).unwrap();
            for (path, held) in &opened {
                assert_eq!(path, &opened[0].0);
                let held = held.metadata().unwrap();
                assert!(
                    held.nlink() > 0 && held.ino() == cache.ino(),
                    "round {round}: an opener's directory was replaced"
                );
            }
            let made = entries(&opened[0].0);
            assert_eq!(made.len(), 1, "round {round}: one opener made it: {made:?}");
        }
        assert_eq!(
            entries(store.work_dir()),
            Vec::<String>::new(),
            "the others' removed"
        );
    }

    #[test]
    fn a_new_cache_is_published_seeded_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let spec = parse_mount("type=cache,target=/c").unwrap();
        let dir = dir_for(&store, &spec, Some("stage:/src")).unwrap();
        // A seed that fails (a failing stage cancels the copy) publishes nothing.
        let failed = open(&store, &spec, Some("stage:/src"), None, |new| {
            mark("half")(new)?;
            Err(ExecError::Interrupted)
        });
        assert!(matches!(failed, Err(ExecError::Interrupted)));
        assert!(!dir.exists(), "nothing published");
        assert_eq!(entries(store.work_dir()), Vec::<String>::new(), "nor left");

        let made = open(&store, &spec, Some("stage:/src"), None, |new| {
            assert!(!dir.exists(), "not visible half seeded");
            mark("seeded")(new)
        })
        .unwrap();
        assert_eq!(entries(&made.path), ["seeded"]);
        let again = open(&store, &spec, Some("stage:/src"), None, not_made).unwrap();
        assert_eq!(again.path, made.path);
    }

    #[test]
    fn shared_caches_and_seeds() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let spec = parse_mount("type=cache,target=/c,mode=0700,uid=7,gid=8").unwrap();
        let a = open(&store, &spec, None, None, mark("a")).unwrap();
        let b = open(&store, &spec, None, None, not_made).unwrap();
        assert_eq!(a.path, b.path);
        assert_eq!(entries(&a.path), ["a"]);
        let meta = fs::metadata(&a.path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.uid(), meta.gid()), (7, 8));
        let seeded = open(&store, &spec, Some("stage-chain:/src"), None, mark("s")).unwrap();
        assert_ne!(seeded.path, a.path);
    }
}
