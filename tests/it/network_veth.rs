//! The default network's backends chosen with `RBUILD_NETWORK_BACKEND`, the veth path
//! above all. This host need not forward IPv4 (and rbuild must not make it), so each
//! test runs rbuild in a *world* of its own: a network namespace (`unshare -n`) with
//! an uplink (a veth pair, 198.51.100.1/24 on `up0`, a default route), forwarding
//! switched on in that namespace only, and two busybox HTTP servers, one on the
//! world's address and one on its loopback only. The ports are the world's own, so
//! fixed ones collide with nothing.

use std::process::{Command, Output};

use crate::support::{busybox, read, TestContext};

/// The world's setup; `$1` is 1 to forward, 0 not to; the test's commands follow.
const WORLD: &str = r#"set -eu
ip link set lo up
ip link add up0 type veth peer name up1
ip addr add 198.51.100.1/24 dev up0
ip link set up0 up; ip link set up1 up
ip route add default via 198.51.100.2
echo "$1" > /proc/sys/net/ipv4/ip_forward
mkdir -p "$W/www"; echo world-address > "$W/www/index.html"
busybox httpd -f -p 198.51.100.1:80 -h "$W/www" & a=$!
busybox httpd -f -p 127.0.0.1:81 -h "$W/www" & b=$!
trap 'kill $a $b' EXIT
for url in http://198.51.100.1:80/ http://127.0.0.1:81/; do
  n=0; until wget -q -T 2 -O /dev/null "$url"; do n=$((n+1)); [ $n -lt 200 ] || exit 9; sleep 0.05; done
done
"#;

/// Whether worlds can be made here: root, `unshare`, `ip`, `nft`, busybox.
fn worlds() -> bool {
    let have = |tool: &str| {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(tool).exists())
    };
    let usable = rustix::process::geteuid().is_root()
        && ["unshare", "ip", "nft", "busybox"].iter().all(|t| have(t));
    if !usable {
        assert!(std::env::var_os("CI").is_none(), "CI installs nftables");
        eprintln!("skipped: needs root, unshare, ip, nft and busybox");
    }
    usable
}

/// Runs `script` after [`WORLD`] (forwarding if `forward`) for the test context `t`,
/// with `RBUILD_NETWORK_BACKEND=backend`; `$R` runs rbuild on `t`'s store, `$CTX` is
/// its context, `$W` a scratch directory.
fn in_world(t: &TestContext, forward: bool, backend: &str, script: &str) -> Output {
    let rbuild = format!(
        "{} --root {}",
        env!("CARGO_BIN_EXE_rbuild"),
        t.root().display()
    );
    Command::new("unshare")
        .args(["-n", "sh", "-c", &format!("{WORLD}{script}"), "world"])
        .arg(if forward { "1" } else { "0" })
        .env("RBUILD_NETWORK_BACKEND", backend)
        .env("R", rbuild)
        .env("CTX", t.context())
        .env("W", t.path("world"))
        .output()
        .expect("unshare")
}

/// What a step sees: its address and route, the world's address, the world's
/// loopback-only server at the step's gateway and whether it may reconfigure.
const PROBE: &str = "RUN ip -4 addr > /addr; ip -6 addr show eth0 > /addr6; ip route > /route; \
    (timeout 10 wget -q -O /outside http://198.51.100.1:80/ || true); \
    gw=$(ip route | sed -n 's/^default via \\([0-9.]*\\).*/\\1/p'); \
    (timeout 5 wget -q -O /loopback http://$gw:81/ || echo unreachable > /loopback); \
    (ip link set eth0 down 2>/admin || echo refused >> /admin); \
    (ip addr add 10.9.9.9/32 dev eth0 2>>/admin || echo refused >> /admin)\n";

/// Builds [`PROBE`] in a forwarding world on `backend`; the context (whose `out` holds
/// the step's files).
fn probe(backend: &str) -> Option<(TestContext, std::path::PathBuf)> {
    let t = busybox(PROBE, &[]).filter(|_| worlds())?;
    let out = t.path("out");
    let script = format!(
        "$R build --progress plain -o type=local,dest={} \"$CTX\"\n",
        out.display()
    );
    let run = in_world(&t, true, backend, &script);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "build in the world failed: {stderr}");
    Some((t, out))
}

