#!/usr/bin/python3
"""bench/run.py - warren against a stock OpenSSH sshd whose ForceCommand wraps
every session in bwrap with an equivalent policy, on this machine, run by run
alternated. Writes bench/results.md. Run as root: `make bench` (or
`make bench BENCH_ARGS=--quick` for a smoke run of the harness)."""
import argparse
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from conftest import Warren, free_port, keygen, make_base  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egress  # noqa: E402
import flood  # noqa: E402
import tui  # noqa: E402

BENCH_USER = "warren-bench"
CIPHER = "aes128-gcm@openssh.com"
# the same key exchange on both sides: OpenSSH 9.2 would otherwise agree on
# sntrup761x25519-sha512 with its own sshd, which libssh 0.10 does not offer,
# and its key generation costs the client about 80 ms of CPU per login here
KEX = "curve25519-sha256"
# both, on every client command line of either target
ALGS = ("-c", CIPHER, "-o", f"KexAlgorithms={KEX}")
WRAP = """#!/bin/sh
# ForceCommand for the baseline sshd: the same confinement warren applies.
exec /usr/bin/bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL \\
  --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \\
  --symlink usr/sbin /sbin --ro-bind-try /etc/ssl /etc/ssl --ro-bind-try /etc/passwd /etc/passwd \\
  --ro-bind-try /etc/alternatives /etc/alternatives --ro-bind-try /nix/store /nix/store \\
  --proc /proc --dev /dev --tmpfs /tmp \\
  --bind "$HOME" "$HOME" --chdir "$HOME" -- /bin/bash ${SSH_ORIGINAL_COMMAND:+-c "$SSH_ORIGINAL_COMMAND"} ${SSH_ORIGINAL_COMMAND:--l}
"""


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Baseline:
    """Stock sshd on a loopback port, key auth, ForceCommand -> bwrap."""

    def __init__(self, base):
        self.base = base
        self.port = free_port()
        if subprocess.run(["id", BENCH_USER], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", BENCH_USER], check=True)
        # '*' = no password but not locked (sshd refuses locked accounts)
        subprocess.run(["usermod", "-p", "*", BENCH_USER], check=True)
        os.chmod(base, 0o755)  # the ForceCommand script is run as the bench user
        home = os.path.expanduser(f"~{BENCH_USER}")
        self.home, self.user = home, BENCH_USER
        self.key = os.path.join(base, "id_bench")
        keygen(self.key, "bench")
        os.makedirs(f"{home}/.ssh", exist_ok=True)
        shutil.copy(self.key + ".pub", f"{home}/.ssh/authorized_keys")
        subprocess.run(["chown", "-R", f"{BENCH_USER}:", f"{home}/.ssh"], check=True)
        os.chmod(f"{home}/.ssh", 0o700)
        self.wrap = os.path.join(base, "wrap.sh")
        with open(self.wrap, "w") as f:
            f.write(WRAP)
        os.chmod(self.wrap, 0o755)
        hk = os.path.join(base, "sshd_host_ed25519")
        keygen(hk, "host")
        self.conf = os.path.join(base, "sshd_config")
        with open(self.conf, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {hk}
PidFile {base}/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
MaxStartups 1000
MaxSessions 1000
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
ForceCommand {self.wrap}
""")
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", self.conf],
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def ssh_argv(self, extra=()):
        return ["ssh", *extra, "-i", self.key, "-p", str(self.port), *ALGS,
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                f"{BENCH_USER}@127.0.0.1"]

    def sftp_argv(self):
        return ["sftp", "-b", "-", "-P", str(self.port), *ALGS, "-i", self.key,
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{BENCH_USER}@127.0.0.1"]

    def server_root(self):
        return self.proc.pid

    def server_pids(self):
        """sshd processes serving sessions (not the listener, not sandboxes)."""
        out = []
        for pid, comm, ppid in ps():
            if comm == "sshd" and pid != self.proc.pid:
                out.append(pid)
        return out

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.proc.wait()


class WarrenTarget:
    def __init__(self, base, tenants, per_source_defaults=False):
        names = tuple(f"t{i:03d}" for i in range(tenants))
        pdir = os.path.join(base, "profiles")
        os.makedirs(pdir)
        shutil.copytree(os.path.join(ROOT, "nix-profiles", "offline"), os.path.join(pdir, "offline"))
        self.pdir = pdir
        extra = {"pon": "[sandbox]\nprofile = offline\n", "poff": "[sandbox]\nprofile = none\n"}
        # as the baseline's sshd (MaxStartups 1000, no per-source limit): every
        # bench client comes from 127.0.0.1; the flood keeps warren's defaults,
        # which are what lets a client from another address in
        per_source = ("" if per_source_defaults else
                      "max_startups_per_source = 0\nmax_connections_per_source = 0\n")
        self.w = Warren(base, tenants=names + ("pon", "poff"), tenant_extra=extra,
                        server_extra=f"max_startups = 1000\n{per_source}"
                                     f"profiles_dir = {pdir}\nnix_offline = yes",
                        # 1000 idle sessions over 20 tenants: 50 each (the
                        # baseline sshd has no per-user cap either)
                        sandbox_extra="profile = none\nmax_connections = 64")
        self.w.start()
        self.names = names
        self.i = 0

    def next_user(self):
        self.i = (self.i + 1) % len(self.names)
        return self.names[self.i]

    def ssh_argv(self, extra=(), user=None):
        user = user or self.next_user()
        return self.w.ssh_argv(user, extra=(*ALGS, *extra))

    def sftp_argv(self, user=None):
        user = user or self.names[0]
        return ["sftp", "-b", "-", "-P", str(self.w.port), *ALGS, "-i", self.w.keys[user],
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{user}@127.0.0.1"]

    def server_root(self):
        return self.w.proc.pid

    def server_pids(self):
        """warrend's processes serving sessions: each connection's monitor and
        session process, and each tenant's environment (warren-env and its
        proxy); not the listener, not the sandboxes' own init."""
        return [pid for pid, comm, _ in ps()
                if comm in ("warrend", "warren-env", "warren-envproxy") and pid != self.w.proc.pid]

    def stop(self):
        self.w.stop()


def ps(cpu=False):
    """(pid, comm, ppid) of every process; with cpu, a fourth field: its
    utime + stime + cutime + cstime in clock ticks"""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                comm = st[st.index("(") + 1:st.rindex(")")]
                x = st[st.rindex(")") + 2:].split()
                row = (int(d), comm, int(x[1]))
                out.append(row + (sum(int(v) for v in x[11:15]),) if cpu else row)
            except (OSError, ValueError, IndexError):
                pass
    return out


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def timed(argv, **kw):
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, **kw)
    return time.perf_counter() - t0, r.returncode


