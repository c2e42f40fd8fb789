"""conftest.py - start the real warrend on a free loopback port with temporary
state, and drive it with the real OpenSSH client."""
import http.server
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("WARREN_BUILD", os.path.join(ROOT, "build"))
WARREND = os.path.join(BUILD, "warrend")


def is_sanitized(path):
    r = subprocess.run(["nm", "-D", path], capture_output=True, text=True)
    return "__asan_init" in r.stdout


# warrend built with ASan/UBSan (make e2e-asan): a shared, world-writable
# directory for the reports of every warrend process
ASAN_DIR = None
if os.path.exists(WARREND) and is_sanitized(WARREND):
    ASAN_DIR = tempfile.mkdtemp(prefix="warren-asan-", dir="/tmp")
    os.chmod(ASAN_DIR, 0o1777)


def check_sanitizer_reports():
    if not ASAN_DIR:
        return
    reports = sorted(os.listdir(ASAN_DIR))
    text = ""
    for name in reports:
        with open(os.path.join(ASAN_DIR, name), errors="replace") as f:
            text += f"--- {name}\n" + f.read()
        os.unlink(os.path.join(ASAN_DIR, name))
    assert not reports, "sanitizer reports from warrend:\n" + text[:20000]


_USERNS = None


def require_userns():
    """warren runs bwrap as the tenant: the kernel must allow unprivileged
    user namespaces. Probed once, as an unprivileged uid; skip otherwise."""
    global _USERNS
    if _USERNS is None:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "unshare", "--user", "true"], capture_output=True, text=True)
        _USERNS = True if r.returncode == 0 else (r.stderr.strip() or f"exit {r.returncode}")
    if _USERNS is not True:
        pytest.skip(f"unprivileged user namespaces are unavailable here: {_USERNS}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path, comment="test"):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                   check=True)


class Warren:
    """One running warrend with its own state, tenants and client keys."""

    def __init__(self, base, tenants=("alice", "bob"), server_extra="", sandbox_extra="",
                 tenant_extra=None, env=None):
        self.env = env
        self.base = base
        self.port = free_port()
        # distinct uids per instance: concurrent daemons (a test's extra one,
        # a benchmark) must never share a tenant uid
        self.uid_base = 3100000 + random.randrange(0, 800) * 1000
        self.state = os.path.join(base, "state")
        self.tenants_dir = os.path.join(base, "tenants.d")
        os.makedirs(self.tenants_dir)
        self.keys = {}
        for t in tenants:
            key = os.path.join(base, f"id_{t}")
            keygen(key, t)
            self.keys[t] = key
            extra = (tenant_extra or {}).get(t, "")
            with open(os.path.join(self.tenants_dir, f"{t}.conf"), "w") as f:
                f.write(f"[tenant]\nauthorized_keys = {key}.pub\n{extra}")
        self.stranger_key = os.path.join(base, "id_stranger")
        keygen(self.stranger_key, "stranger")
        self.conf = os.path.join(base, "warrend.conf")
        # the tests' own failed logins all come from 127.0.0.1: exempt it from
        # per-source penalties (test_flood.py penalises 127.0.0.2 and .3, each
        # a source of its own: one address is one source here, not the
        # default /24)
        with open(self.conf, "w") as f:
            f.write(f"""[server]
listen = 127.0.0.1:{self.port}
host_key = {base}/host_ed25519
state_dir = {self.state}
tenants_dir = {self.tenants_dir}
uid_range = {self.uid_base}-{self.uid_base + 999}
{"" if "login_grace_time" in server_extra else "login_grace_time = 20"}
{"" if "penalty_exempt" in server_extra else "penalty_exempt = 127.0.0.1"}
{"" if "source_net_block" in server_extra else "source_net_block = 32:64"}
{server_extra}
[sandbox]
network = none
{sandbox_extra}
""")
        self.log = open(os.path.join(base, "warrend.log"), "w+")
        self.proc = None

    def start(self, pass_fds=()):
        require_userns()
        env = dict(os.environ, **(self.env or {}))
        if ASAN_DIR:
            # reports from every warrend process (root or tenant) land here;
            # stop() fails the test that caused one
            env["ASAN_OPTIONS"] = (f"detect_leaks=0:verify_asan_link_order=0:"
                                   f"log_path={ASAN_DIR}/asan")
            env["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={ASAN_DIR}/ubsan"
        self.proc = subprocess.Popen([WARREND, "-d", "-f", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env, pass_fds=pass_fds)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("warrend exited: " + self.log_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("warrend did not listen: " + self.log_text())

    # `with w.start():` stops the daemon however the block ends (a fixture
    # whose set-up fails after start must not leave warrend running)
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        # as an operator would: SIGTERM twice ends sessions at once and lets
        # each monitor remove its cgroups; SIGKILL only when that hangs
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                wait_until(lambda: "draining" in self.log_text(), timeout=2)
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            # whatever a tenant sent reached the log escaped
            with open(self.log.name, "rb") as f:
                raw = f.read()
            try:
                raw.decode()
            except UnicodeDecodeError as e:
                raise AssertionError(f"raw bytes in warrend's log: {raw[e.start - 200:e.end + 50]!r}")
            # a pre-auth process's sanitizer reports go to the log (preauth.c)
            if ASAN_DIR:
                for mark in (b"ERROR: AddressSanitizer", b"runtime error:", b"ERROR: LeakSanitizer"):
                    at = raw.find(mark)
                    assert at < 0, "sanitizer report in warrend's log:\n" + \
                        raw[max(0, at - 200):at + 4000].decode(errors="replace")
        # connection processes live in the same process group
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError, AttributeError):
            pass
        check_sanitizer_reports()

    def log_text(self):
        # read while warrend writes: the last character may be cut short
        self.log.flush()
        with open(self.log.name, errors="backslashreplace") as f:
            return f.read()

    def ssh_argv(self, user, key=None, extra=()):
        # ssh keeps the first value of an option: the caller's extras go first
        return ["ssh", *extra, "-i", key or self.keys[user], "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10", f"{user}@127.0.0.1"]

    def ssh(self, user, command=None, input=None, key=None, extra=(), timeout=60, text=True):
        argv = self.ssh_argv(user, key, extra)
        if command is not None:
            argv.append(command)
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                              text=text, stdin=None if input is not None else subprocess.DEVNULL)

    def uid(self, tenant):
        path = os.path.join(self.state, "uids", tenant)
        if not os.path.exists(path):  # allocated at first login
            assert self.ssh(tenant, "true").returncode == 0
        with open(os.path.join(self.state, "uids", tenant)) as f:
            return int(f.read())


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A test server's request handler: no access log on stderr; reply()
    sends one whole body with its length, body_chunks() reads one."""

    def reply(self, data, ctype=None, status=200):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body_chunks(self, block=1 << 20):
        """The request body as it arrives, framed by Content-Length or
        chunked transfer coding, in pieces of at most `block` bytes."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        left = int(self.headers.get("Content-Length", "0"))
        while left:
            chunk = self.rfile.read(min(left, block))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def log_message(self, *a):
        pass


def raw_request(w, tenant, port, data):
    """What 127.0.0.1:port, inside the tenant's sandbox, answers within 5 s
    to `data` (printf escapes: \\r, \\n) sent as is on one connection."""
    return w.ssh(tenant, f"exec 3<>/dev/tcp/127.0.0.1/{port}; printf '{data}' >&3; "
                         "timeout 5 cat <&3")


def serve_http(handler, host="127.0.0.1", port=0, tls_ctx=None, **attrs):
    """A threaded HTTP(S) server for handler, serving in the background;
    attrs become attributes of the server, where handlers find them."""
    srv = http.server.ThreadingHTTPServer((host, port), handler)
    srv.daemon_threads = True
    if tls_ctx:
        srv.socket = tls_ctx.wrap_socket(srv.socket, server_side=True)
    for k, v in attrs.items():
        setattr(srv, k, v)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Flood:
    """An unauthenticated flood: `threads` threads connecting from source
    address `src` to 127.0.0.1:`port` as fast as they can; the first `hold`
    connections stay open and silent (each holds a pre-auth slot), the rest
    are closed at once. A context manager; `attempts` counts connections."""

    def __init__(self, src, port, threads=4, hold=1000):
        self.src, self.port, self.hold = src, port, hold
        self.stop, self.held, self.attempts = threading.Event(), [], 0
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self):
        while not self.stop.is_set():
            self.attempts += 1
            s = socket.socket()
            s.settimeout(2)
            try:
                s.bind((self.src, 0))
                s.connect(("127.0.0.1", self.port))
            except OSError:
                s.close()
                continue
            if len(self.held) < self.hold:
                self.held.append(s)
            else:
                s.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
        for s in self.held:
            s.close()


def make_ca(base, host="127.0.0.1"):
    """A throw-away CA (base/ca.pem) and a server certificate for HOST (an IP
    or a name) signed by it; returns (ca path, server-side SSLContext)."""
    ca_key, ca = os.path.join(base, "ca.key"), os.path.join(base, "ca.pem")
    key, csr, cert = (os.path.join(base, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(base, "ext")
    with open(ext, "w") as f:
        kind = "DNS" if any(c.isalpha() for c in host) else "IP"
        f.write(f"subjectAltName={kind}:{host}\n")

    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=warren test CA", "-keyout", ca_key, "-out", ca)
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", key,
         "-out", csr)
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days",
         "1", "-extfile", ext, "-out", cert)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ca, ctx


def need_localhost():
    """The host must resolve "localhost" (its /etc/hosts); a bare root may not."""
    try:
        socket.getaddrinfo("localhost", 80)
    except OSError as e:
        pytest.skip(f"this host does not resolve localhost ({e}): no /etc/hosts entry")


def make_base():
    base = tempfile.mkdtemp(prefix="warren-e2e-", dir="/tmp")
    os.chmod(base, 0o711)  # tenants must reach state_dir/workspaces
    return base


@pytest.fixture(scope="module")
def warren():
    base = make_base()
    w = Warren(base).start()
    yield w
    w.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_warren():
    made = []

    def make(**kw):
        w = Warren(make_base(), **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()
        shutil.rmtree(w.base, ignore_errors=True)


def procs():
    """(pid, ppid, uid, state, comm) of every process on the host."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
            out.append((int(d), int(st["PPid"]), int(st["Uid"].split()[0]),
                        st["State"].split()[0], st["Name"].strip()))
        except (OSError, KeyError, ValueError):
            pass
    return out


def wait_until(pred, timeout=10, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def cgroup_dir(pid):
    """The host directory of pid's cgroup that counts its tasks: the pids
    hierarchy on cgroup v1, the unified one on v2 (read from /proc, so it is
    right whatever the host mounts where). None when pid is gone."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = right.split(" ", 2)
            if fstype in ("cgroup", "cgroup2"):
                point = left.split()[4]
                key = "" if fstype == "cgroup2" else \
                    ",".join(o for o in opts.split()[-1].split(",") if o in ("pids",))
                if key or fstype == "cgroup2":
                    mounts.setdefault(key, point)
    for _, ctrls, path in lines:
        if "pids" in ctrls.split(",") and "pids" in mounts:
            return mounts["pids"] + path
    for hid, ctrls, path in lines:
        if hid == "0" and ctrls == "" and "" in mounts:
            return mounts[""] + path
    return None


def tenant_cgroup_sessions(session_dir):
    """Session directories left beside session_dir (its tenant's level)."""
    tdir = os.path.dirname(session_dir)
    if not os.path.isdir(tdir):
        return []
    return [d for d in os.listdir(tdir) if d.startswith("session-")]
