//! Opening a context file for reading after the walk, safely: a context is a directory
//! anyone with write access to it can change while a build runs, so a path the walk
//! saw as a regular file may since have become a symlink to a host file, a FIFO, or a
//! directory swapped for a symlink higher up.
//!
//! [`open_beneath`] resolves the path below the context's directory fd and never
//! through a symlink (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; on
//! kernels without it, one `O_NOFOLLOW` open per component), without blocking on a
//! FIFO; [`check_unchanged`] then requires the opened file to be the one the walk saw
//! (same device, inode, size and mtime), so no other bytes are ever read.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use super::Stat;
use rustix::fs::{openat, openat2, Mode, OFlags, ResolveFlags};

/// Opens `rel` (`a/b/c`, relative) below directory `root` for reading.
pub fn open_beneath(root: impl AsFd, rel: impl AsRef<Path>) -> io::Result<File> {
    let rel = rel.as_ref();
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match openat2(&root, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::NOSYS) => open_by_components(root, rel, flags),
        Err(e) => Err(e.into()),
    }
}

/// The fallback of [`open_beneath`]: each directory opened with `O_NOFOLLOW`, `..` and
/// absolute paths refused.
fn open_by_components(root: impl AsFd, rel: &Path, flags: OFlags) -> io::Result<File> {
    let mut parts = Vec::new();
    for part in rel.components() {
        match part {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::from_raw_os_error(libc::EXDEV));
            }
        }
    }
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir: Option<OwnedFd> = None;
    let Some((last, dirs)) = parts.split_last() else {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    };
    for part in dirs {
        let next = match &dir {
            Some(d) => openat(d, *part, dir_flags, Mode::empty())?,
            None => openat(&root, *part, dir_flags, Mode::empty())?,
        };
        dir = Some(next);
    }
    let fd = match &dir {
        Some(d) => openat(d, *last, flags, Mode::empty())?,
        None => openat(&root, *last, flags, Mode::empty())?,
    };
    Ok(File::from(fd))
}

/// Opens `rel` below `root` (see [`open_beneath`]) and checks that it is the file the
/// walk saw as `walked`; every way it can have changed is said as such.
pub fn open_unchanged(root: impl AsFd, rel: impl AsRef<Path>, walked: &Stat) -> io::Result<File> {
    let file = open_beneath(root, rel).map_err(|e| {
        let how = match e.raw_os_error() {
            Some(libc::ELOOP) => "it is now a symlink, which is not followed",
            Some(libc::ENOENT) => "it is gone",
            Some(libc::EXDEV) | Some(libc::ENOTDIR) => {
                "a directory on its path is now a symlink or a file"
            }
            _ => return e,
        };
        io::Error::other(format!("it changed during the build: {how}"))
    })?;
    check_unchanged(&file, walked)?;
    Ok(file)
}

/// Fails unless `file` is the regular file the walk saw as `walked`.
pub fn check_unchanged(file: &File, walked: &Stat) -> io::Result<()> {
    let now = file.metadata()?;
    let same = now.is_file()
        && now.dev() == walked.dev()
        && now.ino() == walked.ino()
        && now.len() == walked.len()
        && (now.mtime(), now.mtime_nsec()) == (walked.mtime(), walked.mtime_nsec());
    if same {
        Ok(())
    } else {
        Err(io::Error::other(
            "it changed during the build (replaced, moved or written to since the context was \
             read); build again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn root_fd(dir: &std::path::Path) -> File {
        File::open(dir).unwrap()
    }

    #[test]
    fn opens_below_the_root_and_never_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("d")).unwrap();
        fs::write(ctx.join("d/f"), "in").unwrap();
        fs::write(t.path().join("secret"), "host").unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("link")).unwrap();
        std::os::unix::fs::symlink(t.path(), ctx.join("dirlink")).unwrap();
        let root = root_fd(&ctx);
        assert_eq!(
            io::read_to_string(open_beneath(&root, "d/f").unwrap()).unwrap(),
            "in"
        );
        assert!(open_beneath(&root, "link").is_err());
        assert!(open_beneath(&root, "dirlink/secret").is_err());
        assert!(open_beneath(&root, "../secret").is_err());
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let by_components = |rel: &str| open_by_components(&root, Path::new(rel), flags);
        assert!(by_components("d/f").is_ok());
        assert!(by_components("dirlink/secret").is_err());
        assert!(by_components("../secret").is_err());
        assert!(by_components("/etc/passwd").is_err());
        assert!(by_components("link").is_err());
        // A name that is not UTF-8 is opened by its bytes.
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"d/caf\xe9");
        fs::write(ctx.join(odd), "odd").unwrap();
        assert!(open_by_components(&root, Path::new(odd), flags).is_ok());
        assert!(open_beneath(&root, odd).is_ok());
    }

    #[test]
    fn a_file_replaced_after_the_walk_is_refused() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("f"), "one").unwrap();
        let walked = Stat::from(fs::symlink_metadata(t.path().join("f")).unwrap());
        let root = root_fd(t.path());
        check_unchanged(&open_beneath(&root, "f").unwrap(), &walked).unwrap();
        fs::remove_file(t.path().join("f")).unwrap();
        fs::write(t.path().join("f"), "two").unwrap();
        let err = check_unchanged(&open_beneath(&root, "f").unwrap(), &walked).unwrap_err();
        assert!(
            err.to_string().contains("changed during the build"),
            "{err}"
        );
    }
}
