//! The kernel data path of the default network ([`super::netpool::Backend::Veth`]),
//! for root builds on hosts that already forward IPv4, the way Docker's default
//! bridge works: a veth pair per pooled namespace (the host end `rbv<N>` in the host's
//! namespace, the step's end `eth0`), a private /30 of [`RANGE`] (host end `.1`, the
//! step `.2`, its default route through `.1`), and a masquerade rule for what the
//! step sends elsewhere. No byte goes through user space: the copy `pasta` makes on
//! one core is gone (`benches/run_network.py`).
//!
//! # When
//!
//! [`check`] says why not, else the tools: the process is root in the initial user
//! namespace (rootless builds keep `pasta`: a veth's host end needs privilege there);
//! `net.ipv4.ip_forward` is already 1 (as on every Docker host: rbuild writes no
//! host-wide setting, so on a host that does not forward, outbound traffic could not
//! leave and `pasta` is used); `/etc/resolv.conf` names resolvers and none on loopback
//! (systemd-resolved's `127.0.0.53` is unreachable from the step's namespace: `pasta`,
//! whose forwarder reaches it, is used then); `ip` (iproute2) and `nft` (nftables) are
//! installed.
//!
//! # Nothing outlives the holder
//!
//! Each pooled namespace's holder ([`super::netpool`]) attaches its own pair
//! (`attach`) and keeps what it made alive exactly as long as itself: the
//! step's end lives in the holder's namespace, and the kernel deletes a veth pair
//! when either end's namespace goes; the masquerade rule is in an nftables table with
//! the `owner` flag, made by an `nft -i` child (tied to the holder by `SIGKILL` as its
//! parent-death signal, and reading the holder's pipe): the kernel deletes an owner
//! table when the netlink socket that made it closes, so when `nft` ends, however it
//! ends; the /30 is claimed with an `flock` on `/run/rbuild/veth/<N>.lock`, which the
//! kernel releases with the holder. Several rbuild processes at once claim different
//! slots; a slot whose /30 overlaps one of the host's routes is skipped.
//!
//! # What a step can reach
//!
//! As from Docker's default bridge: the host at its non-loopback addresses, the other
//! builds' namespaces through the host's routing, the outside through the masquerade.
//! Not the host's loopback: a service bound to `127.0.0.1` does not answer at another
//! address, and the table drops what arrives on the host end for `127.0.0.0/8` (a
//! step has `CAP_NET_RAW`, Docker's default, and could write such frames itself; the
//! kernel drops them too unless the host set `route_localnet`, as kube-proxy does) or
//! from another source than the step's address (no spoofing of other builds or of
//! the host). A step has no `CAP_NET_ADMIN` (`caps.rs`), so it can change neither its
//! addresses nor its routes, and it sees no host traffic (a namespace of its own).
//! IPv4 only, as on `pasta`'s path: IPv6 is off on the step's `eth0` (the veth's
//! link-local addresses would otherwise reach the host's IPv6 services). DNS: the
//! host's `resolv.conf` as it is (its resolvers are not on loopback, checked).

use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use super::sys;

/// The range the /30s come from (16384 of them).
pub const RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 231, 0, 0), 16);

/// Where the slots' lock files are.
const LOCK_DIR: &str = "/run/rbuild/veth";

/// The MTU of both ends: the largest a veth takes (at 1500, Docker's, the transfer is
/// ~3x slower: the cost is per packet).
const MTU: &str = "65535";

/// The programs the kernel path runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// iproute2's `ip`.
    pub ip: PathBuf,
    /// nftables' `nft`.
    pub nft: PathBuf,
}

/// The tools if the kernel path can be used on this host, else why not (a phrase
/// that follows "the veth network backend is not usable: ").
pub fn check() -> Result<Tools, String> {
    if crate::userns::in_user_namespace() || !rustix::process::geteuid().is_root() {
        return Err("it needs root (a rootless build uses pasta)".into());
    }
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    if forward.trim() != "1" {
        return Err(
            "this host does not forward IPv4 (net.ipv4.ip_forward is not 1; rbuild \
                    changes no host-wide setting)"
                .into(),
        );
    }
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    resolvers_reachable(&resolv)?;
    let tool = |name: &str| {
        find_tool(name).ok_or_else(|| format!("`{name}` is not installed (iproute2, nftables)"))
    };
    Ok(Tools {
        ip: tool("ip")?,
        nft: tool("nft")?,
    })
}

/// Whether the resolvers of `resolv` (a `resolv.conf`) can be reached from a step's
/// namespace: there are some, and none is on loopback.
fn resolvers_reachable(resolv: &str) -> Result<(), String> {
    let servers: Vec<&str> = resolv
        .lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["nameserver", server, ..] => Some(server),
                _ => None,
            },
        )
        .collect();
    let on_loopback = |s: &&str| {
        s.parse::<std::net::IpAddr>()
            .map_or(true, |ip| ip.is_loopback())
    };
    match servers.iter().copied().find(on_loopback) {
        _ if servers.is_empty() => Err("/etc/resolv.conf names no nameserver".into()),
        Some(server) => Err(format!(
            "/etc/resolv.conf names the resolver {server}, unreachable from a step's namespace"
        )),
        None => Ok(()),
    }
}

