//! The helper side: the re-exec'd helper process, init (pid 1 of the step's pid
//! namespace) and the command's last steps before `execve`.
//!
//! Descriptors: the helper starts with the socket to the caller as stdin and the
//! output pipe as stdout and stderr. It moves the socket to a close-on-exec descriptor
//! (`report`) and puts the host's `/dev/null` on stdin. Init and the command inherit
//! all of that; the command replaces stdin with the sandbox's own `/dev/null` and
//! marks every descriptor above stderr close-on-exec before `execve`.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{Mode, OFlags, CWD};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};
use rustix::thread::{CapabilitySet, CapabilitySets, UnshareFlags};

use super::binfmt;
use super::caps::CapSets;
use super::cgroup::{self, Entry, StepCgroup};
use super::error::SetupOp;
use super::rootfs::{self, BindSource, Failure, LinuxSys, Stubs};
use super::seccomp::{self, SockFilter};
use super::sys::{self, ExecArgs, Forked};
use super::wire::{self, Report};
use super::{network, Mount, Network, SandboxSpec};

/// `PATH` used to look up `argv[0]` when the spec's env has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit code of the helper when it was told to abort (timeout or caller gone).
const ABORTED: u8 = 137;

/// Where reports go: the socket to the caller.
struct Reporter(OwnedFd);

impl Reporter {
    fn send(&self, report: &Report) {
        let line = report.to_line();
        let mut rest = &line[..];
        while !rest.is_empty() {
            match rustix::io::write(&self.0, rest) {
                Ok(0) | Err(_) => return, // the caller is gone; nothing more to do
                Ok(n) => rest = &rest[n..],
            }
        }
    }

    fn failed(&self, op: SetupOp, path: &str, error: &io::Error) {
        let errno = error.raw_os_error().unwrap_or(libc::EIO);
        self.send(&Report::Failed {
            op,
            path: path.to_owned(),
            errno,
        });
    }
}

/// Everything computed before the namespaces exist, so that failures there are
/// reported early and init only runs system calls.
struct Prepared {
    spec: SandboxSpec,
    filter: Vec<SockFilter>,
    exec: ExecArgs,
    caps: CapSets,
}

/// The helper's `main`: returns init's exit code, or [`ABORTED`].
pub(super) fn main() -> u8 {
    // Stop with the caller (the socket closing is the primary signal; this covers the
    // window before the helper starts polling it). Caught, so that the step's cgroup
    // is still removed.
    let _ = sys::catch_stop_signals();
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::TERM));
    let Ok(report) = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3) else {
        return 1;
    };
    let report = Reporter(report);
    match rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .and_then(rustix::stdio::dup2_stdin)
    {
        Ok(()) => {}
        Err(e) => {
            report.failed(SetupOp::Stdin, "/dev/null", &e.into());
            return 1;
        }
    }
    let prepared = match prepare(&report) {
        Ok(p) => p,
        Err((op, e)) => {
            report.failed(op, "", &e);
            return 1;
        }
    };
    match &prepared.spec.cgroup {
        Some(place) => in_step_cgroup(&prepared, &report, place),
        None => sandbox(&prepared, &report, None),
    }
}

/// [`sandbox`] in the step's cgroup: created before, read and removed after.
fn in_step_cgroup(prepared: &Prepared, report: &Reporter, place: &cgroup::Place) -> u8 {
    let made = StepCgroup::create(place, &cgroup::stale::step_name(), &prepared.spec.limits);
    let step_cgroup = match made {
        Ok(c) => c,
        Err(f) => {
            report.failed(SetupOp::Cgroup, &f.path.to_string_lossy(), &f.error);
            return 1;
        }
    };
    let code = match step_cgroup.entry() {
        Ok(entry) => sandbox(prepared, report, Some(&entry)),
        Err(f) => {
            report.failed(SetupOp::Cgroup, &f.path.to_string_lossy(), &f.error);
            1
        }
    };
    // Init is gone, and with it every process of the step.
    report.send(&Report::Usage(step_cgroup.usage()));
    // A cgroup that cannot be removed now is collected by the next build.
    let _ = step_cgroup.remove();
    code
}