def tree_cpu_s(root):
    """CPU seconds of `root`: its own, its reaped descendants' (cutime and
    cstime) and every live descendant's (so the sandboxes a target's
    sessions ran in count on both sides)"""
    procs = {pid: (ppid, ticks) for pid, _, ppid, ticks in ps(cpu=True)}
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, (ppid, _) in procs.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(procs[p][1] for p in tree if p in procs) / os.sysconf("SC_CLK_TCK")


def cpu_per_login(t, runs):
    """(server ms, client ms) of CPU per sequential `ssh true`"""
    def clients():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime
    c0, s0 = clients(), tree_cpu_s(t.server_root())
    for _ in range(runs):
        timed(t.ssh_argv() + ["true"])
    c1, s1 = clients(), tree_cpu_s(t.server_root())
    return (s1 - s0) / runs * 1000, (c1 - c0) / runs * 1000


def login_latency(targets, runs):
    res = {k: [] for k in targets}
    for _ in range(runs):
        for k, t in targets.items():  # alternate warren / baseline run by run
            dt, rc = timed(t.ssh_argv() + ["true"])
            if rc == 0:
                res[k].append(dt * 1000)
    return res


def burst(t, n):
    times, ok = [], [0]
    lock = threading.Lock()

    def one():
        dt, rc = timed(t.ssh_argv() + ["true"], timeout=120)
        with lock:
            times.append(dt * 1000)
            ok[0] += rc == 0

    t0 = time.perf_counter()
    th = [threading.Thread(target=one) for _ in range(n)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    return ok[0], times, (time.perf_counter() - t0) * 1000


def goal_cell(name, a_, b_, login_median):
    """the issue's goal for a row of the main table, and whether this run met
    it; "" for rows without one"""
    def verdict(ok, goal):
        return f"{goal}: {'met' if ok else '**NOT met**'}"
    ratio = a_ / b_ if b_ else float("nan")
    if name.startswith("burst of 100: p99"):
        return verdict(a_ <= 2 * login_median, f"<= 2x login median ({2 * login_median:.1f} ms)")
    if name.startswith(("exec in", "exec out", "sftp put", "sftp get")):
        return verdict(ratio >= 1.0, ">= 1.0x")
    m = re.match(r"(\d+) idle PTY sessions: (server PSS|answering a command after, of (\d+))", name)
    if m and m.group(1) == "1000":
        if m.group(3):
            return verdict(a_ == int(m.group(3)), "all answering")
        return verdict(ratio <= 0.25, "<= 0.25x")
    return ""


def settle_disk():
    """the previous run's dirty pages written out, so no run pays for another's"""
    subprocess.run(["sync"])


def best_of(runs, targets, fn):
    """{name: (best up, best down)} over alternated runs (nan when one failed)"""
    res = {k: [] for k in targets}
    for _ in range(runs):
        for k, t in targets.items():
            settle_disk()
            res[k].append(fn(t))
    out = {}
    for k, xs in res.items():
        if any(x[0] != x[0] or x[1] != x[1] for x in xs):
            out[k] = (float("nan"), float("nan"))
        else:
            out[k] = (max(x[0] for x in xs), max(x[1] for x in xs))
    return out


def exec_throughput(t, size):
    user = None
    if isinstance(t, WarrenTarget):
        user = t.names[0]
    argv = t.ssh_argv(user=user) if user else t.ssh_argv()
    src = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE)
    t0 = time.perf_counter()
    rc = subprocess.run(argv + ["cat > /dev/null"], stdin=src.stdout).returncode
    up = size / (time.perf_counter() - t0) / 1e6
    src.wait()
    t0 = time.perf_counter()
    r = subprocess.run(argv + [f"head -c {size} /dev/zero"], stdout=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)
    down = size / (time.perf_counter() - t0) / 1e6
    return (up, down) if rc == 0 and r.returncode == 0 else (float("nan"), float("nan"))


