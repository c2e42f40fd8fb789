"""bench/egress.py - the egress proxy's cost: a CONNECT tunnel's throughput
(1 GiB each way) and the latency the proxy adds per plain-HTTP request, each
against the same client talking to the same server directly over loopback.
The client runs inside a sandbox (network = allowlist) for the proxied runs
and on the host for the direct ones; the server is a separate process."""
import os
import socket
import statistics
import subprocess
import sys
import time

from conftest import Warren, free_port

SERVER = r'''
import socket, socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        s, line = self.request, b""
        while not line.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                return
            line += b
        if line.startswith(b"GET "):          # one small HTTP answer, then close
            while not line.endswith(b"\r\n\r\n"):
                line += s.recv(1)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            return
        op, n = line.split()
        n = int(n)
        if op == b"D":                        # send n bytes
            block = memoryview(bytes(1 << 20))
            while n:
                k = min(n, len(block))
                s.sendall(block[:k])
                n -= k
        else:                                 # read to EOF, answer the count
            buf, got = bytearray(1 << 20), 0
            while True:
                k = s.recv_into(buf)
                if not k:
                    break
                got += k
            s.sendall(b"%d\n" % got)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''

CLIENT = r'''
import socket, statistics, sys, time
mode, port, n, reqs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def conn():
    if mode == "direct":
        return socket.create_connection(("127.0.0.1", port))
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (port, port))
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s
s = conn()
t0 = time.perf_counter()
s.sendall(b"D %d\n" % n)
buf, got = bytearray(1 << 20), 0
while got < n:
    k = s.recv_into(buf)
    if not k:
        break
    got += k
down = got / (time.perf_counter() - t0) / 1e6
assert got == n, got
s.close()
s = conn()
t0 = time.perf_counter()
s.sendall(b"U 0\n")
block, left = memoryview(bytes(1 << 20)), n
while left:
    k = min(left, len(block))
    s.sendall(block[:k])
    left -= k
