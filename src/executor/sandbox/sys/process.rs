//! Processes: `fork` (and `clone3` into a cgroup), `_exit`, `execve`, the `kill` of
//! every other process of the namespace, a spawn tied to the helper's life, and (tests
//! only) a `fork` of a child making
//! raw system calls.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::process::Pid;

/// The result of [`fork`].
pub(in crate::executor::sandbox) enum Forked {
    /// In the new process.
    Child,
    /// In the parent; the child's pid.
    Parent(Pid),
}

/// `fork(2)`. Only the helper and init call it, and both are single-threaded (the
/// helper is a fresh `execve` of this binary dispatched before any thread starts), so
/// the child may allocate and run arbitrary code.
pub(in crate::executor::sandbox) fn fork() -> io::Result<Forked> {
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
pub(in crate::executor::sandbox) fn fork_into_cgroup(cgroup: BorrowedFd<'_>) -> io::Result<Forked> {
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
pub(in crate::executor::sandbox) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Spawns `command` with the parent-death signal `SIGKILL` and the descriptors `keep`
/// inherited (close-on-exec cleared in the child only): a process the helper starts
/// (the network's `pasta`) dies with the helper, even when the helper is killed
/// outright. Fails with `ESRCH` when the helper died before the signal was armed.
pub(in crate::executor::sandbox) fn spawn_tied(
    command: &mut std::process::Command,
    keep: &[BorrowedFd<'_>],
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    let keep: Vec<i32> = keep.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: the closure runs between `fork` and `execve` in the child of a
    // single-threaded helper and only makes system calls (`prctl`, `getppid`, `fcntl`);
    // it allocates nothing (`keep` was collected before the fork).
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.spawn()
}

/// An argv and envp ready for `execve`.
pub(in crate::executor::sandbox) struct ExecArgs {
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    /// Builds the NUL-terminated pointer arrays; `None` if a string contains NUL.
    pub(in crate::executor::sandbox) fn new(argv: &[String], envp: &[String]) -> Option<ExecArgs> {
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
    pub(in crate::executor::sandbox) fn execve(&self, path: &CStr) -> io::Error {
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

/// Sends `SIGKILL` to every process this one may signal (from pid 1 of a pid
/// namespace: every other process of the namespace).
pub(in crate::executor::sandbox) fn kill_all() {
    // SAFETY: `kill` has no memory-safety preconditions.
    unsafe { libc::kill(-1, libc::SIGKILL) };
}

/// One system call of a [`fork_probe`] child.
#[cfg(test)]
pub(in crate::executor::sandbox) enum Probe<'a> {
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
pub(in crate::executor::sandbox) fn fork_probe(probes: &[Probe<'_>]) -> io::Result<Vec<i32>> {
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