def sftp_throughput(t, path, size):
    argv = t.sftp_argv()
    t0 = time.perf_counter()
    r1 = subprocess.run(argv, input=f"put {path} bench.bin\n", capture_output=True, text=True)
    up = size / (time.perf_counter() - t0) / 1e6
    t0 = time.perf_counter()
    r2 = subprocess.run(argv, input=f"get bench.bin {path}.back\n", capture_output=True, text=True)
    down = size / (time.perf_counter() - t0) / 1e6
    ok = r1.returncode == 0 and r2.returncode == 0 and os.path.getsize(path + ".back") == size
    os.unlink(path + ".back")
    # every put writes a new file: over the last run's, ext4's truncate of
    # 1 GiB made both sides' puts slower and far more spread (bench/results.md)
    subprocess.run(argv, input="rm bench.bin\n", capture_output=True, text=True)
    return (up, down) if ok else (float("nan"), float("nan"))


def responsive(procs, timeout=120):
    """How many of the idle terminals answer a command once all are open:
    each is sent `echo al""ive-I` and must print alive-I."""
    sel = selectors.DefaultSelector()
    seen = {}
    for i, p in enumerate(procs):
        os.set_blocking(p.stdout.fileno(), False)
        try:
            p.stdin.write(f'echo al""ive-{i}\n'.encode())
            p.stdin.flush()
        except OSError:
            continue
        sel.register(p.stdout, selectors.EVENT_READ, i)
        seen[i] = b""
    done = set()
    deadline = time.time() + timeout
    while len(done) < len(seen) and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            i = key.data
            try:
                chunk = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            seen[i] = (seen[i] + chunk)[-4096:]
            if not chunk or f"alive-{i}".encode() in seen[i]:
                if chunk:
                    done.add(i)
                sel.unregister(key.fileobj)
    sel.close()
    return len(done)


