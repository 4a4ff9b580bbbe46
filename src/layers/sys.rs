//! Thin system-call helpers for `layers/`: extended attributes, overlay mounting and
//! the per-thread filesystem context.
//!
//! This is the only file of the module with `unsafe` (one block, `unshare`), each with a
//! `// SAFETY:` comment. Everything else goes through `rustix`'s safe wrappers. Functions
//! here return plain `io::Result`; callers attach the path or entry to errors.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::mount as rmount;

/// Prefix of the xattrs overlayfs keeps for itself; never archived, never applied.
pub(crate) const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// The same in a user namespace, where `trusted.*` is out of reach and overlays are
/// mounted with `userxattr` (a rootless rbuild); never archived, never applied either,
/// also as root: a layer cannot bring overlay metadata into a rootless snapshot.
pub(crate) const USER_OVERLAY_XATTR_PREFIX: &[u8] = b"user.overlay.";

/// Whether overlays are mounted with `userxattr`: in a user namespace (a rootless
/// rbuild's, see [`crate::userns`]), whose snapshots mark opaque directories with
/// `user.overlay.opaque`.
pub(crate) fn user_xattrs() -> bool {
    crate::userns::in_user_namespace()
}

/// The xattr that marks an opaque directory in an overlay upperdir or snapshot.
pub(crate) fn opaque_xattr() -> &'static str {
    if user_xattrs() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// Prefix of rbuild's own bookkeeping xattrs (the native snapshotter's directory marks,
/// see `flatten.rs`); like overlayfs' own, never archived, copied or applied. `trusted.*`
/// needs `CAP_SYS_ADMIN`, which a `RUN` step does not have: it can neither read nor
/// forge them.
pub(crate) const RBUILD_XATTR_PREFIX: &[u8] = b"trusted.rbuild.";

/// The same in a user namespace, where `trusted.*` is out of reach. A step there can
/// set `user.*` xattrs on its own files, so it can forge a mark: the differ then diffs
/// that directory child by child instead of as opaque, which only changes the tar bytes
/// of the step's own layer, never what it holds.
pub(crate) const USER_RBUILD_XATTR_PREFIX: &[u8] = b"user.rbuild.";

/// The mark `flatten.rs` puts on each directory it copies: its path in the tree
/// (`user.rbuild.dir` in a user namespace).
pub(crate) fn dir_mark_xattr() -> &'static str {
    if user_xattrs() {
        "user.rbuild.dir"
    } else {
        "trusted.rbuild.dir"
    }
}

/// Whether xattr `name` is bookkeeping of overlayfs or rbuild rather than file content.
pub(crate) fn is_private_xattr(name: &[u8]) -> bool {
    [
        OVERLAY_XATTR_PREFIX,
        USER_OVERLAY_XATTR_PREFIX,
        RBUILD_XATTR_PREFIX,
        USER_RBUILD_XATTR_PREFIX,
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// Names of the xattrs of `path` (not following a final symlink), minus overlayfs' and
/// rbuild's own ([`is_private_xattr`]), sorted bytewise so that archives are
/// deterministic.
pub(crate) fn list_xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = grow(|buf| rfs::llistxattr(path, buf))?.unwrap_or_default();
    public_xattrs(&names, |name| get_xattr(path, name))
}

/// [`list_xattrs`] of an open file: no path walk (a layer of 100k files makes 100k of
/// these calls).
pub(crate) fn list_fd_xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = grow(|buf| rfs::flistxattr(fd, buf))?.unwrap_or_default();
    public_xattrs(&names, |name| grow(|buf| rfs::fgetxattr(fd, name, buf)))
}