/// The first executable `name` in `PATH`, else in the system directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| super::network::is_executable(p))
}

/// One slot: its /30's network address.
fn slot_net(slot: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(RANGE.0) + 4 * slot)
}

/// How many /30s [`RANGE`] holds.
fn slots() -> u32 {
    1 << (32 - u32::from(RANGE.1) - 2)
}

/// The host's IPv4 routes other than default ones, as (network, mask), from the
/// text of `/proc/net/route` (a header, then `IFACE DEST GATEWAY FLAGS REFCNT USE
/// METRIC MASK ...`, addresses in little-endian hex).
fn routes_in(text: &str) -> Vec<(u32, u32)> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            Some((hex(words.get(1)?)?, hex(words.get(7)?)?))
        })
        .filter(|&(_, mask)| mask != 0)
        .collect()
}

/// Whether the /30 at `net` overlaps one of `routes`.
fn overlaps(net: Ipv4Addr, routes: &[(u32, u32)]) -> bool {
    let (net, mask) = (u32::from(net), u32::MAX << 2);
    routes.iter().any(|&(dest, m)| {
        let common = m & mask;
        dest & common == net & common
    })
}

/// A free slot not in `skip`, claimed: its lock stays held while the descriptor is
/// open.
fn claim(skip: &[u32]) -> io::Result<(u32, OwnedFd)> {
    use rustix::fs::{FlockOperation, Mode, OFlags, CWD};
    std::fs::create_dir_all(LOCK_DIR)?;
    let routes = routes_in(&std::fs::read_to_string("/proc/net/route")?);
    let start = std::process::id() % slots();
    for slot in (0..slots()).map(|i| (start + i) % slots()) {
        if skip.contains(&slot) || overlaps(slot_net(slot), &routes) {
            continue;
        }
        let path = format!("{LOCK_DIR}/{slot}.lock");
        let flags = OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let lock = rustix::fs::openat(CWD, &path, flags, Mode::from_raw_mode(0o600))?;
        if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
            return Ok((slot, lock));
        }
    }
    Err(io::Error::other(format!(
        "no free /30 in {}/{} (every slot in use or on a host route)",
        RANGE.0, RANGE.1
    )))
}

/// A namespace's pair and masquerade, alive while this is.
pub(super) struct Attached {
    _lock: OwnedFd,
    nft: Child,
    /// Closed (then `nft` ends, and the kernel deletes its table) on drop.
    nft_in: Option<ChildStdin>,
}

impl Attached {
    /// The `nft` process, whose end means the masquerade is gone.
    pub(super) fn nft_pid(&self) -> u32 {
        self.nft.id()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        drop(self.nft_in.take());
        let _ = self.nft.wait();
    }
}

/// Attaches the namespace `step` to the host's, which the caller is in: the pair, the
/// host end's address, the masquerade; then enters `step` and configures the step's
/// end and the default route. The caller is left in `step`.
pub(super) fn attach(tools: &Tools, step: &OwnedFd) -> io::Result<Attached> {
    let ip = |args: &[&str]| run(&tools.ip, args, &[step.as_fd()]);
    let (slot, lock) = pair(&ip, step)?;
    let net = slot_net(slot);
    let (gateway, address) = (
        Ipv4Addr::from(u32::from(net) + 1),
        Ipv4Addr::from(u32::from(net) + 2),
    );
    let dev = format!("rbv{slot}");
    ip(&["addr", "add", &format!("{gateway}/30"), "dev", &dev])?;
    ip(&["link", "set", &dev, "up"])?;
    let (nft, nft_in) = masquerade(&tools.nft, slot, net, &dev)?;
    let attached = Attached {
        _lock: lock,
        nft,
        nft_in: Some(nft_in),
    };
    super::network::enter(step)?;
    ip(&["addr", "add", &format!("{address}/30"), "dev", "eth0"])?;
    ip(&["link", "set", "eth0", "up"])?;
    ip(&["link", "set", "lo", "up"])?;
    ip(&["route", "add", "default", "via", &gateway.to_string()])?;
    ipv4_only()?;
    Ok(attached)
}

/// Claims a slot and makes its pair, the step's end in `step`: another slot when the
/// device's name is still taken (a dead holder's namespace goes asynchronously).
fn pair(ip: &dyn Fn(&[&str]) -> io::Result<()>, step: &OwnedFd) -> io::Result<(u32, OwnedFd)> {
    let step_path = format!("/proc/self/fd/{}", step.as_raw_fd());
    let mut taken = Vec::new();
    loop {
        let (slot, lock) = claim(&taken)?;
        let dev = format!("rbv{slot}");
        match ip(&[
            "link", "add", &dev, "mtu", MTU, "type", "veth", "peer", "name", "eth0", "mtu", MTU,
            "netns", &step_path,
        ]) {
            Ok(()) => return Ok((slot, lock)),
            Err(e) if e.to_string().contains("File exists") && taken.len() < 16 => taken.push(slot),
            Err(e) => return Err(e),
        }
    }
}

