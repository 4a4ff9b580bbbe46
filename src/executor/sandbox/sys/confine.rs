//! What the command gives up before `execve`: the seccomp load, the capability
//! bounding set (raw `prctl`) and inherited descriptors (`close_range`).

use std::io;

use crate::executor::sandbox::seccomp::SockFilter;

/// Loads `prog` as this thread's seccomp filter (`no_new_privs` must be set).
pub(in crate::executor::sandbox) fn install_seccomp(prog: &[SockFilter]) -> io::Result<()> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `SockFilter` is `repr(C)` with exactly the fields of `struct
    // sock_filter`; `fprog` points to `len` of them, alive for the call; the kernel
    // copies the program and does not write through the pointer.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes every capability not in `keep` from the bounding set (up to the kernel's
/// last capability, which `PR_CAPBSET_DROP` reports as EINVAL beyond).
pub(in crate::executor::sandbox) fn drop_bounding(keep: u64) -> io::Result<()> {
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: `prctl(PR_CAPBSET_DROP, cap)` takes plain integers.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                break; // past the kernel's last capability
            }
            return Err(err);
        }
    }
    Ok(())
}

/// Marks every descriptor from `first` up close-on-exec.
pub(in crate::executor::sandbox) fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: `close_range` with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    for fd in first as libc::c_int..4096 {
        // SAFETY: F_SETFD on a descriptor that may not exist only fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}
