#!/usr/bin/env python3
"""RUN network benchmark: user-mode networking (pasta, slirp4netns) against the host's
network, as a RUN step would use it, and what the default network costs a RUN step.

Throughput, for each mode: a fresh network namespace (`unshare --net`), the helper
attached to it the way rbuild attaches it (timed from spawn to "ready": pasta writes its
pid file, slirp4netns writes its ready fd), then a 50 MB download with curl from an
HTTP server bound to the host's non-loopback address. Prints the median of RUNS
downloads (MB/s), the median setup time (ms) and the helper's CPU time per download
(the copy through user space: one core's worth at most, the helpers are
single-threaded). pasta runs with rbuild's options at MTU 65520 (rbuild's), and 9000
and 1500 to show the per-packet cost.

The kernel path rbuild does not take yet, measured for comparison (`veth`): a veth pair
per namespace (host end in the host's namespace, a /30 from VETH_NET, the namespace's
default route through it) and a masquerade rule in an nftables table with the `owner`
flag, held by an `nft -i` child (the kernel deletes the table when that child's netlink
socket closes, also on `kill -9`). The download goes to the host's own address, so no
forwarding is involved and no host-wide setting is read or written. Its setup time is
that of the `ip`/`nft` commands, not of a netlink implementation. At MTU 1500 (Docker's
default) and 65535 (the largest a veth takes).

Per-step cost: rbuild (RBUILD, default target/debug/rbuild) builds STEPS `RUN echo`
steps on a busybox base, uncached, alternately with the default network (pooled: one
namespace per build; on pasta, and on the veth path where the host forwards IPv4)
and with `--network host`; the difference of the medians over STEPS is the default
network's cost per RUN step.

Needs root, curl, pasta (passt), slirp4netns, busybox-static, iproute2 and nftables.

    python3 benches/run_network.py [RUNS] [STEPS]
"""

import http.server
import ipaddress
import itertools
import os
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SIZE = 50 * 1000 * 1000
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
RBUILD = os.environ.get("RBUILD", os.path.join(os.path.dirname(__file__), "..", "target/debug/rbuild"))
TICK = os.sysconf("SC_CLK_TCK")
# The veth mode's /24 (a /30 per namespace, host end .1): not in the host's routes.
VETH_NET = "10.231.254.0"


