//! A foreign-platform step's own `binfmt_misc` instance (Linux 6.7+: one per user
//! namespace), so that QEMU runs the step's binaries without any host-wide
//! registration.
//!
//! The helper, before it creates the step's other namespaces, enters a new user
//! namespace whose maps are the identity of its current ones (`0 0 4294967295` as root;
//! a rootless build's own ids in its namespace): every id means what it meant, and the
//! step's namespaces (mount, pid, uts, ipc and a network of its own) belong to it.
//! Then it mounts a detached `binfmt_misc` (its instance, new and empty) and writes the
//! emulator's registration with the `F` flag: the kernel opens the interpreter at
//! registration, from the host's root, so it never needs to be in the step's root (nor
//! reaches its layer). The registration lives as long as the mount, whose descriptor
//! init inherits, and dies with the step's user namespace: nothing is left on the host.
//!
//! What the step loses in its own user namespace is what root in a non-initial one
//! cannot do: `mknod` of devices (`EPERM`; Docker's would make a node it cannot open),
//! module loading, host-wide sysctls and clocks. The sandbox takes its rootless path
//! ([`in_own_user_namespace`]): the host's device nodes bound instead of made, the
//! step's procfs and sysfs (the host's `/sys` cloned read-only when the network
//! namespace is the helper's, which it made before) made before `pivot_root`. Every
//! other protection is the same: the capability sets, seccomp and `no_new_privs`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::mount::{self as rmount, FsMountFlags, FsOpenFlags, MountAttrFlags};
use rustix::process::{Pid, WaitOptions};
use rustix::thread::UnshareFlags;

use super::error::SetupOp;
use super::sys::{self, Forked};

/// Set in the helper once it entered its own user namespace (init inherits it).
static OWN_USER_NAMESPACE: AtomicBool = AtomicBool::new(false);

/// Whether this helper (or init) made a user namespace of its own for the step.
pub(super) fn in_own_user_namespace() -> bool {
    OWN_USER_NAMESPACE.load(Ordering::Relaxed)
}

/// Moves the helper into a new user namespace mapping every id it has to itself. The
/// maps are written by a child left in the current namespace (a process cannot write
/// the maps of its own new namespace beyond its one id).
pub(super) fn enter_user_namespace() -> Result<(), (SetupOp, io::Error)> {
    let fail = |e: io::Error| (SetupOp::UserNamespace, e);
    let maps = (
        identity_of(&read_map("/proc/self/uid_map").map_err(fail)?),
        identity_of(&read_map("/proc/self/gid_map").map_err(fail)?),
    );
    let (go_r, go_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| fail(e.into()))?;
    let helper = rustix::process::getpid();
    let child = match sys::fork().map_err(fail)? {
        Forked::Child => {
            drop(go_w);
            let mut byte = [0u8; 1];
            let ready = matches!(rustix::io::read(&go_r, &mut byte), Ok(1));
            let written = ready && write_maps(helper, &maps.0, &maps.1).is_ok();
            sys::exit_now(if written { 0 } else { 1 })
        }
        Forked::Parent(pid) => pid,
    };
    drop(go_r);
    let unshared = sys::unshare(UnshareFlags::NEWUSER);
    if unshared.is_ok() {
        let _ = rustix::io::write(&go_w, b"1");
    }
    drop(go_w);
    let mapped = wait_ok(child);
    unshared.map_err(fail)?;
    if !mapped {
        return Err(fail(io::Error::from_raw_os_error(libc::EPERM)));
    }
    OWN_USER_NAMESPACE.store(true, Ordering::Relaxed);
    Ok(())
}

/// The text of an id map file.
fn read_map(path: &str) -> io::Result<String> {
    std::fs::read_to_string(path)
}

/// The identity of the ids a map's namespace has: `inside inside count` per line.
fn identity_of(map: &str) -> String {
    map.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                [inside, _, count] => Some(format!("{inside} {inside} {count}\n")),
                _ => None,
            }
        })
        .collect()
}

/// Writes `pid`'s uid and gid maps (from its parent namespace).
fn write_maps(pid: Pid, uids: &str, gids: &str) -> io::Result<()> {
    let base = format!("/proc/{}", pid.as_raw_nonzero());
    std::fs::write(format!("{base}/uid_map"), uids)?;
    std::fs::write(format!("{base}/gid_map"), gids)
}

/// Whether `pid` exited with code 0.
fn wait_ok(pid: Pid) -> bool {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(Some((_, status))) => return status.exit_status() == Some(0),
            _ => return false,
        }
    }
}

/// Mounts this user namespace's `binfmt_misc` instance (detached) and writes
/// `registration` (`:name:M:offset:magic:mask:interpreter:flags`) to its `register`.
/// The returned mount keeps the registration alive: drop it only after the step.
pub(super) fn register(registration: &str) -> Result<OwnedFd, (SetupOp, io::Error)> {
    let fail = |e: rustix::io::Errno| (SetupOp::Binfmt, io::Error::from(e));
    let fs = rmount::fsopen("binfmt_misc", FsOpenFlags::FSOPEN_CLOEXEC).map_err(fail)?;
    rmount::fsconfig_create(&fs).map_err(fail)?;
    let attrs = MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    let mount = rmount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(fail)?;
    let flags = OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let register =
        rustix::fs::openat(mount.as_fd(), "register", flags, Mode::empty()).map_err(fail)?;
    let written = rustix::io::write(&register, registration.as_bytes()).map_err(fail)?;
    if written != registration.len() {
        return Err((SetupOp::Binfmt, io::Error::from_raw_os_error(libc::EIO)));
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_keeps_each_range_of_the_current_namespace() {
        assert_eq!(identity_of("0 0 4294967295\n"), "0 0 4294967295\n");
        assert_eq!(
            identity_of("         0       2345          1\n         1     200000      65536\n"),
            "0 0 1\n1 1 65536\n"
        );
        assert_eq!(identity_of(""), "");
    }
}