s.shutdown(socket.SHUT_WR)
ack = s.recv(64)
up = n / (time.perf_counter() - t0) / 1e6
assert int(ack) == n, ack
lat = []
for _ in range(reqs):
    t0 = time.perf_counter()
    if mode == "direct":
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    else:
        s = socket.create_connection(("127.0.0.1", 3128))
        s.sendall(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                  b"Connection: close\r\n\r\n" % (port, port))
    reply = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        reply += b
    s.close()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok"), reply
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
print(down, up, statistics.median(lat), lat[int(len(lat) * 0.9)])
'''


RELAY_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay_bound.c")


def start_relay(base, port):
    """bench/relay_bound.c built and listening on a free port in front of
    `port`: (process, its port)"""
    exe = os.path.join(base, "relay_bound")
    subprocess.run(["cc", "-std=gnu11", "-O2", "-o", exe, RELAY_SRC], check=True)
    rport = free_port()
    proc = subprocess.Popen([exe, str(rport), str(port)])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", rport), timeout=1).close()
            return proc, rport
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("relay_bound did not start")
            time.sleep(0.02)


def host_client(port, size, reqs):
    r = subprocess.run(["/usr/bin/python3", "-c", CLIENT, "direct", str(port), str(size),
                        str(reqs)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [float(x) for x in r.stdout.split()]


def measure(base, size, reqs):
    """Rows (name, proxied, direct) for results.md, then the same for the
    bare relay against direct."""
    port = free_port()
    srv = subprocess.Popen(["/usr/bin/python3", "-c", SERVER, str(port)])
    relay, rport = None, None
    w = Warren(base, tenants=("net",), tenant_extra={
        "net": f"[sandbox]\nnetwork = allowlist\nallow = 127.0.0.1:{port}\n"})
    try:
        w.start()
        r = w.ssh("net", "cat > eg.py", input=CLIENT)
        assert r.returncode == 0, r.stderr
        relay, rport = start_relay(base, port)
        runs = {"proxy": [], "direct": [], "relay": []}
        for _ in range(3):  # alternate, best of three each (throughput is noisy)
            r = w.ssh("net", f"/usr/bin/python3 eg.py proxy {port} {size} {reqs}", timeout=600)
            assert r.returncode == 0, r.stderr
            runs["proxy"].append([float(x) for x in r.stdout.split()])
            runs["direct"].append(host_client(port, size, reqs))
            runs["relay"].append(host_client(rport, size, reqs))
    finally:
        w.stop()
        for p in (srv, relay):
            if p is not None:
                p.kill()
                p.wait()
    best = {k: (max(x[0] for x in v), max(x[1] for x in v),
                statistics.median(x[2] for x in v), statistics.median(x[3] for x in v))
            for k, v in runs.items()}
    p, d, b = best["proxy"], best["direct"], best["relay"]
    mib = size >> 20
    return [(f"{mib} MiB down a CONNECT tunnel, MB/s", p[0], d[0]),
            (f"{mib} MiB up a CONNECT tunnel, MB/s", p[1], d[1]),
            (f"plain-HTTP request, new connection each, median ms ({reqs} requests)", p[2], d[2]),
            ("plain-HTTP request, new connection each, p90 ms", p[3], d[3]),
            (f"bound: {mib} MiB down through a bare relay on the host, MB/s", b[0], d[0]),
            (f"bound: {mib} MiB up through a bare relay on the host, MB/s", b[1], d[1]),
            ("bound: plain-HTTP request through the bare relay, median ms", b[2], d[2])]


def section(rows, size):
    lines = ["## Egress proxy", "",
             "Client inside a sandbox with `network = allowlist` (through warren's proxy: CONNECT "
             "for bulk, absolute-URI GET for requests), against the same client on the host "
             "talking to the same server directly over loopback. Best of three alternated runs "
             "for throughput, median of the medians for latency.", "",
             "The rows marked bound run the same client on the host through "
             "`bench/relay_bound.c`: no sandbox, no checks, read/write through 1 MiB buffers, "
             "the least any user-space relay does on this machine.", "",
             "| measure | through warren | direct | ratio |", "| --- | ---: | ---: | ---: |"]
    for name, a, b in rows:
        lines.append(f"| {name} | {a:.2f} | {b:.2f} | {a / b if b else float('nan'):.2f} |")
    down, up = rows[0][1] / rows[0][2], rows[1][1] / rows[1][2]
    added = rows[2][1] - rows[2][2]
    bdown, bup = rows[4][1] / rows[4][2], rows[5][1] / rows[5][2]
    lines += ["", f"Goal: tunnel throughput >= 0.9x direct. Measured: {down:.2f}x down, "
              f"{up:.2f}x up ({'met' if min(down, up) >= 0.9 else 'NOT met'}); the bare relay "
              f"in the same run: {bdown:.2f}x down, {bup:.2f}x up. "
              f"Latency added per request: {added:.2f} ms (median).", "",
              "Where the time goes (perf and /proc CPU times, 2026-11-23, this 2-core VM): the "
              "direct run is one loopback TCP hop and already uses about 1.4 cores; through the "
              "proxy every byte crosses loopback twice, and perf puts over half of warrend's "
              "time in the kernel's TCP transmit/receive path of the second hop (irq enable "
              "under the paravirtualised kernel), not in warren's code. Relaying with "
              "splice(2) through a pipe measured slower here (0.30x) than copying through 1 MiB "
              "buffers; 64 KiB buffers gave 0.35x. Again on 2026-12-03, a C sender and sink "
              "(4 GiB, 1 MiB writes) through a one-way C relay: read/write with 1 MiB buffers "
              "0.51x direct, splice through a 1 MiB pipe 0.49x. On two cores a second hop bounds "
              "the ratio well below 0.9x for a loopback-to-loopback transfer."]
    return "\n".join(lines) + "\n"


def replace_section(text, new, title="## Egress proxy"):
    """results.md with its `title` section replaced (or appended)."""
    head, sep, rest = text.partition(title)
    if not sep:
        return text.rstrip("\n") + "\n\n" + new
    tail = rest.find("\n## ")
    return head + new + ("\n" + rest[tail + 1:] if tail >= 0 else "")


if __name__ == "__main__":
    sys.exit("run through bench/run.py")
