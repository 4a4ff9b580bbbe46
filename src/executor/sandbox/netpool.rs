//! The build's pool of default-network namespaces: one network namespace, attached to
//! the host's by its [`Backend`] (`pasta`, [`super::network`], or a veth pair,
//! [`super::veth`]), per RUN step running at the same time, made at first
//! use (or ahead of it, [`NetPool::prewarm`]) and reused by the steps that follow, as
//! BuildKit pools its network namespaces. A step then only `setns`es into one
//! ([`super::Network::Joined`]) instead of starting `pasta` (15-25 ms per step).
//!
//! # Holders
//!
//! A namespace is held by a *holder*: this binary re-executed as [`HOLDER_ARGV0`]
//! (single-threaded, see [`crate::reexec`]), which makes the namespace and starts
//! `pasta` on it exactly as the sandbox helper does for [`super::Network::Private`]
//! (from a forked child in a rootless build), or attaches its veth pair and the `nft`
//! holding its masquerade, prints `ready` once the namespace is configured, and then
//! waits for end-of-file on its stdin (or for `pasta` or `nft` to end: the holder then
//! ends too, and the next lease replaces it). The pool keeps the
//! write end; the step's helper joins `/proc/<holder>/ns/net` (the holder is the pool's
//! unreaped child, so its pid cannot be reused while the pool holds it). Nothing is
//! mounted and nothing is written to disk.
//!
//! # Cleanup
//!
//! At the end of the build the pool closes each holder's stdin and waits for it; the
//! holder closes `nft`'s stdin (the veth backend: the kernel deletes its table when
//! `nft` ends, and the veth pair with the holder's namespace) or kills `pasta` (`SIGKILL`, not waited for: its exit, the tap device's removal,
//! is ~30 ms of kernel work that would delay the end of every build; init reaps it). When rbuild is killed (`kill -9`), the kernel
//! closes that stdin the same way, so the holder still ends `pasta` (which also has
//! `SIGKILL` as its parent-death signal, tied to the holder, as `nft` has), and the
//! namespace goes with its last process. The holder has no parent-death signal of its own: that
//! signal follows the *thread* that spawned it, and stage threads end before the build.
//!
//! # Why sharing a namespace between steps is safe
//!
//! One namespace serves one step at a time. When a step ends, all its processes are
//! killed (its pid namespace ends), so its sockets, listening or not, are closed with
//! them; TCP's `TIME_WAIT` remnants only hold port pairs. What a step could otherwise
//! leave behind is configuration: addresses, routes, links, neighbour entries,
//! netfilter rules, network sysctls. Changing any of them needs `CAP_NET_ADMIN` over
//! the namespace, which a step never has: its bounding set is Docker's default set
//! (`caps.rs`: `NET_RAW` and `NET_BIND_SERVICE`, not `NET_ADMIN`), `/proc/sys` is
//! read-only, and the seccomp profile refuses `setns`/`unshare` without
//! `CAP_SYS_ADMIN`. There is no conntrack state in the namespace either: it has no
//! netfilter rules to track for (the veth backend's masquerade is in the host's).
//! So the next step sees the namespace as its holder configured it.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use rustix::event::{poll, PollFd, PollFlags};

use super::{network, veth};

/// `argv[0]` under which [`crate::reexec`] runs a namespace holder.
pub const HOLDER_ARGV0: &str = "rbuild-netns";

/// The line a holder prints when its namespace is ready.
const READY: &str = "ready";

/// How a pooled namespace reaches the host's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `pasta` at this path, user-mode networking ([`network`]).
    Pasta(PathBuf),
    /// A veth pair and a masquerade rule ([`veth`]).
    Veth(veth::Tools),
}

impl Backend {
    /// The holder's arguments after `argv[0]`.
    fn args(&self) -> Vec<&std::ffi::OsStr> {
        match self {
            Backend::Pasta(pasta) => vec!["pasta".as_ref(), pasta.as_os_str()],
            Backend::Veth(tools) => {
                vec!["veth".as_ref(), tools.ip.as_os_str(), tools.nft.as_os_str()]
            }
        }
    }

    /// [`Backend::args`] read back.
    fn from_args(args: &[std::ffi::OsString]) -> Option<Backend> {
        match args {
            [kind, pasta] if kind == "pasta" => Some(Backend::Pasta(pasta.into())),
            [kind, ip, nft] if kind == "veth" => Some(Backend::Veth(veth::Tools {
                ip: ip.into(),
                nft: nft.into(),
            })),
            _ => None,
        }
    }
}

/// The build's idle namespaces.
pub struct NetPool {
    /// The binary run as a holder (`/proc/self/exe` in rbuild).
    helper: PathBuf,
    idle: Mutex<Vec<Holder>>,
}

