//! Every `unsafe` block of the sandbox, each with its `// SAFETY:` argument: `fork`
//! (and `clone3` into a cgroup), `execve`, signal dispositions (and the helper's
//! stop-signal handler), the seccomp load, the loopback `ioctl`, raw `prctl`,
//! `close_range` and `mount_setattr` calls, `unshare`, the `bpf` calls of the cgroup
//! v2 device program, and (tests only) the `.init_array` hook that dispatches the
//! helper in the unit-test binary and a `fork` of a child making raw system calls.
//!
//! The functions here are thin and return `io::Result`; callers attach the operation
//! and path. Safe `rustix` wrappers are used directly elsewhere.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::Pid;

use super::seccomp::SockFilter;

/// One eBPF instruction (`struct bpf_insn`), as `bpf(BPF_PROG_LOAD)` takes them (the
/// device program of `cgroup/devices_bpf/` is made of these).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::executor::sandbox) struct Insn {
    /// Class, operation and source.
    pub code: u8,
    /// The destination register (4 bits) and the source register (4 bits).
    pub regs: u8,
    /// The jump offset (in instructions, from the next one) or memory offset.
    pub off: i16,
    /// The immediate operand.
    pub imm: i32,
}

/// The result of [`fork`].
pub(super) enum Forked {
    /// In the new process.
    Child,
    /// In the parent; the child's pid.
    Parent(Pid),
}