/// The namespaces, init (in the step's cgroup, if any) and its supervision; returns
/// init's exit code.
fn sandbox(prepared: &Prepared, report: &Reporter, cgroup: Option<&Entry>) -> u8 {
    // First, so that the step's network namespace belongs to it too.
    if prepared.spec.binfmt.is_some() {
        if let Err((op, e)) = binfmt::enter_user_namespace() {
            report.failed(op, "/proc/self/uid_map", &e);
            return 1;
        }
    }
    // Killed and reaped when this function returns (in the helper; init never returns).
    let (_pasta, ready) = match private_network(&prepared.spec.network) {
        Ok(Some((pasta, ready))) => (Some(pasta), Some(ready)),
        Ok(None) => (None, None),
        Err(e) => {
            report.failed(SetupOp::Network, "pasta", &e);
            return 1;
        }
    };
    // Held (by init too) until the step is over: the emulator's registration.
    let _binfmt = match namespaces(&prepared.spec) {
        Ok(binfmt) => binfmt,
        Err((op, path, e)) => {
            report.failed(op, path, &e);
            return 1;
        }
    };
    // Tells init whether the helper is still alive when init's PDEATHSIG is armed.
    let (alive_r, alive_w) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            report.failed(SetupOp::Fork, "", &e.into());
            return 1;
        }
    };
    let (forked, inside) = fork_init(cgroup);
    match forked {
        Err(e) => {
            report.failed(SetupOp::Fork, "", &e);
            1
        }
        Ok(Forked::Child) => {
            drop(alive_w);
            if let Some(Err(f)) = cgroup.map(|c| c.join(inside)) {
                report.failed(SetupOp::JoinCgroup, &f.path.to_string_lossy(), &f.error);
                sys::exit_now(1);
            }
            init(prepared, report, alive_r, ready)
        }
        Ok(Forked::Parent(pid)) => {
            drop(alive_r);
            drop(ready);
            let code = supervise(pid, report);
            drop(alive_w);
            code
        }
    }
}

/// Unshares the step's namespaces, then, when the spec has an emulator, mounts the
/// `binfmt_misc` instance of the step's own user namespace and registers it there
/// ([`binfmt`]); returns that mount.
fn namespaces(spec: &SandboxSpec) -> Result<Option<OwnedFd>, (SetupOp, &str, io::Error)> {
    let mut flags =
        UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC | UnshareFlags::NEWPID;
    if spec.network == Network::None {
        flags |= UnshareFlags::NEWNET;
    }
    sys::unshare(flags).map_err(|e| (SetupOp::Unshare, "", e))?;
    match &spec.binfmt {
        Some(line) => binfmt::register(line)
            .map(Some)
            .map_err(|(op, e)| (op, "binfmt_misc/register", e)),
        None => Ok(None),
    }
}

/// For a private network: unshares the network namespace (the helper's, so that
/// init inherits it) and starts `pasta` on it, still in the caller's mount namespace;
/// for a joined one: `setns` into it (ready already).
fn private_network(network: &Network) -> io::Result<Option<(network::Pasta, OwnedFd)>> {
    match network {
        Network::Private(pasta) => network::start(pasta).map(Some),
        Network::Joined(ns) => network::join(ns).map(|()| None),
        Network::Host | Network::None => Ok(None),
    }
}

/// Forks init: into the step's cgroup where the kernel can (v2); the flag says
/// whether it was.
fn fork_init(cgroup: Option<&Entry>) -> (io::Result<Forked>, bool) {
    let Some(dir) = cgroup.and_then(Entry::clone_into) else {
        return (sys::fork(), false);
    };
    match sys::fork_into_cgroup(dir) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
            ) =>
        {
            (sys::fork(), false)
        }
        forked => (forked, true),
    }
}

/// Reads the spec and builds the per-run data.
fn prepare(report: &Reporter) -> Result<Prepared, (SetupOp, io::Error)> {
    let spec =
        wire::read_spec(SocketReader(report.0.as_fd())).map_err(|e| (SetupOp::ReadSpec, e))?;
    let filter = seccomp::default_filter(seccomp::Host::current())
        .map_err(|e| (SetupOp::Prepare, io::Error::other(e.to_string())))?;
    let exec = ExecArgs::new(&spec.argv, &spec.env)
        .ok_or_else(|| (SetupOp::Prepare, io::Error::from_raw_os_error(libc::EINVAL)))?;
    let caps = CapSets::docker_default(spec.uid);
    Ok(Prepared {
        spec,
        filter,
        exec,
        caps,
    })
}

/// `Read` over a borrowed descriptor.
struct SocketReader<'a>(BorrowedFd<'a>);

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(self.0, buf)?)
    }
}