/// The values of the NUL-separated xattr `names` that are not private, sorted by name;
/// a name gone meanwhile is left out.
fn public_xattrs(
    names: &[u8],
    mut get: impl FnMut(&OsStr) -> io::Result<Option<Vec<u8>>>,
) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if is_private_xattr(name) {
            continue;
        }
        if let Some(value) = get(OsStr::from_bytes(name))? {
            out.push((name.to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// The value of xattr `name` of `path` (not following a final symlink), if set.
pub(crate) fn get_xattr(path: &Path, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
    grow(|buf| rfs::lgetxattr(path, name, buf))
}

/// Calls an xattr getter with a growing buffer: `None` for `ENODATA`. (rustix hides the
/// size query of a zero-length buffer, so the buffer grows on `ERANGE` instead.)
fn grow(
    mut call: impl FnMut(&mut [u8]) -> Result<usize, rustix::io::Errno>,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match call(&mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(rustix::io::Errno::RANGE) if buf.len() < (1 << 26) => {
                let len = buf.len() * 4;
                buf.resize(len, 0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets xattr `name` on the object `name_in_dir` inside the directory `dir`, without
/// following a final symlink. Goes through `/proc/self/fd/<dir>/<name>` because Linux has
/// no `setxattrat` before 6.13 and symlinks/devices cannot be opened for `fsetxattr`.
pub(crate) fn set_xattr_at(
    dir: impl AsFd,
    name_in_dir: &OsStr,
    name: &[u8],
    value: &[u8],
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut p = OsString::from(format!("/proc/self/fd/{}/", dir.as_fd().as_raw_fd()));
    p.push(name_in_dir);
    rfs::lsetxattr(
        Path::new(&p),
        OsStr::from_bytes(name),
        value,
        rfs::XattrFlags::empty(),
    )?;
    Ok(())
}

/// Sets xattr `name` on `path`, not following a final symlink.
pub(crate) fn lset_xattr(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    rfs::lsetxattr(
        path,
        OsStr::from_bytes(name),
        value,
        rfs::XattrFlags::empty(),
    )?;
    Ok(())
}

/// Sets xattr `name` on an open file or directory.
pub(crate) fn fset_xattr(fd: impl AsFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    rfs::fsetxattr(fd, OsStr::from_bytes(name), value, rfs::XattrFlags::empty())?;
    Ok(())
}

/// Overlay options that keep the upperdir a self-contained diff (see DESIGN.md).
///
/// Every overlay is also mounted `volatile` (Linux 5.10+): `fsync`/`syncfs` inside the
/// step, and the unmount, do not flush the store's whole filesystem. Nothing is lost by
/// it: an upperdir becomes a snapshot, which is a cache of its layer blob (that blob is
/// fsynced); a snapshot a crash left incomplete fails its fingerprint at first use and is
/// made again from the blob (see `store/snapmeta.rs`).
const OVERLAY_FLAGS: [(&str, &str); 3] = [
    ("index", "off"),
    ("metacopy", "off"),
    ("redirect_dir", "off"),
];

/// [`OVERLAY_FLAGS`], but `redirect_dir=nofollow` with `userxattr` (which refuses
/// `follow`, what `off` means on a mount without upperdir): no redirect is created
/// or followed.
fn overlay_flags() -> [(&'static str, &'static str); 3] {
    let mut flags = OVERLAY_FLAGS;
    if user_xattrs() {
        flags[2] = ("redirect_dir", "nofollow");
    }
    flags
}

/// Outcome of trying the new mount API.
pub(crate) enum NewApi {
    /// Mounted.
    Mounted,
    /// The kernel lacks `fsopen` or overlay's `lowerdir+` (Linux < 6.8): use `mount(2)`.
    Unsupported,
}

/// Mounts an overlay with the new mount API, one `lowerdir+` per layer (top first), which
/// has no limit on the total length of the lowerdir list.
pub(crate) fn mount_overlay_new_api(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<NewApi> {
    let fs = match rmount::fsopen("overlay", rmount::FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOSYS) => return Ok(NewApi::Unsupported),
        Err(e) => return Err(e.into()),
    };
    for (i, lower) in lowers.iter().enumerate() {
        match rmount::fsconfig_set_string(&fs, "lowerdir+", *lower) {
            Ok(()) => {}
            // Only the first `lowerdir+` tells whether the key is known at all.
            Err(rustix::io::Errno::INVAL) if i == 0 => return Ok(NewApi::Unsupported),
            Err(e) => return Err(e.into()),
        }
    }
    rmount::fsconfig_set_string(&fs, "upperdir", upper)?;
    rmount::fsconfig_set_string(&fs, "workdir", work)?;
    for (k, v) in overlay_flags() {
        rmount::fsconfig_set_string(&fs, k, v)?;
    }
    if user_xattrs() {
        rmount::fsconfig_set_flag(&fs, "userxattr")?;
    }
    rmount::fsconfig_set_flag(&fs, "volatile")?;
    rmount::fsconfig_create(&fs)?;
    let mnt = rmount::fsmount(
        &fs,
        rmount::FsMountFlags::FSMOUNT_CLOEXEC,
        rmount::MountAttrFlags::empty(),
    )?;
    rmount::move_mount(
        &mnt,
        "",
        rfs::CWD,
        target,
        rmount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(NewApi::Mounted)
}

/// The largest option string `mount(2)` accepts (one page, NUL included).
pub(crate) const LEGACY_OPTIONS_MAX: usize = 4095;

/// Mounts an overlay with `mount(2)`, `volatile` unless the kernel (before 5.10) does
/// not know the option.
pub(crate) fn mount_overlay_legacy(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    match mount_overlay_legacy_with(lowers, upper, work, target, true) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            mount_overlay_legacy_with(lowers, upper, work, target, false)
        }
        other => other,
    }
}

/// Mounts an overlay with `mount(2)`. The lowerdirs are opened first and named by their
/// descriptor numbers relative to `/proc/self/fd`, the working directory of a helper
/// thread that has its own filesystem context: this keeps each lowerdir to 2-4 bytes so
/// even overlayfs' 500-layer maximum fits in one page of options.
fn mount_overlay_legacy_with(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> io::Result<()> {
    let fds = lowers
        .iter()
        .map(|p| {
            rfs::open(
                *p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
        .collect::<Result<Vec<OwnedFd>, _>>()?;
    let mut opts = b"lowerdir=".to_vec();
    for (i, fd) in fds.iter().enumerate() {
        use std::os::fd::AsRawFd;
        if i > 0 {
            opts.push(b':');
        }
        opts.extend_from_slice(fd.as_raw_fd().to_string().as_bytes());
    }
    for (key, path) in [("upperdir", upper), ("workdir", work)] {
        let bytes = path.as_os_str().as_bytes();
        if bytes.iter().any(|b| matches!(b, b':' | b',' | b'\\')) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{key} path contains `:`, `,` or `\\`"),
            ));
        }
        opts.extend_from_slice(format!(",{key}=").as_bytes());
        opts.extend_from_slice(bytes);
    }
    for (k, v) in overlay_flags() {
        opts.extend_from_slice(format!(",{k}={v}").as_bytes());
    }
    if user_xattrs() {
        opts.extend_from_slice(b",userxattr");
    }
    if volatile {
        opts.extend_from_slice(b",volatile");
    }
    if opts.len() > LEGACY_OPTIONS_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("mount options are {} bytes, over one page", opts.len()),
        ));
    }
    let data = std::ffi::CString::new(opts)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mount options contain NUL"))?;
    let target = target.to_path_buf();
    // A scoped thread, so that the fds outlive it; it changes only its own cwd.
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare_fs()?;
            rustix::process::chdir("/proc/self/fd")?;
            rmount::mount(
                "overlay",
                &target,
                "overlay",
                rmount::MountFlags::empty(),
                Some(data.as_c_str()),
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount helper thread panicked")))
    })
}

/// Gives the calling thread its own cwd/root/umask (`unshare(CLONE_FS)`).
fn unshare_fs() -> io::Result<()> {
    // SAFETY: only CLONE_FS is unshared, which separates the cwd, root and umask of this
    // thread from the others. rustix marks `unshare` unsafe because of CLONE_FILES (fds
    // that other threads could not see); the descriptor table stays shared here.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }?;
    Ok(())
}

/// Bind-mounts `source` on `target` (the zero-lowerdir case).
pub(crate) fn bind_mount(source: &Path, target: &Path) -> io::Result<()> {
    rmount::mount_bind(source, target)?;
    Ok(())
}

/// Unmounts `target`; with `lazy`, detaches it even while busy.
pub(crate) fn unmount(target: &Path, lazy: bool) -> io::Result<()> {
    let flags = if lazy {
        rmount::UnmountFlags::DETACH
    } else {
        rmount::UnmountFlags::empty()
    };
    rmount::unmount(target, flags)?;
    Ok(())
}
