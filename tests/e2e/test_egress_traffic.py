"""test_egress_traffic.py - the egress proxy under real traffic: MiB-sized
bodies both ways through absolute-URI requests and CONNECT (TLS with a test
CA), both directions at once, 50 parallel tunnels, a slow reader, half-close,
keep-alive to other hosts, a refused upstream followed by more requests, and
exact byte counts in the log. Servers run on the host's loopback; clients
(curl, Debian's python3) run inside the sandbox."""
import hashlib
import re
import shutil
import socketserver
import subprocess
import threading

import pytest

from conftest import (QuietHandler, Warren, free_port, make_base, make_ca, procs, serve_http,
                      wait_until)

MiB = 1 << 20


def pattern(n):
    """n deterministic bytes (a repeating block), hashable on both sides"""
    block = hashlib.sha256(b"warren").digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


class Origin(QuietHandler):
    """GET /bytes/N: N pattern bytes; POST /sha: sha256 and length of the body
    (Content-Length or chunked). Counts requests per path."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.seen.append(self.path)
        m = re.match(r"/bytes/(\d+)", self.path)
        n = int(m.group(1)) if m else 5
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        data = pattern(n) if m else b"hello"
        for i in range(0, n, MiB):
            self.wfile.write(data[i:i + MiB])

    def do_POST(self):
        self.server.seen.append(self.path)
        h = hashlib.sha256()
        total = 0
        for chunk in self.body_chunks(MiB):
            h.update(chunk)
            total += len(chunk)
        self.reply(f"{total} {h.hexdigest()}\n".encode())


def serve_origin(tls_ctx=None):
    return serve_http(Origin, tls_ctx=tls_ctx, seen=[])


class Raw(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Counter(socketserver.BaseRequestHandler):
    """Reads to EOF (the client's half-close), then answers "got N SHA" and
    M pattern bytes, where M is the first line the client sent."""

    def handle(self):
        h = hashlib.sha256()
        total, first = 0, b""
        while True:
            b = self.request.recv(MiB)
            if not b:
                break
            if len(first) < 32:
                first += b[:32]
            h.update(b)
            total += len(b)
        m = int(first.split(b"\n")[0] or b"0") if first[:1].isdigit() else 0
        self.request.sendall(f"got {total} {h.hexdigest()}\n".encode() + pattern(m))


class Flood(socketserver.BaseRequestHandler):
    """Sends pattern bytes as fast as the client takes them; counts them."""

    def handle(self):
        data = pattern(MiB)
        try:
            for _ in range(200):
                self.request.sendall(data)
                self.server.sent += len(data)
        except OSError:
            pass


def serve_raw(handler):
    srv = Raw(("127.0.0.1", free_port()), handler)
    srv.sent = 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def net():
    base = make_base()
    ca, ctx = make_ca(base)
    srv = {"http": serve_origin(), "other": serve_origin(), "denied": serve_origin(),
           "tls": serve_origin(ctx), "count": serve_raw(Counter), "flood": serve_raw(Flood)}
    port = {k: s.server_address[1] for k, s in srv.items()}
    closed = free_port()  # allowed, but nothing listens there
    rules = "".join(f"allow = 127.0.0.1:{port[k]}\n" for k in
                    ("http", "other", "tls", "count", "flood"))
    rules += f"allow = 127.0.0.1:{closed}\n"
    w = Warren(base, tenants=("ann",), tenant_extra={
        "ann": "[sandbox]\nnetwork = allowlist\nmemory_max = 1G\n" + rules})
    with w.start():
        w.srv, w.port_of, w.closed = srv, port, closed
        with open(ca, "rb") as f:
            assert w.ssh("ann", "cat > ca.pem", input=f.read(), text=False).returncode == 0
        yield w
    for s in srv.values():
        s.shutdown()
    shutil.rmtree(base, ignore_errors=True)


def run(w, cmd, timeout=180):
    r = w.ssh("ann", cmd, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


CURL = "curl -sS --fail --max-time 120 --noproxy ''"


def test_large_download_absolute_uri(net):
    n = 100 * MiB
    out = run(net, f"{CURL} http://127.0.0.1:{net.port_of['http']}/bytes/{n} | sha256sum")
    assert out.split()[0] == hashlib.sha256(pattern(n)).hexdigest()


def test_large_post_absolute_uri(net):
    n = 10 * MiB
    out = run(net, f"head -c {n} /dev/urandom > up.bin; sha256sum up.bin; "
                   f"{CURL} --data-binary @up.bin http://127.0.0.1:{net.port_of['http']}/sha; "
                   f"{CURL} -H 'Transfer-Encoding: chunked' --data-binary @up.bin "
                   f"http://127.0.0.1:{net.port_of['http']}/sha; rm up.bin")
    local, length_framed, chunked = out.splitlines()
    assert length_framed == f"{n} {local.split()[0]}"
    assert chunked == f"{n} {local.split()[0]}"


def test_large_download_and_post_over_connect_tls(net):
    n = 100 * MiB
    url = f"https://127.0.0.1:{net.port_of['tls']}"
    out = run(net, f"{CURL} --cacert ca.pem {url}/bytes/{n} | sha256sum; "
                   f"head -c {10 * MiB} /dev/urandom > up.bin; sha256sum up.bin; "
                   f"{CURL} --cacert ca.pem --data-binary @up.bin {url}/sha; rm up.bin")
    down, local, posted = out.splitlines()
    assert down.split()[0] == hashlib.sha256(pattern(n)).hexdigest()
    assert posted == f"{10 * MiB} {local.split()[0]}"


TUNNEL = r'''
import hashlib, socket, sys, threading
def tunnel(port):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s
'''


def test_both_directions_at_once_and_half_close(net):
    # 20 MiB up while 30 MiB come down, through one tunnel; the server answers
    # only after our half-close, so the EOF must travel through warren
    up, down = 20 * MiB, 30 * MiB
    script = TUNNEL + f'''
s = tunnel({net.port_of["count"]})
data = (b"{down}\\n" + bytes(range(256)) * ({up} // 256))[:{up}]
got = []
def reader():
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got.append(b)
t = threading.Thread(target=reader); t.start()
s.sendall(data)
s.shutdown(socket.SHUT_WR)
t.join()
reply = b"".join(got)
line, rest = reply.split(b"\\n", 1)
print(line.decode(), hashlib.sha256(data).hexdigest(), len(rest), hashlib.sha256(rest).hexdigest())
'''
    out = run(net, f"/usr/bin/python3 -c '{script}'")
    got, total, sha, mine, nrest, restsha = out.split()
    assert got == "got" and int(total) == up and sha == mine
    assert int(nrest) == down and restsha == hashlib.sha256(pattern(down)).hexdigest()
    # exact byte counts in the log line of that connection
    assert wait_until(lambda: re.search(
        rf"dest=127.0.0.1:{net.port_of['count']} verdict=allowed bytes_up={up} "
        rf"bytes_down={down + len(got) + len(total) + len(sha) + 3} ", net.log_text()))


def test_fifty_parallel_tunnels(net):
    n = 2 * MiB
    url = f"https://127.0.0.1:{net.port_of['tls']}/bytes/{n}"
    out = run(net, f"for i in $(seq 50); do ({CURL} --cacert ca.pem {url} | sha256sum > "
                   f"par.$i) & done; wait; cat par.*; rm -f par.*")
    want = hashlib.sha256(pattern(n)).hexdigest()
    sums = [line.split()[0] for line in out.splitlines()]
    assert sums == [want] * 50


def session_rss_kib(w):
    """RSS of the tenant's session process (warrend as ann), KiB"""
    uid = w.uid("ann")
    total = 0
    for pid, _, u, _, comm in procs():
        if u != uid or comm != "warrend":
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            pass
    return total


def test_slow_reader_bounds_memory(net):
    # the upstream floods; the client reads 1 MiB and stops for a while:
    # warren must stop reading upstream, not buffer the flood
    flood = net.srv["flood"]
    flood.sent = 0
    script = TUNNEL + f'''
import time
s = tunnel({net.port_of["flood"]})
got = 0
while got < (1 << 20):
    got += len(s.recv(65536))
print("paused", flush=True)
time.sleep(3)
print("resume", flush=True)
while got < (40 << 20):
    b = s.recv(1 << 20)
    if not b:
        break
    got += len(b)
print(got)
'''
    p = subprocess.Popen(net.ssh_argv("ann") + [f"/usr/bin/python3 -u -c '{script}'"],
                         stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert p.stdout.readline() == "paused\n"
    # while the reader sleeps, what the origin managed to send is bounded by
    # socket buffers plus warren's fixed buffer, not by the flood
    assert wait_until(lambda: flood.sent > 0)
    sent_then = flood.sent
    rss = session_rss_kib(net)
    assert p.stdout.readline() == "resume\n"
    assert sent_then < 1 * MiB + 48 * MiB, sent_then
    assert rss < 64 * 1024, rss
    assert int(p.stdout.readline()) >= 40 * MiB
    p.wait(timeout=60)


def test_keepalive_request_to_another_host_is_checked(net):
    a, other, denied = (net.port_of[k] for k in ("http", "other", "denied"))
    for s in net.srv.values():
        if hasattr(s, "seen"):
            s.seen.clear()
    # curl keeps its proxy connection when it may: both requests in one run
    out = run(net, f"{CURL} -w '%{{http_code}}\\n' -o /dev/null -o /dev/null "
                   f"http://127.0.0.1:{a}/first http://127.0.0.1:{other}/second")
    assert out.split() == ["200", "200"]
    assert net.srv["http"].seen == ["/first"] and net.srv["other"].seen == ["/second"]
    r = net.ssh("ann", f"curl -sS --noproxy '' -o /dev/null -o /dev/null -w '%{{http_code}}\\n' "
                       f"http://127.0.0.1:{a}/third http://127.0.0.1:{denied}/fourth")
    assert r.stdout.split() == ["200", "403"], r.stdout + r.stderr
    assert net.srv["denied"].seen == []
    # the raw shape: two requests pipelined on one connection, the second for
    # another host; only the first may reach the first's upstream
    script = f'''
import socket
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"GET http://127.0.0.1:{a}/one HTTP/1.1\\r\\nHost: 127.0.0.1:{a}\\r\\n\\r\\n"
          b"GET http://127.0.0.1:{denied}/two HTTP/1.1\\r\\nHost: 127.0.0.1:{denied}\\r\\n\\r\\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.count(b"HTTP/1.1 "), b"Connection: close" in data)
'''
    out = run(net, f"/usr/bin/python3 -c '{script}'")
    assert out.split() == ["1", "True"]
    assert net.srv["http"].seen[-1] == "/one"
    assert "/two" not in net.srv["http"].seen and net.srv["denied"].seen == []


def test_refused_upstream_then_more_requests(net):
    r = net.ssh("ann", f"curl -sS --noproxy '' -p -x http://127.0.0.1:3128 "
                       f"http://127.0.0.1:{net.closed}/ ; echo rc=$?")
    assert "rc=0" not in r.stdout
    r = net.ssh("ann", f"curl -sS --noproxy '' -i http://127.0.0.1:{net.closed}/")
    assert "502 Bad Gateway" in r.stdout and "refused the connection" in r.stdout
    # the session process lives on and serves the next requests
    for i in range(3):
        out = run(net, f"{CURL} http://127.0.0.1:{net.port_of['http']}/after{i}")
        assert out == "hello"


def test_refusal_explains_itself(net):
    denied = net.port_of["denied"]
    r = net.ssh("ann", f"curl -sS --noproxy '' -i http://127.0.0.1:{denied}/x")
    head, _, body = r.stdout.partition("\n\n")  # text mode folds CRLF
    assert head.startswith("HTTP/1.1 403 Forbidden")
    reason = f"egress to 127.0.0.1:{denied} refused: not in this tenant's allowlist"
    assert f"X-Warren-Egress: warren: {reason}" in head
    assert body.startswith(f"warren: {reason}")
    # CONNECT refusals say the same; the operator's log has the line too
    r = net.ssh("ann", f"curl -sS --noproxy '' -p -x http://127.0.0.1:3128 -v "
                       f"http://127.0.0.1:{denied}/ 2>&1")
    assert "X-Warren-Egress: warren: egress to" in r.stdout
    assert wait_until(lambda: f"dest=127.0.0.1:{denied} verdict=denied reason=not in this "
                              "tenant's allowlist" in net.log_text())
