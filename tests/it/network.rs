//! RUN networking: entitlements (`--allow`) and the isolated default network.

use crate::support::*;

#[test]
fn run_network_host_and_security_insecure_need_their_allow() {
    for (line, flag) in [
        ("RUN --network=host true", "--allow network.host"),
        ("RUN --security=insecure true", "--allow security.insecure"),
    ] {
        let t = TestContext::new(&format!("FROM scratch\n{line}\n"), &[]);
        let err = t.build_fails(&[]);
        let option = line.split(' ').nth(1).unwrap_or_default();
        assert!(
            err.contains(&format!("RUN {option} needs {flag}")),
            "names the flag: {err}"
        );
        assert!(err.contains("Dockerfile:2"), "names the line: {err}");
        // The other entitlement does not grant this one.
        let other = if flag.contains("network") {
            "security.insecure"
        } else {
            "network.host"
        };
        let err = t.build_fails(&["--allow", other]);
        assert!(err.contains(&format!("needs {flag}")), "{err}");
    }
}

#[test]
fn allow_refuses_what_rbuild_cannot_grant_by_name() {
    let t = TestContext::new("FROM scratch\n", &[]);
    for (value, says) in [
        ("device", "no CDI device injection"),
        ("buildx.local.delete", "rbuild prune"),
        ("network.hots", "unknown entitlement"),
    ] {
        let err = t.build_fails(&["--allow", value]);
        assert!(err.contains(&format!("--allow {value}: ")), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn granted_entitlements_let_the_steps_run() {
    let Some(t) = busybox(
        "RUN --network=host echo host > /host\nRUN --security=insecure echo insecure > /insecure\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let args = [
        "build",
        "--progress=plain",
        "--allow",
        "network.host",
        "--allow=security.insecure",
        "-o",
        &dest,
    ];
    let ctx = t.context().to_string_lossy().into_owned();
    let (_, stderr) = run_ok(&t.root(), &[&args[..], &[ctx.as_str()]].concat(), &[]);
    assert!(
        stderr.contains("RUN --security=insecure runs in the default sandbox"),
        "says it is not privileged: {stderr}"
    );
    assert_eq!(read(&out, "host"), "host\n");
    assert_eq!(read(&out, "insecure"), "insecure\n");
}

/// The host's IPv4 address on its default route (a UDP connect sends nothing), if it
/// has one that is not loopback.
pub(crate) fn host_ip() -> Option<std::net::Ipv4Addr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// Answers every HTTP request on `ip` with `body` until the test ends; the port.
pub(crate) fn serve_on(ip: std::net::Ipv4Addr, body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind((ip, 0)).expect("listen");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 4096]);
            let reply = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// A busybox build whose steps run `script` on the default network; its local output.
fn run_default(script: &str) -> Option<(TestContext, std::path::PathBuf)> {
    let t = busybox(&format!("RUN {script}\n"), &[])?;
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    t.build(&["-o", &dest]);
    Some((t, out))
}

#[test]
fn the_default_network_reaches_the_hosts_address_but_not_its_loopback() {
    let Some(ip) = host_ip() else {
        assert!(std::env::var_os("CI").is_none(), "CI hosts have an address");
        eprintln!("skipped: the host has no non-loopback IPv4 address");
        return;
    };
    let outside = serve_on(ip, "host-address");
    let inside = serve_on(std::net::Ipv4Addr::LOCALHOST, "host-loopback");
    // busybox wget (its nc half-closes, which Debian 12's pasta does not carry back).
    let get = |host: String, port: u16, file: &str| {
        format!("(timeout 10 wget -O /{file} http://{host}:{port}/ > /{file}.log 2>&1; echo $? >> /{file}.log)")
    };
    let script = format!(
        "{}; {}",
        get(ip.to_string(), outside, "outside"),
        get("127.0.0.1".into(), inside, "loopback")
    );
    let Some((_t, out)) = run_default(&script) else {
        return;
    };
    let outside = std::fs::read_to_string(out.join("outside")).unwrap_or_default();
    assert_eq!(outside, "host-address", "{}", read(&out, "outside.log"));
    let loopback = std::fs::read_to_string(out.join("loopback")).unwrap_or_default();
    assert_eq!(loopback, "", "the host's loopback is not reached");
    let log = read(&out, "loopback.log");
    assert!(log.contains("refused"), "{log}");
}

#[test]
fn a_step_has_a_namespace_of_its_own_so_it_sees_no_host_traffic() {
    let Some((_t, out)) = run_default(
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /ifaces; ip -4 addr > /addrs",
    ) else {
        return;
    };
    // A packet socket sees the interfaces of its own namespace only: `lo` and pasta's
    // tap or the veth's end, not the host's.
    let ifaces: Vec<String> = read(&out, "ifaces").lines().map(str::to_owned).collect();
    assert_eq!(ifaces.len(), 2, "lo and the tap or veth: {ifaces:?}");
    assert!(ifaces.contains(&"lo".to_owned()), "{ifaces:?}");
    let addrs = read(&out, "addrs");
    let ours = ["inet 10.0.2.100/24", "inet 10.231."];
    assert!(
        ours.iter().any(|a| addrs.contains(a)),
        "pasta's or veth's: {addrs}"
    );
    if let Some(ip) = host_ip() {
        assert!(
            !addrs.contains(&format!("inet {ip}/")),
            "not the host's: {addrs}"
        );
    }
}

#[test]
fn dns_in_a_step_goes_through_pastas_forwarder() {
    // Offline, the test can check where queries go and, when the host's resolver
    // answers for a name, that the step gets the answer too.
    let name = "deb.debian.org";
    let host_resolves = std::net::ToSocketAddrs::to_socket_addrs(&(name, 80)).is_ok();
    let script = format!(
        "RUN cp /etc/resolv.conf /resolv; nslookup {name} > /lookup 2>&1; echo $? >> /lookup\n"
    );
    let Some(t) = busybox(&script, &[]) else {
        return;
    };
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let ctx = t.context().to_string_lossy().into_owned();
    let args = ["build", "--progress", "plain", "-o", &dest, &ctx];
    run_ok(&t.root(), &args, &[("RBUILD_NETWORK_BACKEND", "pasta")]);
    let resolv = read(&out, "resolv");
    let servers: Vec<&str> = resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(servers, ["nameserver 10.0.2.3"], "{resolv}");
    let lookup = read(&out, "lookup");
    if host_resolves {
        assert!(
            lookup.ends_with("0\n"),
            "resolved through the forwarder: {lookup}"
        );
        assert!(lookup.contains("Address"), "{lookup}");
    } else {
        eprintln!("skipped the lookup: the host cannot resolve {name}");
    }
}

#[test]
fn steps_reuse_a_namespace_they_cannot_reconfigure() {
    // The first step tries what a step left in a shared namespace could break: an
    // address, a route, the link state (all need CAP_NET_ADMIN, which no step has).
    let Some(t) = busybox(
        "RUN readlink /proc/self/ns/net > /ns1; ip -4 addr > /addrs1; ip route > /routes1; \\
            (ip addr add 10.9.9.9/24 dev lo; echo $?) > /addr 2>&1; \\
            (ip route add 10.8.0.0/16 via 10.0.2.2; echo $?) > /route 2>&1; \\
            (ip link set lo down; echo $?) > /down 2>&1\n\
         RUN readlink /proc/self/ns/net > /ns2; ip -4 addr > /addrs; ip route > /routes\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    t.build(&["-o", &format!("type=local,dest={}", out.display())]);
    let ns1 = read(&out, "ns1");
    assert!(ns1.starts_with("net:["), "{ns1}");
    assert_eq!(
        ns1,
        read(&out, "ns2"),
        "the second step reuses the namespace"
    );
    for attempt in ["addr", "route", "down"] {
        let said = read(&out, attempt);
        let code = said.lines().last().unwrap_or_default();
        assert!(
            code != "0" && said.contains("not permitted"),
            "{attempt}: {said}"
        );
    }
    let addrs = read(&out, "addrs");
    assert!(addrs.contains("inet "), "{addrs}");
    assert_eq!(
        addrs,
        read(&out, "addrs1"),
        "the addresses are as they were"
    );
    assert!(!addrs.contains("10.9.9.9"), "{addrs}");
    assert!(!addrs.contains("state DOWN"), "lo stays up: {addrs}");
    let routes = read(&out, "routes");
    assert!(routes.contains("default via "), "{routes}");
    assert_eq!(routes, read(&out, "routes1"), "the routes are as they were");
    assert!(!routes.contains("10.8.0.0"), "{routes}");
}

/// `(pid, parent pid, comm, start time)` of every host process.
fn processes() -> Vec<(u32, u32, String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(") ")?;
            let comm = head.split_once(" (")?.1.to_owned();
            let fields: Vec<&str> = rest.split(' ').collect();
            Some((
                pid,
                fields.get(1)?.parse().ok()?,
                comm,
                fields.get(19)?.parse().ok()?,
            ))
        })
        .collect()
}

/// `(pid, comm, start time)` of `root` and its descendants.
fn tree(root: u32) -> Vec<(u32, String, u64)> {
    let all = processes();
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        pids.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    all.into_iter()
        .filter(|p| pids.contains(&p.0))
        .map(|(pid, _, comm, start)| (pid, comm, start))
        .collect()
}

/// Polls (up to `secs`) until `done` holds; the last value seen.
fn poll<T>(secs: u64, get: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let now = get();
        if done(&now) || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn pasta_ends_with_a_killed_build() {
    let Some(t) = busybox("RUN sleep 30\n", &[]) else {
        return;
    };
    let ctx = t.context().to_string_lossy().into_owned();
    let root = t.root();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args([
            "--root",
            &root.to_string_lossy(),
            "build",
            "--progress=plain",
            &ctx,
        ])
        .env("RBUILD_NETWORK_BACKEND", "pasta")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start rbuild");
    kill_during_sleep_leaves_nothing(child);
}

/// Waits until the build `child` runs a step's `sleep` with its `pasta` (the pooled
/// namespace's), kills it (`kill -9`), and checks that none of its processes is left.
pub(crate) fn kill_during_sleep_leaves_nothing(mut child: std::process::Child) {
    let is_pasta = |p: &(u32, String, u64)| p.1.starts_with("pas");
    // Wait for the `sleep` step: the build's one pasta (the pooled namespace's) runs.
    let seen = poll(
        60,
        || tree(child.id()),
        |m| m.iter().any(is_pasta) && m.iter().any(|p| p.1 == "sleep"),
    );
    assert!(
        seen.iter().any(is_pasta),
        "a step runs with its pasta: {seen:?}"
    );
    child.kill().expect("kill -9 rbuild");
    let _ = child.wait();
    let left = poll(
        10,
        || {
            let all = processes();
            let alive = |p: &&(u32, String, u64)| all.iter().any(|q| q.0 == p.0 && q.3 == p.2);
            seen.iter().filter(alive).cloned().collect::<Vec<_>>()
        },
        Vec::is_empty,
    );
    assert!(left.is_empty(), "nothing of the build is left: {left:?}");
}