/// Waits for init to end, or for the caller's end of the socket to close or a stop
/// signal (then kills init, which takes the whole pid namespace with it, and waits for
/// that).
fn supervise(init: Pid, report: &Reporter) -> u8 {
    let pidfd = rustix::process::pidfd_open(init, rustix::process::PidfdFlags::empty()).ok();
    loop {
        if sys::stop_requested() {
            report.send(&Report::Stopped);
            return abort(init);
        }
        let mut fds = vec![PollFd::new(&report.0, PollFlags::IN)];
        if let Some(fd) = &pidfd {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        if poll(&mut fds, None).is_err() {
            continue; // EINTR
        }
        let caller_gone = !fds[0].revents().is_empty();
        let init_done = pidfd.is_none() || fds.get(1).is_some_and(|f| !f.revents().is_empty());
        if caller_gone {
            return abort(init);
        }
        if init_done {
            return match reap_init(init) {
                Ok(Some((_, status))) => status.exit_status().map_or(ABORTED, |c| c as u8),
                _ => 1,
            };
        }
    }
}

/// Kills init (the pid namespace dies with it) and waits until it is reaped.
fn abort(init: Pid) -> u8 {
    let _ = rustix::process::kill_process(init, Signal::KILL);
    let _ = reap_init(init);
    ABORTED
}

/// `waitpid` for init, resumed after a caught stop signal.
fn reap_init(init: Pid) -> rustix::io::Result<Option<(Pid, WaitStatus)>> {
    loop {
        match rustix::process::waitpid(Some(init), WaitOptions::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// Init: pid 1 of the step (already in its cgroup). Sets up the filesystem, waits
/// for a private network to be ready (`ready`), starts the command, reaps every process until the command has exited (then kills the
/// rest), removes the stubs and reports the command's status. Never returns.
fn init(p: &Prepared, report: &Reporter, alive: OwnedFd, ready: Option<OwnedFd>) -> ! {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let _ = sys::default_stop_signals();
    // If the helper died before PDEATHSIG was armed, the pipe has no writer left.
    let mut fds = [PollFd::new(&alive, PollFlags::IN)];
    if poll(
        &mut fds,
        Some(&rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    )
    .is_ok()
        && fds[0].revents().contains(PollFlags::HUP)
    {
        sys::exit_now(1);
    }
    drop(alive);
    rustix::process::umask(Mode::empty());
    let mut stubs = Stubs::default();
    let fs = match setup(&p.spec, &mut stubs) {
        Ok(fs) => fs,
        Err(f) => {
            report.failed(f.op, &f.path, &f.error);
            sys::exit_now(1);
        }
    };
    if let Some(Err(e)) = ready.map(network::wait_ready) {
        report.failed(SetupOp::Network, "pasta", &e);
        sys::exit_now(1);
    }
    let command = match sys::fork() {
        Ok(Forked::Child) => command(p, report),
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            report.failed(SetupOp::Fork, "", &e);
            sys::exit_now(1);
        }
    };
    let status = reap(command);
    stubs.cleanup(&fs);
    let (code, signal) = match status.map(|s| (s.exit_status(), s.terminating_signal())) {
        Some((Some(code), _)) => (code, None),
        Some((None, Some(sig))) => (128 + sig, Some(sig)),
        _ => (255, None),
    };
    report.send(&Report::Exited { code, signal });
    sys::exit_now(0)
}

/// Reaps children until `command` has exited; then kills and reaps everything left.
/// Returns the command's status (`None` only if it was never seen, which cannot
/// happen for a child of ours).
fn reap(command: Pid) -> Option<WaitStatus> {
    let mut status = None;
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, st))) if pid == command => {
                status = Some(st);
                sys::kill_all();
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break, // ECHILD: nobody left
        }
    }
    status
}

/// Enters the new root and builds its filesystem; sets the host name and brings up
/// `lo` in a new network namespace. Returns the [`rootfs::Sys`] for the cleanup.
fn setup(spec: &SandboxSpec, stubs: &mut Stubs) -> Result<LinuxSys, Failure> {
    let binds: Vec<_> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind {
                source, readonly, ..
            } => Some(BindSource {
                path: source.clone(),
                readonly: *readonly,
            }),
            Mount::Tmpfs { .. } => None,
        })
        .collect();
    let (sys, bind_is_dir, host) = rootfs::enter(&spec.rootfs, &binds)?;
    let steps = rootfs::plan(spec, &bind_is_dir, host);
    rootfs::apply(&steps, &sys, stubs)?;
    let fail = |op, path: &str| {
        let path = path.to_owned();
        move |error: io::Error| Failure { op, path, error }
    };
    rustix::system::sethostname(spec.hostname.as_bytes())
        .map_err(|e| fail(SetupOp::SetHostname, &spec.hostname)(e.into()))?;
    if spec.network == Network::None {
        sys::loopback_up().map_err(fail(SetupOp::LoopbackUp, "lo"))?;
    }
    mkdir_all(&spec.cwd).map_err(fail(SetupOp::Mkdir, &spec.cwd))?;
    Ok(sys)
}