def host_ip():
    """The address the host uses to reach the outside (UDP connect: no packet sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.254", 9))
        return s.getsockname()[0]


class Blob(http.server.BaseHTTPRequestHandler):
    body = os.urandom(SIZE)

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def serve(ip):
    server = socketserver.ThreadingTCPServer((ip, 0), Blob)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def download(url, ns=None):
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url]
    if ns:
        cmd = ["nsenter", f"--net={ns}"] + cmd
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.replace(",", ".")) / 1e6


def netns(tmp):
    """A network namespace bound to a file (as rbuild's helper binds its own)."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "300"])
    time.sleep(0.05)
    path = os.path.join(tmp, f"ns{holder.pid}")
    open(path, "w").close()
    subprocess.run(["mount", "--bind", f"/proc/{holder.pid}/ns/net", path], check=True)
    return holder, path


def drop_ns(holder, path):
    holder.kill()
    holder.wait()
    subprocess.run(["umount", path], check=True)
    os.unlink(path)


def pasta(mtu):
    """Starts pasta as rbuild does (network.rs `pasta_args`), at `mtu`."""
    def start(path):
        r, w = os.pipe()
        start = time.perf_counter()
        proc = subprocess.Popen(
            ["pasta", "-f", "-q", "--runas", "0", "--config-net", "-m", str(mtu),
             "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2", "--dns-forward", "10.0.2.3",
             "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw",
             "--ipv4-only", "-P", f"/proc/self/fd/{w}", "--netns", path],
            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        os.read(r, 64)
        ready = time.perf_counter() - start
        os.close(r)
        return proc, ready
    return start


def veth(mtu):
    """The kernel path (see the module doc): a veth pair into the namespace at `path`
    and an owner table masquerading its /30, at `mtu`; returns the `nft -i` holder,
    whose end removes the table (the veth goes with the namespace)."""
    routes = subprocess.run(["ip", "-4", "route"], check=True, capture_output=True,
                            text=True).stdout
    if VETH_NET.rsplit(".", 1)[0] + "." in routes:
        raise SystemExit(f"{VETH_NET}/24 is in the host's routes: change VETH_NET")
    # A device and a /30 per namespace: a dropped namespace's veth goes asynchronously.
    counter = itertools.count()

    def start(path):
        begin = time.perf_counter()
        ip = lambda *a: subprocess.run(["ip", *a], check=True)
        ns = lambda *a: subprocess.run(["nsenter", f"--net={path}", "ip", *a], check=True)
        k = next(counter) % 64
        dev = f"rbveth{k}"
        net = ipaddress.IPv4Address(VETH_NET) + 4 * k
        ip("link", "add", dev, "mtu", str(mtu), "type", "veth", "peer", "name", "eth0",
           "mtu", str(mtu), "netns", path)
        ip("addr", "add", f"{net + 1}/30", "dev", dev)
        ip("link", "set", dev, "up")
        ns("addr", "add", f"{net + 2}/30", "dev", "eth0")
        ns("link", "set", "eth0", "up")
        ns("link", "set", "lo", "up")
        ns("route", "add", "default", "via", f"{net + 1}")
        nft = subprocess.Popen(["nft", "-i"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        nft.stdin.write("add table ip rbuild_bench { flags owner; }\n"
                        "add chain ip rbuild_bench post { type nat hook postrouting "
                        "priority srcnat; }\n"
                        f"add rule ip rbuild_bench post ip saddr {net}/30 masquerade\n"
                        "list table ip rbuild_bench\n")
        nft.stdin.flush()
        for line in nft.stdout:  # the listing's last line: the rules are in
            if line.strip() == "}" and line.startswith("}"):
                break
        return nft, time.perf_counter() - begin
    return start


def cpu_ms(pid):
    """User + system CPU time of `pid` so far (ms)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICK


def start_slirp(path):
    r, w = os.pipe()
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
         "--netns-type=path", f"--ready-fd={w}", path, "tap0"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    os.read(r, 1)
    ready = time.perf_counter() - start
    os.close(r)
    return proc, ready


def measure(start, url, tmp):
    speeds, setups, cpus = [], [], []
    for _ in range(RUNS):
        holder, path = netns(tmp)
        proc, ready = start(path)
        setups.append(ready * 1000)
        before = cpu_ms(proc.pid)
        speeds.append(download(url, path))
        cpus.append(cpu_ms(proc.pid) - before)
        if proc.stdin:
            proc.stdin.close()  # nft -i: the owner table goes with its socket
        else:
            proc.terminate()
        proc.wait()
        drop_ns(holder, path)
    return statistics.median(speeds), statistics.median(setups), statistics.median(cpus)


def build_seconds(tmp, networks):
    """Median wall time, per network, of RUNS uncached builds of STEPS `RUN echo`
    steps; the networks' builds alternate, so that the machine's load drifts alike."""
    ctx = os.path.join(tmp, "ctx")
    os.makedirs(ctx, exist_ok=True)
    subprocess.run(["cp", "/bin/busybox", ctx], check=True)
    steps = "".join(f"RUN echo $N {i}\n" for i in range(STEPS))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nCOPY busybox /bin/busybox\n"
                "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
                f"ARG N\n{steps}")
    times = {network: [] for network in networks}
    for run in range(RUNS + 1):
        for network in networks:
            # "default (BACKEND)": the default network on RBUILD_NETWORK_BACKEND=BACKEND
            mode, _, backend = network.partition(" (")
            flags = ["--network", mode] if mode != "default" else []
            env = dict(os.environ, RBUILD_NETWORK_BACKEND=backend.rstrip(")") or "auto")
            start = time.perf_counter()
            subprocess.run([RBUILD, "--root", os.path.join(tmp, "store"), "build", "-q",
                            "--build-arg", f"N={network}{run}{time.time()}", *flags, ctx],
                           check=True, stdout=subprocess.DEVNULL, env=env)
            if run:  # the first round warms the base
                times[network].append(time.perf_counter() - start)
    return {network: statistics.median(t) for network, t in times.items()}


def main():
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    ip = host_ip()
    url = f"http://{ip}:{serve(ip)}/blob"
    host = statistics.median(download(url) for _ in range(RUNS))
    print(f"host network: {host:8.1f} MB/s (50 MB from {ip}, median of {RUNS})")
    modes = (("pasta", pasta(65520)), ("pasta -m 9000", pasta(9000)),
             ("pasta -m 1500", pasta(1500)), ("slirp4netns", start_slirp),
             ("veth -m 1500", veth(1500)), ("veth -m 65535", veth(65535)))
    with tempfile.TemporaryDirectory() as tmp:
        for name, start in modes:
            speed, setup, cpu = measure(start, url, tmp)
            print(f"{name:14}: {speed:8.1f} MB/s ({100 * speed / host:3.0f} % of host), "
                  f"setup {setup:5.1f} ms, helper CPU {cpu:4.0f} ms per 50 MB (medians)")
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forwards = f.read().strip() == "1"
    # rbuild takes the veth path only on a host that already forwards.
    defaults = ["default (pasta)"] + (["default (veth)"] if forwards else [])
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        medians = build_seconds(tmp, defaults + ["host"])
    hostnet = medians["host"]
    for network in defaults:
        per_step = (medians[network] - hostnet) * 1000 / STEPS
        print(f"{STEPS} RUN steps, uncached (median of {RUNS} builds): {network} "
              f"{medians[network] * 1000:.0f} ms, --network host {hostnet * 1000:.0f} ms: "
              f"{per_step:+.1f} ms per step")
    if not forwards:
        print("(no veth build: this host does not forward IPv4, so rbuild uses pasta)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
