//! Root-scoped path resolution, the one implementation that the applier, COPY, ADD,
//! WORKDIR and USER lookup share.
//!
//! Two tools:
//! - [`resolve_in_root`] follows symlinks *as if `root` were `/`*: absolute link targets
//!   restart at `root`, `..` stops at `root`. It returns a host path under `root`. It is
//!   path-based, so it trusts that nothing else changes the tree meanwhile (true for a
//!   build step's own rootfs between RUN steps).
//! - [`DirWalker`] opens directories below a root by descriptor without following *any*
//!   symlink (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`, or `O_NOFOLLOW` opens
//!   component by component where `openat2` is unavailable). The applier writes only
//!   through such descriptors, so no write can follow a symlink already in the target.
//!
//! [`remove_tree`] deletes a directory tree through descriptors, never following a
//! symlink either; it and [`unlink_beneath`] act on one entry of the directory they are
//! given, refusing `.`, `..` and paths, so no removal can leave that directory.
//!
//! Tar entry names are normalised lexically by [`normalize`]: a leading `/` is dropped,
//! `.` is skipped, and a `..` that would climb above the root makes the name invalid.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::error::{Error, Result};
use crate::fs_error::FsError;

/// Symlinks followed before giving up, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINKS: u32 = 40;

/// Resolves `path` inside `root` as if `root` were the filesystem root and returns the
/// host path. Every symlink met on the way (and the final component too when
/// `follow_final`) is followed inside `root`; components that do not exist are kept
/// as they are, so the result can name something to create.
pub fn resolve_in_root(root: &Path, path: &Path, follow_final: bool) -> Result<PathBuf> {
    let mut todo: VecDeque<OsString> = components(path.as_os_str());
    let mut stack: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            stack.pop();
            continue;
        }
        stack.push(c);
        if todo.is_empty() && !follow_final {
            break;
        }
        let host: PathBuf = root.join(stack.iter().collect::<PathBuf>());
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.raw_os_error() == Some(libc_enotdir()) => continue,
            Err(e) => return Err(Error::fs("stat", host)(e)),
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINKS {
            return Err(Error::SymlinkLoop {
                root: root.to_path_buf(),
                path: path.to_path_buf(),
            });
        }
        let target = fs::read_link(&host).map_err(Error::fs("read symlink", &host))?;
        stack.pop();
        if target.is_absolute() {
            stack.clear();
        }
        for c in components(target.as_os_str()).into_iter().rev() {
            todo.push_front(c);
        }
    }
    Ok(root.join(stack.iter().collect::<PathBuf>()))
}

fn libc_enotdir() -> i32 {
    Errno::NOTDIR.raw_os_error()
}

/// The components of `p` with `/` and `.` dropped and `..` kept as `..`.
fn components(p: &OsStr) -> VecDeque<OsString> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Normalises a tar entry name (or hardlink target) to components below the root, or
/// `None` when a `..` would climb above it. Absolute names become relative.
pub(crate) fn normalize(name: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Some(out)
}

/// Why a directory could not be opened by [`DirWalker::open_dir`].
#[derive(Debug)]
pub(crate) enum WalkError {
    /// A component is a symlink.
    Symlink,
    /// A component exists but is not a directory.
    NotDir,
    /// A component does not exist (and was not to be created).
    NotFound,
    /// Any other failure.
    Io(io::Error),
}

/// Opens directories below a root without following symlinks; caches the last one
/// (tar entries come sorted, so consecutive entries usually share a parent).
pub(crate) struct DirWalker {
    root: OwnedFd,
    cache: Option<(Vec<OsString>, OwnedFd)>,
    openat2: bool,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl DirWalker {
    /// A walker below `root` (which itself may be reached through symlinks).
    pub(crate) fn new(root: &Path) -> io::Result<Self> {
        let root = rfs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DirWalker {
            root,
            cache: None,
            openat2: true,
        })
    }

    /// The root directory.
    pub(crate) fn root(&self) -> &OwnedFd {
        &self.root
    }

    /// Forgets the cached directory: call after removing or replacing any directory.
    pub(crate) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Opens the directory `comps` below the root; with `create`, missing components are
    /// created (mode 0755, owner of the caller), as containerd does for implicit parents.
    pub(crate) fn open_dir(
        &mut self,
        comps: &[OsString],
        create: bool,
    ) -> Result<OwnedFd, WalkError> {
        if comps.is_empty() {
            return self.root.try_clone().map_err(WalkError::Io);
        }
        if let Some((key, fd)) = &self.cache {
            if key.as_slice() == comps {
                return fd.try_clone().map_err(WalkError::Io);
            }
        }
        let fd = match self.fast_open(comps) {
            Some(fd) => fd,
            None => self.slow_open(comps, create)?,
        };
        let cached = fd.try_clone().map_err(WalkError::Io)?;
        self.cache = Some((comps.to_vec(), cached));
        Ok(fd)
    }

    /// One `openat2` for the whole path; `None` when it fails for any reason (the slow
    /// walk then classifies the failure or creates what is missing).
    fn fast_open(&mut self, comps: &[OsString]) -> Option<OwnedFd> {
        if !self.openat2 {
            return None;
        }
        let joined: OsString = comps.join(OsStr::new("/"));
        let resolve =
            ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rfs::openat2(
            &self.root,
            Path::new(&joined),
            DIR_FLAGS,
            Mode::empty(),
            resolve,
        ) {
            Ok(fd) => Some(fd),
            Err(Errno::NOSYS | Errno::PERM | Errno::INVAL) => {
                self.openat2 = false; // kernel < 5.6 or a seccomp filter
                None
            }
            Err(_) => None,
        }
    }

