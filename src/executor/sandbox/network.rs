//! [`Network::Private`](super::Network::Private): the step's own network namespace with
//! outbound access through `pasta` (Debian's `passt` package), user-mode networking
//! that translates the namespace's TCP/UDP into sockets of the host's network.
//!
//! The helper unshares the network namespace first, starts `pasta` on it (before the
//! other namespaces, so `pasta` stays in the caller's mount namespace while init
//! pivots), and forks init at once: `pasta`'s setup (~10-40 ms) overlaps init's
//! mounts, and init waits for it only before it starts the command. `pasta` writes its
//! pid file (a pipe here) once the namespace is configured: that line is the "ready"
//! init reads; end-of-file means `pasta` failed (its message is in the step's output).
//!
//! What the step sees: `lo` and `eth0` with [`ADDRESS`]/24 (IPv4 only), a default
//! route via [`GATEWAY`], DNS at [`DNS_FORWARDER`] (forwarded to the host's first
//! resolver), an MTU of 65520. The host's loopback is not reachable: no port forwarding in either
//! direction (`-t/-u/-T/-U none`: by default `pasta` would forward the host's listening
//! loopback ports into the namespace) and `--no-map-gw` (by default connections to the
//! gateway address reach the host's loopback). The namespace's addresses are its own,
//! not the host's (`pasta` copies the host's by default), so the host is reachable at
//! its own non-loopback addresses, as from a Docker bridge.
//!
//! Cleanup: `pasta` runs in the foreground as the helper's child with `SIGKILL` as its
//! parent-death signal; the helper kills it when init is gone (see `Pasta`), so no
//! process is left, and nothing is mounted (`pasta` opens the namespace through an inherited
//! descriptor, `/proc/self/fd/N`).
//!
//! Builds do not start `pasta` per step: the same `start` runs once per namespace in
//! a holder of the build's [`super::netpool`], and the steps join those namespaces
//! (`join`, `Network::Joined`); `Network::Private` remains the one-shot form.
//!
//! # Throughput
//!
//! `pasta` moves every byte through user space on one core (it is single-threaded): a
//! `recvmsg` from the host's socket (a copy to user space) and a `write` of 64 KiB
//! frames to the tap (a copy back, and the namespace's TCP receive path runs in
//! `pasta`'s context), where the host network has one copy to the reader. That is the
//! floor; `benches/run_network.py` measures it (with `pasta`'s CPU time per 50 MB):
//! ~35-45 % of a same-host transfer here, ~1-2 GB/s, far above any mirror apt, pip or
//! cargo reach. No option raises it: the MTU is already the largest (65520; 9000 and
//! 1500 are 3x and 10x slower: the cost is per packet), splicing applies only to
//! port forwarding, IPv4-only is set. slirp4netns is slower still. Root builds on a
//! host that already forwards IPv4 take the kernel's path instead ([`super::veth`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::fs::{Mode, OFlags, CWD};

use super::sys;

/// The step's address on `eth0` (slirp4netns's default, familiar from rootless
/// podman).
pub const ADDRESS: &str = "10.0.2.100";
/// The namespace's default gateway (not mapped to the host).
pub const GATEWAY: &str = "10.0.2.2";
/// The address `pasta` answers DNS queries on, forwarded to the host's resolver.
pub const DNS_FORWARDER: &str = "10.0.2.3";

/// A running `pasta`, killed on drop.
pub(super) struct Pasta(Child);