def idle_sessions(t, n):
    before = set(t.server_pids())
    procs = []
    t0 = time.perf_counter()
    for _ in range(n):
        procs.append(subprocess.Popen(t.ssh_argv(extra=("-tt",)), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
    # all are up when every client has a shell: count sandboxed shells
    deadline = time.time() + 300
    while time.time() < deadline:
        shells = sum(1 for _, comm, _ in ps() if comm == "bash")
        if len(set(t.server_pids()) - before) >= n and shells >= n:
            break
        time.sleep(0.5)
    opened = time.perf_counter() - t0
    time.sleep(2)
    pids = set(t.server_pids()) - before
    per = pss_kib(pids) / n
    alive = responsive(procs)
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:  # what was left for a client that is gone
                pass
    time.sleep(2)
    return per, opened, alive


def profile_overhead(t, runs):
    """Login wall time with a warm profile vs none (alternating), warrend's own
    activation timing, and one cold build of a changed offline profile."""
    on, off = [], []
    t.w.ssh("pon", "true")  # warm the cache
    for _ in range(runs):
        for user, acc in (("pon", on), ("poff", off)):
            dt, rc = timed(t.ssh_argv(user=user) + ["true"])
            if rc == 0:
                acc.append(dt * 1000)
    hits = [int(m) for m in re.findall(r"profile offline for pon: \S+ \(cache hit, (\d+) us\)",
                                        t.w.log_text())]
    flake = os.path.join(t.pdir, "offline", "flake.nix")
    with open(flake, "a") as f:
        f.write(f"# bench {time.time()}\n")  # new declaration -> a real rebuild
    t0 = time.perf_counter()
    t.w.ssh("pon", "true")
    cold = (time.perf_counter() - t0) * 1000
    return statistics.median(on), statistics.median(off), hits, cold


def spawn_times(text):
    return [int(m) for m in re.findall(r"sandbox spawn (\d+) us", text)]


def versions():
    def out(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except OSError:
            return "?"
    libssh = subprocess.run(["pkg-config", "--modversion", "libssh"], capture_output=True,
                            text=True).stdout.strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cores": os.cpu_count(), "memory": f"{mem:.1f} GiB", "kernel": platform.release(),
            "OpenSSH": out(["ssh", "-V"]), "libssh": libssh, "bubblewrap": out(["bwrap", "--version"])}


def egress_rows(quick, mib=None):
    base = make_base()
    try:
        size = (mib << 20) if mib else (64 << 20) if quick else (1 << 30)
        return egress.measure(base, size, 20 if quick else 200)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def write_section(out, new, title):
    """replaces (or appends) one section of the results file"""
    try:
        with open(out) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# warren benchmark results\n"
    with open(out, "w") as f:
        f.write(egress.replace_section(text, new, title))
    print(new)


def run_egress(out, quick, mib=None):
    rows = egress_rows(quick, mib)
    write_section(out, egress.section(rows, 0), "## Egress proxy")
    return 0 if all(r[1] == r[1] for r in rows) else 1


def flood_text(quick):
    """both servers under the same flood, one after the other"""
    logins = 5 if quick else 20
    base = make_base()
    w = WarrenTarget(base, 2, per_source_defaults=True)
    bl = Baseline(tempfile.mkdtemp(prefix="warren-bench-sshd-"))
    try:
        rw = flood.login_under_flood(w.ssh_argv(extra=("-o", "ConnectTimeout=10")), w.w.port,
                                     logins)
        rb = flood.login_under_flood(bl.ssh_argv(extra=("-o", "ConnectTimeout=10")), bl.port,
                                     logins)
    finally:
        w.stop()
        bl.stop()
        shutil.rmtree(base, ignore_errors=True)
    return flood.section(rw, rb, logins)


def run_flood(out, quick):
    write_section(out, flood_text(quick), "## Unauthenticated flood")
    return 0


def main():
    # 1000 idle clients hold a pipe each, in this process
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks the harness only")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results.md"))
    ap.add_argument("--only", choices=["egress", "flood"],
                    help="run one part and replace its section of the results file")
    ap.add_argument("--egress-mib", type=int, help="transfer size for the egress part")
    a = ap.parse_args()
    q = a.quick
    if a.only == "egress":
        return run_egress(a.out, q, a.egress_mib)
    if a.only == "flood":
        return run_flood(a.out, q)
    n_login = 5 if q else 50
    n_tput = 1 if q else 5
    bursts = (10,) if q else (10, 100)
    idles = (10,) if q else (100, 500, 1000)
    size = (32 << 20) if q else (1 << 30)
    tenants = 4 if q else 20

    base = make_base()
    w = WarrenTarget(base, tenants)
    bl = Baseline(tempfile.mkdtemp(prefix="warren-bench-sshd-"))
    targets = {"warren": w, "openssh+bwrap": bl}
    rows = []
    try:
        quiet_from = len(w.w.log_text())
        lat = login_latency(targets, n_login)
        quiet = spawn_times(w.w.log_text()[quiet_from:])  # one login at a time
        rows.append(("login `ssh true`, median ms", statistics.median(lat["warren"]),
                     statistics.median(lat["openssh+bwrap"])))
        rows.append(("login `ssh true`, p90 ms", pct(lat["warren"], 90),
                     pct(lat["openssh+bwrap"], 90)))
        cpu = {k: cpu_per_login(t, n_login) for k, t in targets.items()}
        rows.append(("CPU per login, server side (sandbox included), ms", cpu["warren"][0],
                     cpu["openssh+bwrap"][0]))
        rows.append(("CPU per login, client `ssh`, ms", cpu["warren"][1], cpu["openssh+bwrap"][1]))
        for n_burst in bursts:  # how login grows with concurrency (1: the rows above)
            for k, t in targets.items():
                ok, times, wall = burst(t, n_burst)
                t.burst = (ok, pct(times, 50), pct(times, 99), wall)
            rows.append((f"burst of {n_burst}: successes", w.burst[0], bl.burst[0]))
            rows.append((f"burst of {n_burst}: p50 ms", w.burst[1], bl.burst[1]))
            rows.append((f"burst of {n_burst}: p99 ms", w.burst[2], bl.burst[2]))
            rows.append((f"burst of {n_burst}: total wall ms", w.burst[3], bl.burst[3]))
        ex = best_of(n_tput, targets, lambda t: exec_throughput(t, size))
        ew, eb = ex["warren"], ex["openssh+bwrap"]
        rows.append((f"exec in ({size >> 20} MiB `cat > /dev/null`), MB/s", ew[0], eb[0]))
        rows.append((f"exec out ({size >> 20} MiB `head -c`), MB/s", ew[1], eb[1]))
        blob = os.path.join(base, "blob.bin")
        with open(blob, "wb") as f:
            f.truncate(size)
        os.chmod(base, 0o711)
        sf = best_of(n_tput, targets, lambda t: sftp_throughput(t, blob, size))
        sw, sb = sf["warren"], sf["openssh+bwrap"]
        rows.append((f"sftp put {size >> 20} MiB, MB/s", sw[0], sb[0]))
        rows.append((f"sftp get {size >> 20} MiB, MB/s", sw[1], sb[1]))
        rows += tui.measure(bl, 3 if q else 7, ALGS)
        for n_idle in idles:  # how memory grows with sessions
            iw, ib = idle_sessions(w, n_idle), idle_sessions(bl, n_idle)
            rows.append((f"{n_idle} idle PTY sessions: server PSS per session, KiB",
                         iw[0], ib[0]))
            rows.append((f"{n_idle} idle PTY sessions: time to open all, s", iw[1], ib[1]))
            rows.append((f"{n_idle} idle PTY sessions: answering a command after, of {n_idle}",
                         iw[2], ib[2]))
        pon, poff, hits, cold = profile_overhead(w, 10 if q else 30)
        sp = spawn_times(w.w.log_text())
        spawn = (statistics.median(sp) / 1000, pct(sp, 90) / 1000) if sp else (float("nan"),) * 2
        qspawn = ((statistics.median(quiet) / 1000, pct(quiet, 90) / 1000) if quiet
                  else (float("nan"),) * 2)
    finally:
        w.stop()
        bl.stop()
    v = versions()
    lines = ["# warren benchmark results", "",
             f"Measured by `bench/run.py{' --quick' if q else ''}` on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {v['cores']} cores, "
             f"{v['memory']}, kernel {v['kernel']}; {v['OpenSSH']}; libssh {v['libssh']}; "
             f"{v['bubblewrap']}. Cipher {CIPHER}, key exchange {KEX} and ed25519 keys for both "
             "(OpenSSH's client and sshd would otherwise agree on sntrup761x25519-sha512, which "
             "libssh 0.10 does not offer: about 80 ms more client CPU per login). The baseline is "
             "stock sshd whose ForceCommand runs each session in bwrap (RO /usr, RW home, "
             "no network, caps dropped). warren ran with its defaults (seccomp, cgroup "
             f"limits, {tenants} tenants). Throughput: the best of {n_tput} alternated runs, "
             "each after a `sync` (so that no run pays for another's writeback), each sftp put to a new "
             "file. Server PSS: "
             "warren's connection monitors, session processes and tenant environments "
             "(warren-env, warren-envproxy); the baseline's sshd processes; neither side's "
             "sandbox processes.", "",
             "| measure | warren | OpenSSH + bwrap | warren / baseline | goal (issue #19) |",
             "| --- | ---: | ---: | ---: | --- |"]
    for name, a_, b_ in rows:
        ratio = a_ / b_ if b_ else float("nan")
        goal = goal_cell(name, a_, b_, rows[0][1])
        lines.append(f"| {name} | {a_:.1f} | {b_:.1f} | {ratio:.2f} | {goal} |")
    lines += ["", f"Sandbox spawn inside warren (channel request to the command's start, "
              f"from warrend's debug timing): one login at a time (the login rows above) "
              f"median {qspawn[0]:.2f} ms, p90 {qspawn[1]:.2f} ms over {len(quiet)} sessions; "
              f"over the whole run, bursts and 1000 idle terminals included, median "
              f"{spawn[0]:.2f} ms, p90 {spawn[1]:.2f} ms over {len(sp)} sessions. "
              f"Goal: p50 <= 10 ms: {'met' if max(qspawn[0], spawn[0]) <= 10 else 'NOT met'}.",
              "",
              f"Nix profile (offline fixture): login `ssh true` median {pon:.1f} ms with a warm "
              f"profile vs {poff:.1f} ms with none ({pon - poff:+.1f} ms); warrend's own activation time on a cache hit: median "
              f"{(statistics.median(hits) if hits else float('nan')) / 1000:.3f} ms over {len(hits)} "
              f"logins; a cold build of the changed profile plus that login: {cold:.0f} ms.", "",
              "Goals (issue #19): burst of 100 p99 <= 2x the single-login median, "
              "throughput >= 1.0x, server PSS per idle session <= 0.25x OpenSSH's at 1000 "
              "sessions with all still answering, CONNECT tunnel >= 0.9x direct."]
    text = "\n".join(lines) + "\n"
    eg_rows = egress_rows(q)
    text += "\n" + egress.section(eg_rows, 0)
    text += "\n" + flood_text(q)
    rows += eg_rows
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    bad = [r for r in rows if r[1] != r[1]]  # NaN: a measurement failed
    if bad:
        print("failed measurements:", [r[0] for r in bad], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