/// Switches IPv6 off on the step's `eth0` (a setting of the caller's namespace, not
/// the host's), as on `pasta`'s path: otherwise the veth's link-local addresses would
/// reach the host's IPv6 services. Loopback keeps `::1`, as on `pasta`'s path.
fn ipv4_only() -> io::Result<()> {
    match std::fs::write("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()), // a kernel without IPv6
        other => other,
    }
}

/// Runs `program` with `args` (descriptors `keep` inherited); its output is the error.
fn run(program: &Path, args: &[&str], keep: &[std::os::fd::BorrowedFd<'_>]) -> io::Result<()> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = sys::spawn_tied(&mut command, keep)?.wait_with_output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "`{} {}` failed: {}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The rules of slot `slot`'s table: what arrives on its host end `dev` from another
/// address than the step's or for the host's loopback is dropped; what the /30 at
/// `net` sends out of another device leaves with the host's address.
fn ruleset(slot: u32, net: Ipv4Addr, dev: &str) -> String {
    let table = format!("ip rbuild_{slot}");
    let step = Ipv4Addr::from(u32::from(net) + 2);
    format!(
        "add table {table} {{ flags owner; }}\n\
         add chain {table} prerouting {{ type filter hook prerouting priority raw; }}\n\
         add rule {table} prerouting iifname \"{dev}\" ip saddr != {step} drop\n\
         add rule {table} prerouting iifname \"{dev}\" ip daddr 127.0.0.0/8 drop\n\
         add chain {table} postrouting {{ type nat hook postrouting priority srcnat; }}\n\
         add rule {table} postrouting ip saddr {net}/30 oifname != \"{dev}\" masquerade\n\
         list table {table}\n"
    )
}

/// Starts `nft -i` (in the host's namespace) with slot `slot`'s owner table, and
/// waits until it lists it back; an `Error:` line it prints fails.
fn masquerade(nft: &Path, slot: u32, net: Ipv4Addr, dev: &str) -> io::Result<(Child, ChildStdin)> {
    let (out, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let mut command = Command::new(nft);
    command
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out_w.try_clone()?))
        .stderr(Stdio::from(out_w));
    let mut child = sys::spawn_tied(&mut command, &[])?;
    drop(command);
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("nft has no stdin"))?;
    stdin.write_all(ruleset(slot, net, dev).as_bytes())?;
    stdin.flush()?;
    let mut said = String::new();
    for line in BufReader::new(std::fs::File::from(out)).lines() {
        let line = line?;
        if line == "}" && !said.contains("Error:") {
            return Ok((child, stdin));
        }
        said.push_str(&line);
        said.push('\n');
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(io::Error::other(format!(
        "nft could not make the masquerade: {}",
        said.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_or_none_are_unreachable() {
        assert!(resolvers_reachable("nameserver 10.1.1.1\nsearch lan\n").is_ok());
        let err = resolvers_reachable("nameserver 10.1.1.1\nnameserver 127.0.0.53\n");
        assert!(err.is_err_and(|e| e.contains("127.0.0.53")));
        assert!(resolvers_reachable("nameserver ::1\n").is_err());
        assert!(resolvers_reachable("search lan\n").is_err());
    }

    #[test]
    fn a_slot_on_a_host_route_is_skipped() {
        let text = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                    eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\n\
                    eth0\t0004E70A\t00000000\t0001\t0\t0\t0\t00FCFFFF\n";
        let routes = routes_in(text);
        assert_eq!(
            routes,
            vec![(u32::from(Ipv4Addr::new(10, 231, 4, 0)), 0xffff_fc00)]
        );
        assert!(overlaps(Ipv4Addr::new(10, 231, 5, 8), &routes));
        assert!(!overlaps(Ipv4Addr::new(10, 231, 8, 0), &routes));
        assert!(
            !overlaps(slot_net(0), &routes),
            "the default route is no overlap"
        );
        assert_eq!(slot_net(slots() - 1), Ipv4Addr::new(10, 231, 255, 252));
    }

    #[test]
    fn the_table_is_owned_and_masquerades_only_the_slot() {
        let rules = ruleset(7, slot_net(7), "rbv7");
        assert!(
            rules.contains("add table ip rbuild_7 { flags owner; }"),
            "{rules}"
        );
        assert!(rules.contains("ip saddr 10.231.0.28/30 oifname != \"rbv7\" masquerade"));
        assert!(
            rules.contains("iifname \"rbv7\" ip saddr != 10.231.0.30 drop"),
            "{rules}"
        );
        assert!(
            rules.contains("iifname \"rbv7\" ip daddr 127.0.0.0/8 drop"),
            "{rules}"
        );
    }
}