#[test]
fn the_veth_backend_reaches_the_hosts_address_not_its_loopback_and_cannot_reconfigure() {
    let Some((_t, out)) = probe("veth") else {
        return;
    };
    let addr = read(&out, "addr");
    assert!(
        addr.contains("inet 10.231."),
        "a /30 of the veth range: {addr}"
    );
    assert!(addr.contains("mtu 65535"), "the largest MTU: {addr}");
    assert_eq!(read(&out, "addr6"), "", "IPv4 only, as on pasta's path");
    assert_eq!(read(&out, "outside"), "world-address\n");
    assert_eq!(
        read(&out, "loopback"),
        "unreachable\n",
        "loopback-only: not reached"
    );
    let admin = read(&out, "admin");
    assert_eq!(
        admin.matches("refused").count(),
        2,
        "no CAP_NET_ADMIN: {admin}"
    );
}

#[test]
fn the_pasta_backend_can_be_chosen_where_veth_would_be() {
    let Some((_t, out)) = probe("pasta") else {
        return;
    };
    let addr = read(&out, "addr");
    assert!(
        addr.contains("inet 10.0.2.100/24"),
        "pasta's address: {addr}"
    );
    assert_eq!(read(&out, "outside"), "world-address\n");
    assert_eq!(read(&out, "loopback"), "unreachable\n");
}

#[test]
fn a_backend_that_cannot_be_used_or_does_not_exist_is_refused() {
    let Some(t) = busybox("RUN true\n", &[]).filter(|_| worlds()) else {
        return;
    };
    let build = "$R build --progress plain \"$CTX\"\n";
    let run = in_world(&t, false, "veth", build);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("RBUILD_NETWORK_BACKEND=veth") && stderr.contains("ip_forward"),
        "says why: {stderr}"
    );
    let run = in_world(&t, true, "kernel", build);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains(
            "RBUILD_NETWORK_BACKEND=kernel is not a network backend: use auto, pasta or veth"
        ),
        "{stderr}"
    );
    // Without forwarding, `auto` is pasta: the build runs.
    let run = in_world(&t, false, "auto", build);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
}

/// `kill -9` of rbuild during a RUN on the veth path: the world keeps no veth, no
/// nftables table, no mount of the build's network namespaces and none of its
/// processes.
const KILLED: &str = r#"
start() { cut -d' ' -f22 /proc/$1/stat 2>/dev/null; }
tree() { for c in $(cat /proc/$1/task/*/children 2>/dev/null); do
  s=$(start $c); [ -z "$s" ] || echo "$c:$s"; tree $c; done; }
$R build --progress plain "$CTX" > /dev/null 2>&1 & r=$!
trap 'kill -9 $r 2>/dev/null || true; kill $a $b' EXIT
n=0; until tree $r | grep -q . && [ -n "$(pgrep -f '^sleep 3141[5]')" ] && nft list tables | grep -q rbuild_; do
  n=$((n+1)); [ $n -lt 1200 ] || { echo "never ran"; exit 8; }; sleep 0.05; done
seen=$(tree $r)
nets=$(for p in $seen; do readlink /proc/${p%%:*}/ns/net; done | sort -u | grep -vx "$(readlink /proc/self/ns/net)")
echo "links: $(ip -br link | grep -c ^rbv)"
kill -9 $r; wait $r || true
n=0; while :; do
  left=""
  for p in $seen; do
    [ "${p#*:}" = "$(start ${p%%:*})" ] && left="$left $p"
  done
  ip -br link | grep -q ^rbv && left="$left veth"
  nft list tables | grep -q rbuild_ && left="$left table"
  [ -z "$left" ] && break
  n=$((n+1)); [ $n -lt 200 ] || { echo "left:$left"; exit 7; }; sleep 0.05
done
for n in $nets; do grep -F " $n " /proc/self/mountinfo && echo "mounted: $n"; done
echo "namespaces: $(echo $nets | wc -w)"
echo clean
"#;

#[test]
fn a_killed_veth_build_leaves_no_veth_table_mount_or_process() {
    let Some(t) = busybox("RUN sleep 31415\n", &[]).filter(|_| worlds()) else {
        return;
    };
    let run = in_world(&t, true, "veth", KILLED);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("links: 1"),
        "the step had its veth: {stdout}"
    );
    assert!(
        !stdout.contains("mounted: "),
        "no netns mount is left: {stdout}"
    );
    assert!(
        !stdout.contains("namespaces: 0"),
        "the step had namespaces: {stdout}"
    );
    assert!(stdout.ends_with("clean\n"), "{stdout}");
}