impl Pasta {
    /// Its process id.
    pub(super) fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Pasta {
    /// `SIGKILL`, not waited for: `pasta`'s exit removes the tap device, ~30 ms of
    /// kernel work (netdevice unregistration) that would otherwise delay every step.
    /// The helper exits right after; the dying `pasta` is reparented and reaped.
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// Unshares a new network namespace for the helper (and so for init, forked later)
/// and starts `pasta` (the executable at `path`) on it. `pasta` itself runs in the
/// host's namespace, which it reads its routes and addresses from: the helper steps
/// back there to spawn it. Returns it and the descriptor that becomes readable (a
/// line) when the namespace is ready, or reaches end-of-file when `pasta` fails.
pub(super) fn start(path: &Path) -> io::Result<(Pasta, OwnedFd)> {
    if crate::userns::in_user_namespace() || super::binfmt::in_own_user_namespace() {
        return start_from_child(path);
    }
    let (host, step) = unshare_keeping_host()?;
    enter(&host)?;
    let started = spawn(path, step.as_fd());
    enter(&step)?;
    started
}

/// Unshares a new network namespace for the caller; returns descriptors of the one it
/// was in (the host's) and of the new one.
pub(super) fn unshare_keeping_host() -> io::Result<(OwnedFd, OwnedFd)> {
    let own = || {
        rustix::fs::openat(
            CWD,
            "/proc/self/ns/net",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let host = own()?;
    sys::unshare(rustix::thread::UnshareFlags::NEWNET)?;
    Ok((host, own()?))
}

/// The tunnel device `pasta` opens in the step's namespace.
pub const TUN: &str = "/dev/net/tun";

/// Whether rbuild's network namespace has a default route (IPv4 or IPv6), which
/// `pasta` copies into the step's: a container started without a network has none,
/// and `pasta` would fail with no more than "no external routable interface".
pub fn has_default_route() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    default_route_in(&read("/proc/net/route"), &read("/proc/net/ipv6_route"))
}

/// [`has_default_route`] on the texts of `/proc/net/route` (a header, then `IFACE
/// DESTINATION(hex) ...`) and `/proc/net/ipv6_route` (`DESTINATION(hex) PREFIX ...`,
/// the device last), not counting loopback.
fn default_route_in(v4: &str, v6: &str) -> bool {
    let v4 = v4.lines().skip(1).any(|line| {
        let mut words = line.split_whitespace();
        matches!((words.next(), words.next()), (Some(dev), Some("00000000")) if dev != "lo")
    });
    let v6 = v6.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        matches!(words[..], [dest, "00", .., dev] if dest.bytes().all(|b| b == b'0') && dev != "lo")
    });
    v4 || v6
}

/// Whether `pasta` can open [`TUN`]: always as root; in a user namespace (a rootless
/// build) only when this user may read and write it (Debian makes it `0666`).
pub fn tun_usable() -> bool {
    let rw = rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK;
    !crate::userns::in_user_namespace() || rustix::fs::access(TUN, rw).is_ok()
}

/// [`start`] in a user namespace (a rootless build, or the step's own for its
/// emulator), where the helper could not step
/// back into the host's network namespace (it belongs to the initial user namespace):
/// a child makes the new namespace, and the helper, still in the host's, spawns
/// `pasta` on it, then joins it.
fn start_from_child(path: &Path) -> io::Result<(Pasta, OwnedFd)> {
    let step = new_namespace_of_child()?;
    let started = spawn(path, step.as_fd());
    enter(&step)?;
    started
}

/// A new network namespace, made by a child that unshares it and waits to be killed
/// once the namespace is open here.
fn new_namespace_of_child() -> io::Result<OwnedFd> {
    let (ready, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let child = match sys::fork()? {
        sys::Forked::Child => {
            let answer: &[u8] = match sys::unshare(rustix::thread::UnshareFlags::NEWNET) {
                Ok(()) => b"y",
                Err(_) => b"n",
            };
            let _ = rustix::io::write(&ready_w, answer);
            loop {
                rustix::event::pause();
            }
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(ready_w);
    let mut answer = [0u8];
    let opened = match rustix::io::read(&ready, &mut answer) {
        Ok(1) if answer[0] == b'y' => rustix::fs::openat(
            CWD,
            format!("/proc/{}/ns/net", child.as_raw_nonzero()),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from),
        _ => Err(io::Error::other("cannot create a network namespace")),
    };
    let _ = rustix::process::kill_process(child, rustix::process::Signal::KILL);
    let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
    opened
}

/// Joins the network namespace at `path` (a pooled one, [`super::netpool`]).
pub(super) fn join(path: &Path) -> io::Result<()> {
    let ns = rustix::fs::openat(CWD, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    enter(&ns)
}

/// `setns` into the network namespace `ns`.
pub(super) fn enter(ns: &OwnedFd) -> io::Result<()> {
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(io::Error::from)
}

/// Spawns `pasta` on the namespace `netns`.
fn spawn(path: &Path, netns: BorrowedFd<'_>) -> io::Result<(Pasta, OwnedFd)> {
    let (ready, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let mut command = Command::new(path);
    command
        .args(pasta_args(
            &format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&netns)),
            &format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&ready_w)),
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let child = sys::spawn_tied(&mut command, &[netns, ready_w.as_fd()])?;
    Ok((Pasta(child), ready))
}

/// Where `pasta` is: the first executable `pasta` in `PATH` (else `/usr/bin`), looked
/// up once per process.
pub fn find_pasta() -> Option<&'static Path> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/bin")])
                .map(|dir| dir.join("pasta"))
                .find(|p| is_executable(p))
        })
        .as_deref()
}

/// Whether `path` is an executable regular file.
pub(super) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `pasta`'s arguments for the namespace at `netns`, reporting readiness at
/// `pid_file`.
fn pasta_args(netns: &str, pid_file: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        // Foreground (the helper's child), quiet; as root `pasta` would otherwise
        // switch to `nobody` and could not open the namespace.
        "--foreground",
        "--quiet",
        "--runas",
        "0",
        "--config-net",
        "--address",
        ADDRESS,
        "--netmask",
        "24",
        "--gateway",
        GATEWAY,
        "--dns-forward",
        DNS_FORWARDER,
        "--no-map-gw",
        // As Docker's default bridge: IPv4 only (pasta would copy the host's IPv6
        // address, making the host's own unreachable).
        "--ipv4-only",
        "--netns-only",
        "--no-netns-quit",
    ]
    .map(str::to_owned)
    .to_vec();
    for forward in ["-t", "-u", "-T", "-U"] {
        args.extend([forward.to_owned(), "none".to_owned()]);
    }
    args.extend([
        "--pid".to_owned(),
        pid_file.to_owned(),
        "--netns".to_owned(),
        netns.to_owned(),
    ]);
    args
}