/// `mkdir -p` (mode 0755, root-owned) inside the new root.
fn mkdir_all(path: &str) -> io::Result<()> {
    let mut current = String::new();
    for part in path.split('/').filter(|c| !c.is_empty()) {
        current.push('/');
        current.push_str(part);
        match rustix::fs::mkdirat(CWD, current.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The command: detaches from the helper's session, drops to the spec's user and
/// privileges and `execve`s. Never returns; failures are reported as such.
fn command(p: &Prepared, report: &Reporter) -> ! {
    let fail = |op: SetupOp, path: &str, e: io::Error| -> ! {
        report.failed(op, path, &e);
        sys::exit_now(127)
    };
    let spec = &p.spec;
    let _ = rustix::process::setsid();
    if let Err(e) = sys::reset_signals() {
        fail(SetupOp::Prepare, "signals", e);
    }
    rustix::process::umask(Mode::from_raw_mode(0o022));
    let null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .and_then(rustix::stdio::dup2_stdin);
    if let Err(e) = null {
        fail(SetupOp::Stdin, "/dev/null", e.into());
    }
    if let Err(e) = rustix::process::chdir(spec.cwd.as_str()) {
        fail(SetupOp::Chdir, &spec.cwd, e.into());
    }
    if let Err((name, e)) = super::limits::apply_ulimits(&spec.limits.ulimits) {
        fail(SetupOp::Rlimit, name, e);
    }
    if let Err((op, e)) = drop_privileges(p) {
        fail(op, "", e);
    }
    if let Err(e) = sys::cloexec_from(3) {
        fail(SetupOp::Exec, "close_range", e);
    }
    if let Err(e) = sys::install_seccomp(&p.filter) {
        fail(SetupOp::Seccomp, "", e);
    }
    let err = exec(p);
    fail(SetupOp::Exec, &spec.argv[0], err)
}

/// Groups, ids, capabilities, `no_new_privs`, in the order that keeps each step
/// permitted: the bounding set is trimmed while still root, the ids changed, then the
/// remaining sets set exactly.
fn drop_privileges(p: &Prepared) -> Result<(), (SetupOp, io::Error)> {
    use rustix::process::{Gid, Uid};
    let spec = &p.spec;
    let e = |op| move |err: rustix::io::Errno| (op, io::Error::from(err));
    sys::drop_bounding(p.caps.bounding).map_err(|err| (SetupOp::DropBounding, err))?;
    let groups: Vec<Gid> = spec
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    match rustix::thread::set_thread_groups(&groups) {
        // A user namespace without subordinate ids denies setgroups; the only groups
        // left are the user's, unmapped (shown as nobody's), and none can be added.
        Err(rustix::io::Errno::PERM) if groups.is_empty() && setgroups_denied() => {}
        other => other.map_err(e(SetupOp::SetGroups))?,
    }
    let gid = Gid::from_raw(spec.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(e(SetupOp::SetGid))?;
    let uid = Uid::from_raw(spec.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(e(SetupOp::SetUid))?;
    let sets = CapabilitySets {
        effective: CapabilitySet::from_bits_retain(p.caps.effective),
        permitted: CapabilitySet::from_bits_retain(p.caps.permitted),
        inheritable: CapabilitySet::from_bits_retain(p.caps.inheritable),
    };
    rustix::thread::set_capabilities(None, sets).map_err(e(SetupOp::SetCaps))?;
    rustix::thread::clear_ambient_capability_set().map_err(e(SetupOp::SetCaps))?;
    rustix::thread::set_no_new_privs(true).map_err(e(SetupOp::NoNewPrivs))
}

/// Whether this user namespace forbids `setgroups` (`/proc/self/setgroups`: `deny`).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// `execve` of `argv[0]`, looked up in the spec's `PATH` when it has no `/` (as
/// `execvpe`: `EACCES` from one directory is kept while later ones are tried).
fn exec(p: &Prepared) -> io::Error {
    let argv0 = &p.spec.argv[0];
    let path_of = |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    if argv0.contains('/') {
        return match path_of(argv0) {
            Ok(path) => p.exec.execve(&path),
            Err(e) => e,
        };
    }
    let search = p
        .spec
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut result = io::Error::from_raw_os_error(libc::ENOENT);
    for dir in search.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(argv0);
        let Ok(path) = CString::new(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        let err = p.exec.execve(&path);
        match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => result = err,
            _ => return err,
        }
    }
    result
}
