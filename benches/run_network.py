#!/usr/bin/env python3
"""RUN network benchmark: user-mode networking (pasta, slirp4netns) against the host's
network, as a RUN step would use it.

For each mode: a fresh network namespace (`unshare --net`), the helper attached to it
the way rbuild attaches it (timed from spawn to "ready": pasta writes its pid file,
slirp4netns writes its ready fd), then a 50 MB download with curl from an HTTP server
bound to the host's non-loopback address. Prints the median of RUNS downloads (MB/s)
and the median setup time (ms). Needs root, curl, pasta (passt) and slirp4netns.

    python3 benches/run_network.py [RUNS]
"""

import http.server
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


def start_pasta(path):
    r, w = os.pipe()
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["pasta", "-f", "-q", "--runas", "0", "--config-net",
         "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2", "--dns-forward", "10.0.2.3",
         "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw", "--ipv4-only",
         "-P", f"/proc/self/fd/{w}", "--netns", path],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    os.read(r, 64)
    ready = time.perf_counter() - start
    os.close(r)
    return proc, ready


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


def measure(name, start, url, tmp):
    speeds, setups = [], []
    for _ in range(RUNS):
        holder, path = netns(tmp)
        proc, ready = start(path)
        setups.append(ready * 1000)
        speeds.append(download(url, path))
        proc.terminate()
        proc.wait()
        drop_ns(holder, path)
    return name, statistics.median(speeds), statistics.median(setups)


def main():
    ip = host_ip()
    url = f"http://{ip}:{serve(ip)}/blob"
    host = statistics.median(download(url) for _ in range(RUNS))
    print(f"host network: {host:8.1f} MB/s (50 MB from {ip}, median of {RUNS})")
    with tempfile.TemporaryDirectory() as tmp:
        for name, start in (("pasta", start_pasta), ("slirp4netns", start_slirp)):
            name, speed, setup = measure(name, start, url, tmp)
            print(f"{name:12}: {speed:8.1f} MB/s ({100 * speed / host:3.0f} % of host), "
                  f"setup {setup:5.1f} ms (median)")


if __name__ == "__main__":
    main()