/// Waits until `ready` says the namespace is configured (init, before the command).
pub(super) fn wait_ready(ready: OwnedFd) -> io::Result<()> {
    let mut line = [0u8; 32];
    loop {
        match rustix::io::read(&ready, &mut line) {
            Ok(0) => {
                return Err(io::Error::other(
                    "pasta exited before the network was ready",
                ))
            }
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The step's `/etc/resolv.conf` from the host's: its `search` and `options` lines,
/// and [`DNS_FORWARDER`] as the only nameserver, which `pasta` forwards to the host's
/// first resolver. The host's own nameservers are not used directly: a loopback one
/// (systemd-resolved's `127.0.0.53`) is unreachable from the namespace, and on some
/// hosts only the forwarder gets answers from the others (measured on the CI machine).
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    for line in host.lines() {
        if line.split_whitespace().next() != Some("nameserver") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!("nameserver {DNS_FORWARDER}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_route_is_one_to_everywhere_not_through_loopback() {
        let header = "Iface\tDestination\tGateway\tFlags\n";
        let eth =
            format!("{header}eth0\t00000000\t0102A8C0\t0003\neth0\t0002A8C0\t00000000\t0001\n");
        assert!(default_route_in(&eth, ""));
        assert!(!default_route_in(
            &format!("{header}eth0\t0002A8C0\t00000000\t0001\n"),
            ""
        ));
        assert!(!default_route_in(header, ""));
        let zero = "0".repeat(32);
        let v6 = format!("{zero} 00 {zero} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n");
        assert!(default_route_in(header, &v6));
        assert!(!default_route_in(header, &v6.replace("eth0", "lo")));
    }

    #[test]
    fn the_forwarder_is_the_only_nameserver() {
        let host =
            "# systemd\nnameserver 127.0.0.53\nnameserver 10.1.1.1\noptions edns0\nsearch lan\n";
        assert_eq!(
            resolv_conf(host),
            "# systemd\noptions edns0\nsearch lan\nnameserver 10.0.2.3\n"
        );
        assert_eq!(resolv_conf(""), "nameserver 10.0.2.3\n");
    }

    #[test]
    fn pasta_forwards_no_port_and_maps_no_gateway() {
        let args = pasta_args("/proc/self/fd/5", "/proc/self/fd/6");
        let joined = args.join(" ");
        for expected in [
            "-t none",
            "-u none",
            "-T none",
            "-U none",
            "--no-map-gw",
            "--runas 0",
            "--pid /proc/self/fd/6",
            "--netns /proc/self/fd/5",
        ] {
            assert!(joined.contains(expected), "{expected} in {joined}");
        }
    }
}
