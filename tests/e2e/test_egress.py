"""test_egress.py - network = allowlist through warren's proxy, all on
loopback: an HTTP and a TLS server on the host, curl inside the sandbox."""
import os
import shutil
import ssl
import subprocess
import threading
import time

import pytest

from conftest import (QuietHandler, Warren, free_port, make_base, need_localhost, procs,
                      raw_request, serve_http)


SLOW_STARTED = threading.Event()


class Quiet(QuietHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            SLOW_STARTED.set()
            time.sleep(5)  # the slow upstream itself, not a wait in the test
        self.reply(f"hello from {self.server.server_port} path={self.path}\n".encode())


def serve(port, tls_ctx=None):
    return serve_http(Quiet, port=port, tls_ctx=tls_ctx)


@pytest.fixture(scope="module")
def net():
    base = make_base()
    cert, key = os.path.join(base, "cert.pem"), os.path.join(base, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    os.chmod(cert, 0o644)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ports = {"a": free_port(), "b": free_port(), "tls": free_port(), "c": free_port()}
    servers = [serve(ports["a"]), serve(ports["b"]), serve(ports["tls"], ctx), serve(ports["c"])]
    a, b, tls, c = ports["a"], ports["b"], ports["tls"], ports["c"]
    extra = {
        "alice": f"[sandbox]\nnetwork = allowlist\nallow = 127.0.0.1:{a}\nallow = 127.0.0.1:{tls}\n",
        "bob": "[sandbox]\nnetwork = none\n",
        "carol": f"[sandbox]\nnetwork = allowlist\nallow = 127.0.0.1:*\ndeny = 127.0.0.1:{b}\n",
        "dave": f"[sandbox]\nnetwork = allowlist\nallow = localhost:{a}\n"
                f"allow = *.example.test:{a}\n",
        "erin": f"[sandbox]\nnetwork = allowlist\nallow = 127.0.0.1:{c}\nallow = 127.0.0.1:{a}\n",
    }
    w = Warren(base, tenants=tuple(extra), tenant_extra=extra).start()
    w.ports, w.cert = ports, cert
    with open(cert, "rb") as f:
        w.ssh("alice", "cat > ca.pem", input=f.read(), text=False)
    yield w
    w.stop()
    for s in servers:
        s.shutdown()
    shutil.rmtree(base, ignore_errors=True)


def curl(w, user, args, timeout=30):
    # NO_PROXY keeps the sandbox's own loopback direct; these tests address
    # the host's loopback servers through the proxy, hence --noproxy ''
    return w.ssh(user, f"curl -sS --max-time 10 --noproxy '' {args}", timeout=timeout)


def test_allowed_http_through_proxy(net):
    r = curl(net, "alice", f"http://127.0.0.1:{net.ports['a']}/x")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"hello from {net.ports['a']} path=/x\n"
    assert f"egress: tenant=alice dest=127.0.0.1:{net.ports['a']} verdict=allowed" in net.log_text()


def test_allowed_tls_through_connect(net):
    r = curl(net, "alice", f"--cacert ca.pem https://127.0.0.1:{net.ports['tls']}/secure")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"hello from {net.ports['tls']} path=/secure\n"


def test_proxy_process_is_confined(net):
    """The environment's proxy (the tenant's uid, parsing what the sandbox
    sends) runs under its seccomp allowlist: no exec, no new process, no
    file written. Proxying itself went on above and goes on here."""
    r = curl(net, "alice", f"http://127.0.0.1:{net.ports['a']}/again")
    assert r.returncode == 0, r.stderr
    uid = net.uid("alice")
    found = [p for p in procs() if p[2] == uid and p[4] == "warren-envproxy"]
    assert len(found) == 1, found
    with open(f"/proc/{found[0][0]}/status") as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    assert st["Seccomp"].strip() == "2", st.get("Seccomp")  # filter mode
    assert st["NoNewPrivs"].strip() == "1"
    assert st["CapEff"].strip() == "0000000000000000"
    # and nothing it needs was refused (its list of this host's addresses, say)
    assert "Operation not permitted" not in net.log_text()


def test_other_port_gets_403(net):
    r = curl(net, "alice", f"-i http://127.0.0.1:{net.ports['b']}/")
    assert "HTTP/1.1 403 Forbidden" in r.stdout
    assert "not in this tenant's allowlist" in r.stdout
    assert f"egress: tenant=alice dest=127.0.0.1:{net.ports['b']} verdict=denied" in net.log_text()


def test_direct_connection_has_no_route(net):
    r = net.ssh("alice", f"curl -sS --max-time 10 --noproxy '*' http://127.0.0.1:{net.ports['a']}/")
    assert r.returncode != 0
    assert "hello" not in r.stdout


def test_network_none_reaches_nothing(net):
    r = net.ssh("bob", "echo proxy=$HTTP_PROXY; curl -sS --max-time 5 "
                       f"http://127.0.0.1:{net.ports['a']}/")
    assert r.stdout.startswith("proxy=\n")
    assert r.returncode != 0 and "hello" not in r.stdout


def test_wildcard_port_and_deny_wins(net):
    r = curl(net, "carol", f"http://127.0.0.1:{net.ports['a']}/")
    assert r.stdout.startswith("hello from")
    r = curl(net, "carol", f"-i http://127.0.0.1:{net.ports['b']}/")
    assert "403 Forbidden" in r.stdout and "denied by the rule \"deny = 127.0.0.1:" in r.stdout


def test_name_resolving_to_private_address_refused(net):
    need_localhost()
    # allowed by name, but localhost resolves to loopback: only an IP rule may allow that
    r = curl(net, "dave", f"-i http://localhost:{net.ports['a']}/")
    assert "403 Forbidden" in r.stdout
    assert "loopback" in r.stdout
    # a wildcard rule matches subdomains only, and still resolves first
    r = curl(net, "dave", f"-i http://nothing.invalid:{net.ports['a']}/")
    assert "403 Forbidden" in r.stdout and "allowlist" in r.stdout


def test_fifty_parallel_requests(net):
    port = net.ports["a"]
    r = net.ssh("alice", "for i in $(seq 50); do curl -s --max-time 20 --noproxy '' "
                         f"http://127.0.0.1:{port}/p$i -o out.$i & done; wait; "
                         "cat out.* | grep -c hello; rm -f out.*", timeout=60)
    assert r.stdout.strip() == "50", r.stdout + r.stderr


def test_slow_upstream_does_not_block_others(net):
    port = net.ports["c"]
    SLOW_STARTED.clear()
    slow = subprocess.Popen(net.ssh_argv("erin") + [f"curl -s --noproxy '' http://127.0.0.1:{port}/slow"],
                            stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert SLOW_STARTED.wait(20)  # the slow request is in the upstream's hands
    t0 = time.time()
    # another tenant, and another request of the same tenant, go through meanwhile
    assert curl(net, "alice", f"http://127.0.0.1:{net.ports['a']}/").stdout.startswith("hello")
    r = net.ssh("erin", f"curl -s --noproxy '' http://127.0.0.1:{net.ports['a']}/fast")
    assert r.stdout.startswith("hello")
    assert time.time() - t0 < 4
    assert slow.communicate(timeout=30)[0].startswith("hello")


def test_socks5h_on_the_same_port(net):
    port = net.ports["a"]
    r = net.ssh("alice", "echo $ALL_PROXY; curl -sS --max-time 10 --noproxy '' "
                         f"--socks5-hostname 127.0.0.1:3128 http://127.0.0.1:{port}/socks")
    assert r.stdout.splitlines()[0] == "socks5h://127.0.0.1:3128"
    assert r.stdout.splitlines()[1] == f"hello from {port} path=/socks", r.stderr
    r = net.ssh("alice", "curl -sS --max-time 10 --noproxy '' --socks5-hostname 127.0.0.1:3128 "
                         f"http://127.0.0.1:{net.ports['b']}/")
    assert r.returncode != 0 and "hello" not in r.stdout
    assert "not allowed" in r.stderr or "connection not allowed" in r.stderr.lower() \
        or "(97)" in r.stderr, r.stderr
    log = net.log_text()
    assert f"dest=127.0.0.1:{net.ports['b']} verdict=denied" in log


def test_names_resolved_by_warren(net, make_warren):
    """A name is resolved by warren (the sandbox has no DNS): allowed by name
    and by the IP it resolves to, the request goes through."""
    need_localhost()
    port = net.ports["a"]
    w = make_warren(tenants=("fay",), tenant_extra={
        "fay": f"[sandbox]\nnetwork = allowlist\nallow = localhost:{port}\nallow = 127.0.0.1:{port}\n"
               f"allow = nosuch.invalid:{port}\n"})
    w.start()
    r = w.ssh("fay", f"curl -sS --max-time 10 --noproxy '' http://localhost:{port}/byname; "
                     "getent hosts example.com || echo no-dns-inside")
    assert r.stdout.splitlines()[0] == f"hello from {port} path=/byname", r.stderr
    assert r.stdout.splitlines()[-1] == "no-dns-inside"
    r = w.ssh("fay", f"curl -sS --max-time 10 --noproxy '' -i http://no-such-host.invalid:{port}/")
    assert "403" in r.stdout  # not in the list: refused before any lookup
    r = w.ssh("fay", f"curl -sS --max-time 10 --noproxy '' -i http://nosuch.invalid:{port}/")
    assert "502 Bad Gateway" in r.stdout  # allowed, but the lookup fails: said so


PROXY_SMUGGLE = {
    "second-host-bare-lf": "Host: {a}\\r\\nX-A: 1\\nHost: evil.example\\r\\n",
    "bare-cr": "Host: {a}\\r\\nX-A: 1\\rTransfer-Encoding: chunked\\r\\n",
    "cl-and-te": "Host: {a}\\r\\nContent-Length: 3\\r\\nTransfer-Encoding: chunked\\r\\n",
    "two-lengths": "Host: {a}\\r\\nContent-Length: 3\\r\\nContent-Length: 4\\r\\n",
    "host-disagrees": "Host: evil.example\\r\\n",
}


@pytest.mark.parametrize("case", sorted(PROXY_SMUGGLE))
def test_proxy_refuses_ambiguous_requests(net, case):
    """Through the egress proxy, a request whose framing or Host could be
    read two ways gets 400 and reaches no upstream."""
    a = f"127.0.0.1:{net.ports['a']}"
    head = (f"GET http://{a}/first HTTP/1.1\\r\\n" + PROXY_SMUGGLE[case].format(a=a) +
            "\\r\\nabc")
    r = raw_request(net, "alice", 3128, head)
    assert r.stdout.startswith("HTTP/1.1 400"), (case, r.stdout)
    assert "hello from" not in r.stdout
