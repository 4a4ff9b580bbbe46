//! Namespaces and their mounts: the loopback `ioctl` of a new network namespace,
//! `mount_setattr` (with the `MOUNT_ATTR_*` bits it sets) and `unshare`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Sets `IFF_UP` on `lo` in the current network namespace.
pub(in crate::executor::sandbox) fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket creation; the returned descriptor is checked below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `ifreq` is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the interface name from and writes the flags into
    // `req`, which is a valid, exclusively borrowed `ifreq`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the `ifru_flags` member is the initialised one.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `MOUNT_ATTR_*` bits of `linux/mount.h` (what [`mount_setattr`] sets or clears).
pub(in crate::executor::sandbox) mod attr {
    /// `MOUNT_ATTR_RDONLY`.
    pub(crate) const RDONLY: u64 = 0x1;
    /// `MOUNT_ATTR_NOSUID`.
    pub(crate) const NOSUID: u64 = 0x2;
    /// `MOUNT_ATTR_NODEV`.
    pub(crate) const NODEV: u64 = 0x4;
    /// `MOUNT_ATTR_NOEXEC`.
    pub(crate) const NOEXEC: u64 = 0x8;
}

/// `struct mount_attr` (`linux/mount.h`, `MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Which mounts [`mount_setattr`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::executor::sandbox) enum Reach {
    /// Only the mount at the path.
    One,
    /// The mount at the path and every mount below it (`AT_RECURSIVE`).
    Tree,
}

/// `mount_setattr(2)`: sets the [`attr`] bits `set` and clears `clear` on the mount at
/// `path` (relative to `dirfd`; an empty `path` means the mount `dirfd` itself refers
/// to, such as a detached tree from `open_tree`), and below it for [`Reach::Tree`].
/// A final symlink in `path` is followed only if `follow`.
pub(in crate::executor::sandbox) fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    set: u64,
    clear: u64,
    reach: Reach,
    follow: bool,
) -> io::Result<()> {
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags: libc::c_uint = 0;
    if path.to_bytes().is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    if reach == Reach::Tree {
        flags |= AT_RECURSIVE;
    }
    if !follow {
        flags |= libc::AT_SYMLINK_NOFOLLOW as libc::c_uint;
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is a NUL-terminated string and `attr` a `struct mount_attr` of
    // exactly the size passed; both outlive the call and the kernel only reads them.
    // `dirfd` is a valid descriptor (or `AT_FDCWD`) for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unshare(2)` with namespace flags.
pub(in crate::executor::sandbox) fn unshare(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    debug_assert!(!flags.contains(rustix::thread::UnshareFlags::FILES));
    // SAFETY: rustix marks `unshare` unsafe only for CLONE_FILES (descriptor tables
    // diverging between threads); it is never passed here, and the helper is
    // single-threaded anyway.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}