/// A namespace a step uses; back to the pool when dropped.
pub struct Lease<'p> {
    pool: &'p NetPool,
    holder: Option<Holder>,
}

/// One holder process and the pipes to it.
struct Holder {
    child: Child,
    /// Closed to end the holder.
    stdin: Option<ChildStdin>,
    /// The holder's stdout and stderr until it said `ready` (`None` after).
    report: Option<BufReader<std::fs::File>>,
}

impl NetPool {
    /// An empty pool whose holders run `helper` (a binary that dispatches
    /// [`HOLDER_ARGV0`] through [`crate::reexec`]).
    pub fn new(helper: impl Into<PathBuf>) -> NetPool {
        NetPool {
            helper: helper.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Starts one namespace without waiting for it, so that the first step finds it
    /// (nearly) ready. A failure is left to [`NetPool::lease`] to report.
    pub fn prewarm(&self, backend: &Backend) {
        if let Ok(holder) = Holder::spawn(&self.helper, backend) {
            self.idle().push(holder);
        }
    }

    /// A ready namespace for one step: an idle one, else a new one attached by
    /// `backend` (a build uses one backend).
    pub fn lease(&self, backend: &Backend) -> io::Result<Lease<'_>> {
        let found = self.idle().pop();
        let mut holder = match found.map(Holder::if_alive) {
            Some(Some(alive)) => alive,
            _ => Holder::spawn(&self.helper, backend)?,
        };
        holder.wait_ready()?;
        Ok(Lease {
            pool: self,
            holder: Some(holder),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Holder>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for NetPool {
    /// Ends every holder (and so its `pasta`) and waits for it.
    fn drop(&mut self) {
        for holder in self.idle().drain(..) {
            holder.end();
        }
    }
}

impl Lease<'_> {
    /// The namespace, for [`super::Network::Joined`].
    pub fn path(&self) -> PathBuf {
        let pid = self.holder.as_ref().map_or(0, |h| h.child.id());
        PathBuf::from(format!("/proc/{pid}/ns/net"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(holder) = self.holder.take() {
            self.pool.idle().push(holder);
        }
    }
}

impl Holder {
    fn spawn(helper: &Path, backend: &Backend) -> io::Result<Holder> {
        let (report, report_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let report_w2 = report_w.try_clone()?;
        let mut child = Command::new(helper)
            .arg0(HOLDER_ARGV0)
            .args(backend.args())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::from(report_w))
            .stderr(Stdio::from(report_w2))
            .spawn()?;
        Ok(Holder {
            stdin: child.stdin.take(),
            child,
            report: Some(BufReader::new(std::fs::File::from(report))),
        })
    }

    /// The holder if it still runs (it ends only when told to, or on failure), else
    /// `None`, reaped.
    fn if_alive(mut self) -> Option<Holder> {
        match self.child.try_wait() {
            Ok(None) => Some(self),
            _ => {
                self.end();
                None
            }
        }
    }

    /// Waits for `ready`; an error carries what the holder (or `pasta`) printed.
    fn wait_ready(&mut self) -> io::Result<()> {
        let Some(mut report) = self.report.take() else {
            return Ok(());
        };
        let mut said = String::new();
        loop {
            let mut line = String::new();
            if report.read_line(&mut line)? == 0 {
                let said = said.trim();
                return Err(io::Error::other(format!(
                    "the network namespace's holder ended before it was ready{}{said}",
                    if said.is_empty() { "" } else { ": " }
                )));
            }
            if line.trim_end() == READY {
                return Ok(());
            }
            said.push_str(&line);
        }
    }

    /// Closes the holder's stdin and waits for it to end.
    fn end(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The holder's entry point (registered in [`crate::reexec`]): the arguments are
/// `Backend::args`.
pub fn holder_main() -> u8 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let Some(backend) = Backend::from_args(&args) else {
        eprintln!("usage: {HOLDER_ARGV0} pasta PASTA | veth IP NFT");
        return 2;
    };
    match hold(&backend) {
        Ok(()) => 0,
        Err(e) => {
            match backend {
                Backend::Pasta(_) => eprintln!("cannot start pasta for the default network: {e}"),
                Backend::Veth(_) => eprintln!(
                    "cannot attach a veth pair for the default network: {e} \
                     (RBUILD_NETWORK_BACKEND=pasta uses pasta instead)"
                ),
            }
            1
        }
    }
}

/// Makes the namespace, reports it ready, holds it until stdin ends (or the process
/// that keeps it attached, `pasta` or `nft`, does: the holder then ends too, and the
/// pool replaces it at the next lease). What attaches it goes when this returns.
fn hold(backend: &Backend) -> io::Result<()> {
    match backend {
        Backend::Pasta(pasta) => {
            let (pasta, ready) = network::start(pasta)?;
            let exit = pidfd(pasta.id())?;
            network::wait_ready(ready)?;
            serve(&exit, "pasta") // `pasta` is killed on drop
        }
        Backend::Veth(tools) => {
            let (host, step) = network::unshare_keeping_host()?;
            network::enter(&host)?;
            let attached = veth::attach(tools, &step)?;
            let exit = pidfd(attached.nft_pid())?;
            serve(&exit, "nft") // `nft` ends on drop, its table with it
        }
    }
}

/// A descriptor that becomes readable when the child `pid` ends.
fn pidfd(pid: u32) -> io::Result<rustix::fd::OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::other("no valid pid"))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Says `ready`, then waits for end-of-file on stdin, or for `keeper` (named `name`)
/// to end: an error.
fn serve(keeper: &rustix::fd::OwnedFd, name: &str) -> io::Result<()> {
    let mut out = io::stdout();
    writeln!(out, "{READY}")?;
    out.flush()?;
    let stdin = rustix::stdio::stdin();
    let mut buf = [0u8; 64];
    loop {
        let mut fds = [
            PollFd::new(&stdin, PollFlags::IN),
            PollFd::new(keeper, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if !fds[1].revents().is_empty() {
            return Err(io::Error::other(format!("{name} exited")));
        }
        match rustix::io::read(stdin, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool whose holders are this test binary (its `.init_array` hook dispatches).
    fn pool() -> NetPool {
        NetPool::new("/proc/self/exe")
    }

    #[test]
    fn a_holder_that_cannot_start_pasta_is_an_error_saying_so() {
        let pool = pool();
        let err = pool
            .lease(&Backend::Pasta("/nonexistent/pasta".into()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("ended before it was ready"), "{err}");
        assert!(err.contains("cannot start pasta"), "{err}");
    }

    /// pasta as a backend, where a holder can run it (root, pasta, a default route).
    fn usable_pasta() -> Option<Backend> {
        let usable = rustix::process::geteuid().is_root() && network::has_default_route();
        let pasta = network::find_pasta().filter(|_| usable);
        if pasta.is_none() {
            eprintln!("skipped: needs root, pasta and a default route");
        }
        pasta.map(|p| Backend::Pasta(p.to_owned()))
    }

    #[test]
    fn a_namespace_is_reused_after_its_step_and_not_shared_during_it() {
        let Some(pasta) = &usable_pasta() else {
            return;
        };
        let pool = pool();
        pool.prewarm(pasta);
        let first = pool.lease(pasta).map(|l| l.path());
        let (a, b) = match (pool.lease(pasta), pool.lease(pasta)) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("two leases: {:?} {:?}", a.err(), b.err()),
        };
        assert_ne!(a.path(), b.path(), "two steps at once, two namespaces");
        let ns = |p: &Path| std::fs::read_link(p).ok();
        assert!(ns(&a.path()).is_some() && ns(&a.path()) != ns(&b.path()));
        let paths = [a.path(), b.path()];
        assert!(first.is_ok_and(|p| paths.contains(&p)), "the first reused");
        drop((a, b));
        let holders: Vec<u32> = pool.idle().iter().map(|h| h.child.id()).collect();
        assert_eq!(holders.len(), 2);
        drop(pool);
        for pid in holders {
            let gone = !Path::new(&format!("/proc/{pid}")).exists();
            assert!(gone, "holder {pid} ended and was reaped with the pool");
        }
    }

    #[test]
    fn a_holder_whose_pasta_died_is_replaced() {
        let Some(pasta) = &usable_pasta() else {
            return;
        };
        let pool = pool();
        let first = pool.lease(pasta).map(|l| l.path());
        let holder = pool.idle().first().map_or(0, |h| h.child.id());
        let children = format!("/proc/{holder}/task/{holder}/children");
        let pastas = std::fs::read_to_string(children).unwrap_or_default();
        assert!(!pastas.trim().is_empty(), "the holder runs pasta");
        for pid in pastas.split_whitespace().filter_map(|p| p.parse().ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        // The holder ends with its pasta (a zombie until the pool reaps it).
        let stat = format!("/proc/{holder}/stat");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let ended = || {
            let s = std::fs::read_to_string(&stat).unwrap_or_default();
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        };
        while !ended() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(ended(), "the holder ended when its pasta died");
        let second = pool.lease(pasta).map(|l| l.path());
        assert!(first.is_ok() && second.is_ok());
        assert_ne!(first.ok(), second.ok(), "a new holder");
    }
}