    fn slow_open(&self, comps: &[OsString], create: bool) -> Result<OwnedFd, WalkError> {
        let mut fd = self.root.try_clone().map_err(WalkError::Io)?;
        for c in comps {
            let next = match rfs::openat(&fd, c.as_os_str(), DIR_FLAGS, Mode::empty()) {
                Ok(next) => next,
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(&fd, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(WalkError::Io(e.into())),
                    }
                    rfs::openat(&fd, c.as_os_str(), DIR_FLAGS, Mode::empty())
                        .map_err(|e| classify(&fd, c, e))?
                }
                Err(e) => return Err(classify(&fd, c, e)),
            };
            fd = next;
        }
        Ok(fd)
    }
}

/// Turns a failed `O_NOFOLLOW | O_DIRECTORY` open into a [`WalkError`].
fn classify(dir: &OwnedFd, name: &OsStr, e: Errno) -> WalkError {
    match e {
        Errno::NOENT => WalkError::NotFound,
        Errno::LOOP | Errno::NOTDIR => match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                WalkError::Symlink
            }
            _ => WalkError::NotDir,
        },
        e => WalkError::Io(e.into()),
    }
}

/// The names in an open directory (without `.` and `..`).
pub(crate) fn list_dir(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

/// Whether `name` names one entry of a directory: not empty, not `.` or `..`, no `/`.
/// Only such a name, taken relative to a directory descriptor, stays inside it.
pub(crate) fn is_entry_name(name: &[u8]) -> bool {
    !matches!(name, b"" | b"." | b"..") && !name.contains(&b'/')
}

/// `name` if it names one entry of a directory, else an `InvalidInput` error.
fn entry_name(name: &OsStr) -> io::Result<&OsStr> {
    if is_entry_name(name.as_bytes()) {
        Ok(name)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not one entry of a directory: nothing removed"),
        ))
    }
}

/// Unlinks the non-directory `parent/name`. Nothing but that entry can be removed:
/// `name` must be one entry's name (never `.`, `..` or a path).
pub(crate) fn unlink_beneath(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    Ok(rfs::unlinkat(parent, entry_name(name)?, AtFlags::empty())?)
}

/// Removes the directory `parent/name` and everything in it, never following symlinks
/// and never acting on anything but that entry (`name` checked as by
/// [`unlink_beneath`]).
pub(crate) fn remove_tree(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let name = entry_name(name)?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = rfs::openat(parent, name, flags, Mode::empty())?;
    for child in list_dir(&dir)? {
        let st = rfs::statat(&dir, &child, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            remove_tree(&dir, &child)?;
        } else {
            unlink_beneath(&dir, &child)?;
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn normalize_clamps_nothing_and_refuses_escapes() {
        let n =
            |s: &str| normalize(s.as_bytes()).map(|v| PathBuf::from_iter(v).display().to_string());
        assert_eq!(n("/etc/./passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(n("a/../b/").as_deref(), Some("b"));
        assert_eq!(n("./").as_deref(), Some(""));
        assert_eq!(n("../x"), None);
        assert_eq!(n("a/../../x"), None);
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/etc", root.join("abs")).unwrap(); // means <root>/etc, never the host's
        symlink("../../../..", root.join("usr/up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let r = |p: &str, follow| resolve_in_root(root, Path::new(p), follow).unwrap();
        assert_eq!(r("/lib/x.so", true), root.join("usr/lib/x.so"));
        assert_eq!(r("lib", false), root.join("lib"));
        assert_eq!(r("lib", true), root.join("usr/lib"));
        assert_eq!(r("/abs/passwd", true), root.join("etc/passwd"));
        assert_eq!(r("/usr/up/etc", true), root.join("etc"));
        assert_eq!(r("../../missing/../a", true), root.join("a"));
        assert!(matches!(
            resolve_in_root(root, Path::new("/loop/x"), true),
            Err(Error::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn walker_never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("real/sub")).unwrap();
        fs::write(root.join("file"), "").unwrap();
        symlink(t.path(), root.join("out")).unwrap();
        symlink("real", root.join("inner")).unwrap();
        let mut w = DirWalker::new(&root).unwrap();
        let c = |s: &str| s.split('/').map(OsString::from).collect::<Vec<_>>();
        assert!(w.open_dir(&c("real/sub"), false).is_ok());
        assert!(matches!(
            w.open_dir(&c("out/x"), true),
            Err(WalkError::Symlink)
        ));
        assert!(matches!(
            w.open_dir(&c("inner"), false),
            Err(WalkError::Symlink)
        ));
        assert!(matches!(
            w.open_dir(&c("file/x"), true),
            Err(WalkError::NotDir)
        ));
        assert!(matches!(
            w.open_dir(&c("new"), false),
            Err(WalkError::NotFound)
        ));
        w.open_dir(&c("new/deep"), true).unwrap();
        assert!(root.join("new/deep").is_dir());
        assert!(!t.path().join("x").exists());
        w.openat2 = false; // the component-by-component path behaves the same
        w.invalidate();
        assert!(matches!(
            w.open_dir(&c("out/x"), true),
            Err(WalkError::Symlink)
        ));
        assert!(w.open_dir(&c("real/sub"), false).is_ok());
    }
}