/// `fork(2)`. Only the helper and init call it, and both are single-threaded (the
/// helper is a fresh `execve` of this binary dispatched before any thread starts), so
/// the child may allocate and run arbitrary code.
pub(super) fn fork() -> io::Result<Forked> {
    // SAFETY: the calling process is single-threaded (see above), so no lock or
    // allocator state can be held by another thread at the time of the fork.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Pid::from_raw(pid)
            .map(Forked::Parent)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// `clone3(2)` with `CLONE_INTO_CGROUP`: a [`fork`] whose child starts in the cgroup v2
/// directory `cgroup`, so that it never has to move there (see `cgroup/step.rs`).
/// `ENOSYS`, `E2BIG` or `EINVAL` mean a kernel without it (before 5.7).
pub(super) fn fork_into_cgroup(cgroup: BorrowedFd<'_>) -> io::Result<Forked> {
    /// `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: as for `fork`, the caller is single-threaded. Without a stack the child
    // continues on a copy of the parent's, exactly as after `fork`; `args` is a valid
    // `clone_args` of the size passed, alive for the call. Bypassing glibc's `fork`
    // leaves glibc's cached thread id stale in the child (init): init uses nothing
    // that reads it (no owner-tracking mutexes, no `raise`), and the command it forks
    // goes through glibc's `fork`, which sets it afresh.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .map(Forked::Parent)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// `_exit(2)`: leaves at once, without running `atexit` handlers or flushing buffers
/// inherited from the parent (what a forked child must do).
pub(super) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions.
    unsafe { libc::_exit(code) }
}

/// An argv and envp ready for `execve`.
pub(super) struct ExecArgs {
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    /// Builds the NUL-terminated pointer arrays; `None` if a string contains NUL.
    pub(super) fn new(argv: &[String], envp: &[String]) -> Option<ExecArgs> {
        let conv = |v: &[String]| -> Option<Vec<CString>> {
            v.iter().map(|s| CString::new(s.as_bytes()).ok()).collect()
        };
        let (argv, envp) = (conv(argv)?, conv(envp)?);
        let ptrs = |v: &[CString]| {
            let mut p: Vec<_> = v.iter().map(|s| s.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        };
        Some(ExecArgs {
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            _argv: argv,
            _envp: envp,
        })
    }

    /// `execve(path, argv, envp)`; returns only on failure.
    pub(super) fn execve(&self, path: &CStr) -> io::Error {
        // SAFETY: `path` is a valid C string; both pointer arrays are NUL-terminated
        // and point into the `CString`s owned by `self`, which outlive the call.
        unsafe {
            libc::execve(
                path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            )
        };
        io::Error::last_os_error()
    }
}

/// Resets every signal to its default disposition and unblocks all signals, so the
/// command does not inherit the helper's (Rust ignores `SIGPIPE` at start-up).
pub(super) fn reset_signals() -> io::Result<()> {
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a zeroed `sigaction` with `SIG_DFL` is a valid argument; a null old
        // action pointer is allowed. Invalid signal numbers only yield EINVAL.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
    // SAFETY: an empty set built by `sigemptyset` and a null old-set pointer are valid.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The signals after which the helper stops the step and cleans up: its parent-death
/// signal (`SIGTERM`), Ctrl-C's `SIGINT` (sent to rbuild's whole process group) and
/// `SIGHUP`.
pub(super) const STOP_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Set by [`on_stop_signal`].
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs a handler for [`STOP_SIGNALS`] that only sets a flag (read by
/// [`stop_requested`]); without `SA_RESTART`, so a blocking `poll` or `wait` returns
/// `EINTR` and the flag is looked at.
pub(super) fn catch_stop_signals() -> io::Result<()> {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    set_stop_disposition(handler as libc::sighandler_t)
}

/// Puts [`STOP_SIGNALS`] back to their default disposition (for init: as pid 1 of the
/// namespace it then ignores them from inside, as before).
pub(super) fn default_stop_signals() -> io::Result<()> {
    set_stop_disposition(libc::SIG_DFL)
}

fn set_stop_disposition(handler: libc::sighandler_t) -> io::Result<()> {
    for sig in STOP_SIGNALS {
        // SAFETY: a zeroed `sigaction` is valid; the handler is either SIG_DFL or
        // `on_stop_signal`, which only stores to an atomic (async-signal-safe); a null
        // old-action pointer is allowed.
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether one of [`STOP_SIGNALS`] arrived since [`catch_stop_signals`].
pub(super) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Loads `prog` as this thread's seccomp filter (`no_new_privs` must be set).
pub(super) fn install_seccomp(prog: &[SockFilter]) -> io::Result<()> {
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

/// Sets `IFF_UP` on `lo` in the current network namespace.
pub(super) fn loopback_up() -> io::Result<()> {
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

/// Sends `SIGKILL` to every process this one may signal (from pid 1 of a pid
/// namespace: every other process of the namespace).
pub(super) fn kill_all() {
    // SAFETY: `kill` has no memory-safety preconditions.
    unsafe { libc::kill(-1, libc::SIGKILL) };
}

/// Removes every capability not in `keep` from the bounding set (up to the kernel's
/// last capability, which `PR_CAPBSET_DROP` reports as EINVAL beyond).
pub(super) fn drop_bounding(keep: u64) -> io::Result<()> {
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
pub(super) fn cloexec_from(first: u32) -> io::Result<()> {
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

/// `MOUNT_ATTR_*` bits of `linux/mount.h` (what [`mount_setattr`] sets or clears).
pub(super) mod attr {
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
pub(super) enum Reach {
    /// Only the mount at the path.
    One,
    /// The mount at the path and every mount below it (`AT_RECURSIVE`).
    Tree,
}

/// `mount_setattr(2)`: sets the [`attr`] bits `set` and clears `clear` on the mount at
/// `path` (relative to `dirfd`; an empty `path` means the mount `dirfd` itself refers
/// to, such as a detached tree from `open_tree`), and below it for [`Reach::Tree`].
/// A final symlink in `path` is followed only if `follow`.
pub(super) fn mount_setattr(
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
pub(super) fn unshare(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    debug_assert!(!flags.contains(rustix::thread::UnshareFlags::FILES));
    // SAFETY: rustix marks `unshare` unsafe only for CLONE_FILES (descriptor tables
    // diverging between threads); it is never passed here, and the helper is
    // single-threaded anyway.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}

/// `bpf(BPF_PROG_LOAD)`: `insns` as a program of type `prog_type` (license
/// `license`, name `name`), the verifier's log written into `log` (no log if empty).
/// The program's descriptor (close-on-exec).
pub(super) fn bpf_prog_load(
    prog_type: u32,
    insns: &[Insn],
    license: &CStr,
    name: &[u8; 16],
    log: &mut [u8],
) -> io::Result<OwnedFd> {
    /// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    const BPF_PROG_LOAD: libc::c_int = 5;
    let too_big = |_| io::Error::from_raw_os_error(libc::E2BIG);
    let attr = ProgLoad {
        prog_type,
        insn_cnt: u32::try_from(insns.len()).map_err(too_big)?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: u32::try_from(log.len()).map_err(too_big)?,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        kern_version: 0,
        prog_flags: 0,
        prog_name: *name,
        prog_ifindex: 0,
        expected_attach_type: 0,
    };
    // SAFETY: `ProgLoad` is `repr(C)` with the fields (and no padding) of the
    // `BPF_PROG_LOAD` member of `union bpf_attr` up to `expected_attach_type`, and its
    // size is passed; `Insn` is `repr(C)` as `struct bpf_insn`. The kernel reads
    // `insn_cnt` instructions from `insns` and the NUL-terminated `license`, both
    // alive for the call, and writes at most `log_size` bytes to `log_buf`, which is
    // exclusively borrowed (or 0 with `log_level` 0: no log).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is the new program descriptor, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bpf(BPF_PROG_ATTACH)`: attaches program `prog` to `target` (a cgroup directory)
/// as `attach_type` with `flags`.
pub(super) fn bpf_prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    /// `union bpf_attr` for `BPF_PROG_ATTACH`, up to `attach_flags`.
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    const BPF_PROG_ATTACH: libc::c_int = 8;
    let attr = ProgAttach {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
    };
    // SAFETY: `ProgAttach` is `repr(C)` with the fields of the `BPF_PROG_ATTACH`
    // member of `union bpf_attr` up to `attach_flags`, and its size is passed; the
    // kernel only reads it. Both descriptors are borrowed, open for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `bpf(BPF_PROG_QUERY)`: how many programs of `attach_type` are attached to
/// `target` itself (tests only).
#[cfg(test)]
pub(super) fn bpf_prog_query(target: BorrowedFd<'_>, attach_type: u32) -> io::Result<u32> {
    /// `union bpf_attr` for `BPF_PROG_QUERY`, up to `prog_cnt` (padding explicit).
    #[repr(C)]
    struct ProgQuery {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        pad: u32,
    }
    const BPF_PROG_QUERY: libc::c_int = 16;
    let mut attr = ProgQuery {
        target_fd: target.as_raw_fd() as u32,
        attach_type,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: 0,
        prog_cnt: 0,
        pad: 0,
    };
    // SAFETY: `ProgQuery` is `repr(C)` with the fields of the `BPF_PROG_QUERY` member
    // of `union bpf_attr` up to `prog_cnt` (plus the padding after it), and its size
    // is passed; the kernel writes `attach_flags` and `prog_cnt` into it, exclusively
    // borrowed, and no ids (`prog_ids` is null).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut attr as *mut ProgQuery,
            std::mem::size_of::<ProgQuery>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr.prog_cnt)
}

/// One system call of a [`fork_probe`] child.
#[cfg(test)]
pub(super) enum Probe<'a> {
    /// `open(path, O_WRONLY)`, then `write(bytes)`.
    Write(&'a CStr, &'a [u8]),
    /// `mknod(path, kind | 0600, dev)`.
    Mknod(&'a CStr, rustix::fs::FileType, rustix::fs::Dev),
    /// `open(path, flags)`.
    Open(&'a CStr, rustix::fs::OFlags),
}

/// Forks a child that makes `probes` in order (tests only; from a multi-threaded
/// process). Each probe's errno (0: it succeeded), in order; fewer if the child died.
#[cfg(test)]
pub(super) fn fork_probe(probes: &[Probe<'_>]) -> io::Result<Vec<i32>> {
    use rustix::fs::{Mode, OFlags, CWD};
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // SAFETY: other threads may hold locks (allocator, stdio) at the fork, so the
    // child touches none: it only makes raw system calls through rustix on memory
    // prepared before the fork (`probes`, the pipe), without allocating, and leaves
    // with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        for probe in probes {
            let made = match *probe {
                Probe::Write(path, bytes) => rustix::fs::open(path, OFlags::WRONLY, Mode::empty())
                    .and_then(|fd| rustix::io::write(&fd, bytes))
                    .map(drop),
                Probe::Mknod(path, kind, dev) => {
                    rustix::fs::mknodat(CWD, path, kind, Mode::from_raw_mode(0o600), dev)
                }
                Probe::Open(path, flags) => rustix::fs::open(path, flags, Mode::empty()).map(drop),
            };
            let errno = made.err().map_or(0, |e| e.raw_os_error());
            if rustix::io::write(&w, &errno.to_ne_bytes()).is_err() {
                exit_now(1);
            }
        }
        exit_now(0);
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(w);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut bytes)?;
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Runs the re-exec dispatch before the unit-test harness starts, so that the test
/// binary can serve as `/proc/self/exe` for the sandbox helper (the real binary does
/// the same from `main`). glibc passes `main`'s arguments to `.init_array` functions.
#[cfg(test)]
mod test_hook {
    use std::ffi::CStr;

    type InitFn =
        extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char);

    #[used]
    #[link_section = ".init_array"]
    static DISPATCH: InitFn = dispatch;

    extern "C" fn dispatch(
        argc: libc::c_int,
        argv: *const *const libc::c_char,
        _env: *const *const libc::c_char,
    ) {
        if argc < 1 || argv.is_null() {
            return;
        }
        // SAFETY: glibc calls `.init_array` functions with `main`'s argc and argv;
        // with argc >= 1, argv[0] is a valid NUL-terminated string (or null).
        let arg0 = unsafe {
            let p = *argv;
            if p.is_null() {
                return;
            }
            CStr::from_ptr(p)
        };
        if let Some(code) = crate::reexec::dispatch_name(arg0.to_bytes()) {
            std::process::exit(i32::from(code));
        }
    }
}
