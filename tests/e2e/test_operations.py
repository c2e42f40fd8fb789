"""test_operations.py - running warren for many tenants: limits, reload,
drain, crash recovery, keepalive, the audit log."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import cgroup_dir, procs, wait_until


def running(uid, comm):
    return [p for p in procs() if p[2] == uid and p[4] == comm]


def test_max_sessions_per_tenant(make_warren):
    w = make_warren(tenants=("alice", "bob"), sandbox_extra="max_sessions = 2")
    w.start()
    uid = w.uid("alice")
    held = [subprocess.Popen(w.ssh_argv("alice") + ["sleep 30"], stdin=subprocess.DEVNULL)
            for _ in range(2)]
    try:
        assert wait_until(lambda: len(running(uid, "sleep")) == 2)
        r = w.ssh("alice", "echo third")
        assert r.returncode == 1
        assert r.stdout == ""
        assert r.stderr.strip() == ("warren: session limit reached: 2 sessions are running "
                                    "(max_sessions = 2)")
        assert len(running(uid, "sleep")) == 2  # nothing running was touched
        assert w.ssh("bob", "echo other-tenant").stdout == "other-tenant\n"
    finally:
        for p in held:
            p.kill()
            p.wait()
    assert wait_until(lambda: w.ssh("alice", "echo again").stdout == "again\n")


def test_max_channels_per_connection(make_warren, tmp_path):
    w = make_warren(tenants=("alice",), server_extra="max_channels = 2")
    w.start()
    ctl = str(tmp_path / "ctl")
    master = subprocess.Popen(w.ssh_argv("alice", extra=(
        "-o", "ControlMaster=yes", "-o", f"ControlPath={ctl}", "-N")), stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: os.path.exists(ctl))
        mux = ("-o", "ControlMaster=no", "-o", f"ControlPath={ctl}")
        held = [subprocess.Popen(w.ssh_argv("alice", extra=mux) + ["sleep 20"],
                                 stdin=subprocess.DEVNULL) for _ in range(2)]
        uid = w.uid("alice")
        assert wait_until(lambda: len(running(uid, "sleep")) == 2)
        r = w.ssh("alice", "echo third", extra=mux)
        # the mux client says so in one line (then ssh falls back to a connection of its own)
        assert "Session open refused by peer" in r.stderr
        assert len(running(uid, "sleep")) == 2
        for p in held:
            p.kill()
            p.wait()
    finally:
        master.terminate()
        master.wait()


def test_max_connections_per_source(make_warren):
    w = make_warren(tenants=("alice",), server_extra="max_connections_per_source = 2")
    w.start()
    uid = w.uid("alice")
    assert wait_until(lambda: not [p for p in procs()
                                   if p[1] == w.proc.pid and p[4] == "warrend"])
    held = [subprocess.Popen(w.ssh_argv("alice") + ["sleep 30"], stdin=subprocess.DEVNULL)
            for _ in range(2)]
    try:
        assert wait_until(lambda: len(running(uid, "sleep")) == 2)
        s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        s.settimeout(5)
        data = s.recv(200)
        assert data == b"warren: too many connections from your address\r\n"
        s.close()
    finally:
        for p in held:
            p.kill()
            p.wait()


def test_sighup_reload_good_and_bad(make_warren):
    w = make_warren(tenants=("alice",), sandbox_extra="tmp_size = 16M")
    w.start()
    before = subprocess.Popen(w.ssh_argv("alice") + ["sleep 3; df -k /tmp | tail -1"],
                              stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert wait_until(lambda: running(w.uid("alice"), "sleep"))
    with open(w.conf) as f:
        conf = f.read()
    with open(w.conf, "w") as f:
        f.write(conf.replace("tmp_size = 16M", "tmp_size = 32M"))
    os.kill(w.proc.pid, signal.SIGHUP)
    assert wait_until(lambda: "reloaded" in w.log_text())
    assert w.ssh("alice", "df -k /tmp | tail -1").stdout.split()[1] == str(32 * 1024)
    # the session that was running keeps its configuration
    assert before.communicate(timeout=30)[0].split()[1] == str(16 * 1024)
    # a broken file changes nothing and says where it is wrong
    with open(w.conf, "a") as f:
        f.write("this is not ini\n")
    lines = len(open(w.conf).read().splitlines())
    os.kill(w.proc.pid, signal.SIGHUP)
    assert wait_until(lambda: "reload failed" in w.log_text())
    assert f"{w.conf}:{lines}: syntax error" in w.log_text()
    assert w.ssh("alice", "df -k /tmp | tail -1").stdout.split()[1] == str(32 * 1024)


def test_sigterm_drains(make_warren):
    w = make_warren(tenants=("alice",), server_extra="drain_timeout = 3")
    w.start()
    p = subprocess.Popen(w.ssh_argv("alice", extra=("-o", "LogLevel=DEBUG1")) + ["sleep 60"],
                         stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    uid = w.uid("alice")
    assert wait_until(lambda: running(uid, "sleep"))
    t0 = time.time()
    w.proc.send_signal(signal.SIGTERM)
    # new connections are refused at once; the running session gets a notice
    assert wait_until(lambda: subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{w.port}"],
                                             capture_output=True).returncode != 0, timeout=5)
    _, err = p.communicate(timeout=30)
    elapsed = time.time() - t0
    assert "this host is draining" in err
    assert "rtype exit-signal" in err
    assert 2.5 < elapsed < 15
    assert w.proc.wait(timeout=15) == 0
    assert not running(uid, "sleep") and not running(uid, "bwrap")


def test_second_sigterm_ends_at_once(make_warren):
    w = make_warren(tenants=("alice",), server_extra="drain_timeout = 60")
    w.start()
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 120"], stdin=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    uid = w.uid("alice")
    assert wait_until(lambda: running(uid, "sleep"))
    w.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: "draining" in w.log_text())
    t0 = time.time()
    w.proc.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    assert time.time() - t0 < 10
    assert "ended by the operator" in err
    assert w.proc.wait(timeout=15) == 0


def test_kill9_then_restart_leaves_nothing(make_warren):
    w = make_warren(tenants=("alice",))
    w.start()
    uid = w.uid("alice")
    p = subprocess.Popen(w.ssh_argv("alice") + ["echo precious > data.txt; sync; sleep 120"],
                         stdin=subprocess.DEVNULL)
    assert wait_until(lambda: running(uid, "sleep"))
    cg = cgroup_dir(running(uid, "sleep")[0][0])
    os.kill(w.proc.pid, signal.SIGKILL)
    w.proc.wait()
    # the connection, its sandbox and its processes go with the master
    assert wait_until(lambda: not running(uid, "sleep") and not running(uid, "bwrap")
                      and not running(uid, "warrend"), timeout=15)
    p.wait(timeout=15)
    w.start()
    assert w.ssh("alice", "cat data.txt").stdout == "precious\n"
    if cg is None or "/warren/" not in cg:
        pytest.skip(f"no warren cgroup on this host ({cg}): checked processes and data only")
    # the start swept the dead session's cgroup
    assert wait_until(lambda: not os.path.isdir(cg)), cg


def v1_mount(ctrl):
    """Where cgroup v1's ctrl hierarchy is mounted, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _, opts = right.split(" ", 2)
            if fstype == "cgroup" and ctrl in opts.split()[-1].split(","):
                return left.split()[4]
    return None


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_leftover_cgroups_of_a_killed_run_are_no_obstacle(make_warren):
    # A run killed outright leaves its tenant and session levels in every v1
    # hierarchy, with that run's limits. A new run with higher limits must
    # still log in (v1 refuses memory.limit_in_bytes above the old memsw
    # limit), and its start sweeps the dead sessions from every hierarchy.
    mem, cpu = v1_mount("memory"), v1_mount("cpu")
    if mem is None or not os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
        pytest.skip("needs cgroup v1 with swap accounting (memory.memsw.*)")
    w = make_warren(tenants=("alice",), sandbox_extra="memory_max = 1G")
    stale = []
    for root in (mem, cpu):
        if root is None:
            continue
        tdir = os.path.join(root, "warren", "tenant-alice")
        os.makedirs(tdir, exist_ok=True)
        if root == mem:
            with open(os.path.join(tdir, "memory.limit_in_bytes"), "w") as f:
                f.write(str(64 << 20))
            with open(os.path.join(tdir, "memory.memsw.limit_in_bytes"), "w") as f:
                f.write(str(64 << 20))
        sdir = os.path.join(tdir, f"session-{dead_pid()}")
        os.mkdir(sdir)
        stale.append(sdir)
    w.start()
    r = w.ssh("alice", "echo in")
    assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr + w.log_text()[-2000:]
    with open(os.path.join(mem, "warren", "tenant-alice", "memory.limit_in_bytes")) as f:
        assert int(f.read()) == 1 << 30
    for sdir in stale:
        assert not os.path.isdir(sdir), sdir


def test_client_alive(make_warren):
    w = make_warren(tenants=("alice",),
                    server_extra="client_alive_interval = 1\nclient_alive_count_max = 2")
    w.start()
    uid = w.uid("alice")
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 120"], stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: running(uid, "sleep"))
        os.kill(p.pid, signal.SIGSTOP)  # a client that stopped answering
        assert wait_until(lambda: not running(uid, "sleep"), timeout=15)
        assert "client not responding" in w.log_text()
    finally:
        os.kill(p.pid, signal.SIGCONT)
        p.kill()
        p.wait()


def test_client_alive_keeps_a_live_idle_client(make_warren):
    # every probe is sent and answered: with count_max = 1 a live client that
    # sends nothing itself still stays (OpenSSH's ClientAliveCountMax semantics)
    w = make_warren(tenants=("alice",),
                    server_extra="client_alive_interval = 1\nclient_alive_count_max = 1")
    w.start()
    r = w.ssh("alice", "sleep 6; echo still-here", extra=("-o", "ServerAliveInterval=0"))
    assert r.stdout == "still-here\n", r.stderr + w.log_text()[-2000:]
    assert "client not responding" not in w.log_text()


def test_audit_log(make_warren):
    w = make_warren(tenants=("alice",), server_extra="audit_log = @AUDIT@")
    audit = os.path.join(w.base, "audit.jsonl")
    with open(w.conf) as f:
        conf = f.read().replace("@AUDIT@", audit)
    with open(w.conf, "w") as f:
        f.write(conf)
    w.start()
    assert w.ssh("alice", "echo secret-output; exit 3").returncode == 3
    assert w.ssh("alice", "true", key=w.stranger_key).returncode == 255
    assert w.ssh("mallory", "true", key=w.stranger_key).returncode == 255
    assert wait_until(lambda: os.path.exists(audit) and
                      sum(1 for _ in open(audit)) >= 5)
    events = [json.loads(line) for line in open(audit)]  # every line parses
    kinds = [e["event"] for e in events]
    ok = [e for e in events if e["event"] == "auth_success"]
    assert ok and ok[0]["tenant"] == "alice" and ok[0]["method"] == "publickey"
    assert ok[0]["source"].startswith("127.0.0.1:")
    start = [e for e in events if e["event"] == "session_start"][0]
    assert start["type"] == "exec" and start["command"] == "echo secret-output; exit 3"
    assert start["pty"] == "no"
    end = [e for e in events if e["event"] == "session_end"][0]
    assert end["exit_status"] == 3 and end["bytes_out"] == len("secret-output\n")
    assert isinstance(end["duration_ms"], int)
    fails = [e for e in events if e["event"] == "auth_failure"]
    assert {f["user"] for f in fails} >= {"alice", "mallory"}
    assert "auth_success" in kinds and "session_end" in kinds
    # a refused command has a proper record too: its type and a real duration
    r = w.ssh("alice", "echo " + "x" * (121 * 1024))
    assert r.returncode == 1 and "command longer than" in r.stderr
    assert wait_until(lambda: sum(1 for line in open(audit) if '"session_end"' in line) >= 2)
    ends = [json.loads(line) for line in open(audit) if '"session_end"' in line]
    refused = ends[-1]
    assert refused["type"] == "exec" and 0 <= refused["duration_ms"] < 10_000, refused
    assert "longer than" in refused["reason"]
    text = open(audit).read()
    assert "secret-output\\n" not in text.replace('"command"', "")  # output never logged
    assert "BEGIN OPENSSH" not in text and "ssh-ed25519 AAAA" not in text


def test_pty_session_recorded(make_warren):
    import pexpect
    w = make_warren(tenants=("alice",), sandbox_extra="record = pty\nrecord_input = yes")
    w.start()
    argv = w.ssh_argv("alice", extra=("-tt",))
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(30, 90), encoding="utf-8", timeout=15)
    child.expect(r"\$ ")
    child.sendline("echo REC-$((6*7))-MARK")
    child.expect("REC-42-MARK")
    child.expect(r"\$ ")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    rdir = os.path.join(w.state, "recordings", "alice")
    assert wait_until(lambda: os.path.isdir(rdir) and os.listdir(rdir))
    st = os.stat(rdir)
    assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o700
    path = os.path.join(rdir, os.listdir(rdir)[0])
    assert os.stat(path).st_uid == 0 and (os.stat(path).st_mode & 0o777) == 0o600
    lines = open(path).read().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] == 90 and header["height"] == 30
    events = [json.loads(line) for line in lines[1:]]
    out = "".join(e[2] for e in events if e[1] == "o")
    inp = "".join(e[2] for e in events if e[1] == "i")
    assert "REC-42-MARK" in out  # the output as the terminal showed it
    assert "echo REC-$((6*7))-MARK" in inp
    times = [e[0] for e in events]
    assert times == sorted(times)
    # not visible to the tenant: state_dir does not exist in the sandbox
    r = w.ssh("alice", f"cat {path}")
    assert r.returncode != 0
    # exec without a pty is not recorded with record = pty
    w.ssh("alice", "echo not-recorded")
    assert len(os.listdir(rdir)) == 1


def test_status_lists_and_ends_a_session(make_warren):
    from conftest import WARREND
    w = make_warren(tenants=("alice",))
    w.start()
    p = subprocess.Popen(w.ssh_argv("alice", extra=("-o", "LogLevel=DEBUG1")) + ["sleep 77"],
                         stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    uid = w.uid("alice")
    assert wait_until(lambda: running(uid, "sleep"))
    r = subprocess.run([WARREND, "-f", w.conf, "--status"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [line.split(None, 5) for line in r.stdout.splitlines()[1:]]
    mine = [row for row in rows if row[1] == "alice" and "sleep 77" in row[5]]
    assert len(mine) == 1, r.stdout
    assert mine[0][2].startswith("127.0.0.1")
    sid = mine[0][0]
    r = subprocess.run([WARREND, "-f", w.conf, "--kill", sid], capture_output=True, text=True)
    assert r.returncode == 0 and f"ended session {sid}" in r.stdout
    _, err = p.communicate(timeout=20)
    assert "ended by the operator" in err and "rtype exit-signal" in err
    assert wait_until(lambda: not running(uid, "sleep"))
    r = subprocess.run([WARREND, "-f", w.conf, "--kill", "999999"], capture_output=True, text=True)
    assert r.returncode == 1
    sock = os.path.join(w.state, "warrend.sock")
    assert os.stat(sock).st_mode & 0o777 == 0o600 and os.stat(sock).st_uid == 0


def test_make_install_layout(tmp_path):
    from conftest import ROOT, WARREND
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-C", ROOT, "install", f"DESTDIR={dest}"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    for rel in ("usr/local/sbin/warrend", "usr/local/lib/warren/warren-init",
                "usr/local/lib/systemd/system/warrend.service", "etc/pam.d/warren",
                "etc/warren/warrend.conf", "etc/warren/profiles/offline/flake.nix"):
        assert (dest / rel).exists(), rel
    unit = (dest / "usr/local/lib/systemd/system/warrend.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "Delegate=yes" in unit
    # the shipped default configuration passes the checker
    conf = (dest / "etc/warren/warrend.conf").read_text()
    conf = conf.replace("/etc/warren", str(dest / "etc/warren")).replace(
        "/var/lib/warren", str(tmp_path / "state"))
    (tmp_path / "w.conf").write_text(conf)
    r = subprocess.run([WARREND, "-t", "-f", str(tmp_path / "w.conf")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_client_and_tenant_strings_are_escaped(make_warren):
    """A user name from an unauthenticated client and a tenant's command
    reach the operator's log and `--status` escaped: no terminal control
    sequence, no forged log line."""
    import asyncio
    asyncssh = pytest.importorskip("asyncssh")
    from conftest import WARREND
    w = make_warren(tenants=("alice",))
    w.start()
    evil = "ev\x1b[2J\x1b]0;pwned\x07il\nwarrend[1]: error: forged"
    # OpenSSH's client and asyncssh refuse such a name; a hostile client
    # does not: let asyncssh send it as it is
    import asyncssh.connection
    asyncssh.connection.saslprep = lambda s: s

    async def attempt():
        key = asyncssh.read_private_key(w.stranger_key)
        try:
            async with asyncssh.connect("127.0.0.1", w.port, username=evil, client_keys=[key],
                                        known_hosts=None, preferred_auth="publickey"):
                pass
        except (asyncssh.Error, OSError):
            pass
    asyncio.run(asyncio.wait_for(attempt(), 30))
    assert wait_until(lambda: "auth failure" in w.log_text())
    log = w.log_text()
    assert "\x1b" not in log and "\x07" not in log
    assert not any(line.startswith("warrend[1]: error: forged") for line in log.splitlines())
    assert "ev\\x1b[2J\\x1b]0;pwned\\x07il\\x0awarrend[1]" in log
    # a tenant's command in the operator's session list
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 78 # \x1b[2J\x1b[31m"],
                         stdin=subprocess.DEVNULL)
    try:
        uid = w.uid("alice")
        assert wait_until(lambda: running(uid, "sleep"))
        r = subprocess.run([WARREND, "-f", w.conf, "--status"], capture_output=True, text=True)
        assert "sleep 78 # \\x1b[2J\\x1b[31m" in r.stdout, r.stdout
        assert "\x1b" not in r.stdout
    finally:
        p.kill()
        p.wait()


def test_max_connections_per_tenant(make_warren):
    """Idle authenticated connections (ssh -N) count: the third of a tenant
    with max_connections = 2 is refused with one line; another tenant is not;
    a slot frees when a connection ends."""
    w = make_warren(tenants=("alice", "bob"),
                    tenant_extra={"alice": "[sandbox]\nmax_connections = 2\n"})
    w.start()
    held = [subprocess.Popen(w.ssh_argv("alice", extra=("-N",)), stdin=subprocess.DEVNULL)
            for _ in range(2)]
    try:
        slots = os.path.join(w.state, "connections", "alice")
        assert wait_until(lambda: os.path.isdir(slots) and len(os.listdir(slots)) == 2)
        assert os.stat(slots).st_uid == 0 and os.stat(slots).st_mode & 0o777 == 0o700
        r = w.ssh("alice", "true")
        assert r.returncode == 1
        assert "connection limit reached: 2 connections are open (max_connections = 2)" \
            in r.stderr
        assert w.ssh("bob", "true").returncode == 0
        held.pop().kill()
        assert wait_until(lambda: len(os.listdir(slots)) == 1)
        assert w.ssh("alice", "echo back").stdout == "back\n"
    finally:
        for p in held:
            p.kill()
            p.wait()


def test_idle_connections_past_max_connections_are_ended(make_warren):
    """Five `ssh -N` against max_connections = 2: the three refused ones do
    not linger (they opened no channel to be told on): each ends within the
    grace with the reason as its disconnect message, and two stay up."""
    w = make_warren(tenants=("alice",),
                    tenant_extra={"alice": "[sandbox]\nmax_connections = 2\n"})
    w.start()
    # the disconnect's reason is logged at INFO by OpenSSH's client
    argv = w.ssh_argv("alice", extra=("-N", "-o", "LogLevel=INFO"))
    held = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(5)]
    try:
        slots = os.path.join(w.state, "connections", "alice")
        assert wait_until(lambda: sum(p.poll() is not None for p in held) == 3, timeout=20), \
            [p.poll() for p in held]
        assert not wait_until(lambda: any(p.poll() is not None for p in held
                                          if p.returncode is None), timeout=2)
        assert len(os.listdir(slots)) == 2
        ended = [p for p in held if p.returncode is not None]
        for p in ended:
            err = p.stderr.read()
            assert "connection limit reached" in err and "max_connections = 2" in err, err
    finally:
        for p in held:
            p.kill()
            p.wait()


def test_recordings_total_per_tenant(make_warren):
    """record_total_max caps all of a tenant's recordings together: once
    they hold it, a session that must be recorded does not start (one line
    to the client, an audit event); others' recordings are unaffected."""
    w = make_warren(tenants=("alice", "bob"), sandbox_extra="record = all\n",
                    tenant_extra={"alice": "[sandbox]\nrecord_total_max = 4K\n"})
    w.start()
    r = w.ssh("alice", "head -c 6000 /dev/zero | tr '\\0' x")
    assert r.returncode == 0 and len(r.stdout) == 6000
    rdir = os.path.join(w.state, "recordings", "alice")
    total = sum(os.path.getsize(os.path.join(rdir, f)) for f in os.listdir(rdir))
    assert total > 4096
    r = w.ssh("alice", "echo should-not-run")
    assert r.returncode == 1 and "should-not-run" not in r.stdout
    assert "recordings are required and yours are full (record_total_max)" in r.stderr
    assert len(os.listdir(rdir)) == 1
    assert w.ssh("bob", "echo recorded").stdout == "recorded\n"


def test_connection_processes_count_against_pids_max(make_warren):
    """Each authenticated connection's root monitor sits in the tenant's
    cgroup (a monitor-PID leaf), so idle `ssh -N` connections use up the
    tenant's pids_max: past it a connection is refused with one line, the
    tenant's count never exceeds the cap, another tenant is not touched,
    and the leaves go when the connections end."""
    w = make_warren(tenants=("alice", "bob"), sandbox_extra="max_connections = 0",
                    tenant_extra={"alice": "[sandbox]\npids_max = 12\n"})
    w.start()
    uid = w.uid("alice")
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 120"], stdin=subprocess.DEVNULL)
    held = [p]
    try:
        assert wait_until(lambda: running(uid, "sleep"))
        session = next(q for q in procs() if q[2] == uid and q[4] == "warrend")
        monitor = session[1]
        mcg = cgroup_dir(monitor)
        if mcg is None or "/warren/" not in mcg:
            pytest.skip(f"no warren cgroup on this host ({mcg})")
        assert os.path.basename(mcg) == f"monitor-{monitor}"
        tenant_dir = os.path.dirname(mcg)
        assert os.path.basename(tenant_dir) == "tenant-alice"
        with open(os.path.join(tenant_dir, "pids.max")) as f:
            assert f.read().strip() == "12"
        def monitors():
            return [d for d in os.listdir(tenant_dir) if d.startswith("monitor-")]

        refused = None
        for _ in range(10):
            n = len(monitors())
            held.append(subprocess.Popen(w.ssh_argv("alice", extra=("-N",)),
                                         stdin=subprocess.DEVNULL))
            if not wait_until(lambda: len(monitors()) > n, timeout=5):
                refused = w.ssh("alice", "true").stderr  # no room: say why
                break
        assert refused is not None, "ten idle connections fitted in pids_max = 12"
        assert "warren: process limit reached: pids_max = 12 processes are running" \
            in refused, refused + w.log_text()[-3000:]
        with open(os.path.join(tenant_dir, "pids.current")) as f:
            assert int(f.read()) <= 12
        assert w.ssh("bob", "echo fine").stdout == "fine\n"
    finally:
        for q in held:
            q.kill()
            q.wait()
    # the connections' monitor leaves go with them; the lingering
    # environment's monitor keeps its own; alice gets in again
    env_monitors = {f"monitor-{q[0]}" for q in procs() if q[4] == "warren-env"}
    assert wait_until(lambda: set(monitors()) <= env_monitors, timeout=15), monitors()
    assert len(monitors()) == 1
    assert w.ssh("alice", "echo back").stdout == "back\n"


def test_master_runs_with_malloc_tuned_and_keeps_operator_tunables(make_warren):
    """warrend starts itself again with glibc's tcache off (warm.c): the same
    pid and name for ps and systemd, the operator's own GLIBC_TUNABLES kept
    after warren's (so that it wins), and neither reaches a tenant."""
    w = make_warren(env={"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}).start()
    pid = w.proc.pid
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "warrend"
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = f.read().split(b"\0")
    # glibc 2.36 shows only the first tunable of the list in environ; the
    # marker holds what the operator had, put back after the second start
    assert [e for e in env if e.startswith(b"GLIBC_TUNABLES=")] == [
        b"GLIBC_TUNABLES=glibc.malloc.tcache_count=0"], env
    assert b"WARREN_MALLOC_TUNED==glibc.malloc.arena_max=4" in env, env
    r = w.ssh("alice", "env")
    assert r.returncode == 0, r.stderr
    assert "PATH=" in r.stdout
    assert "GLIBC_TUNABLES" not in r.stdout and "WARREN_MALLOC_TUNED" not in r.stdout


def test_workspace_that_cannot_be_prepared_gets_one_line(make_warren):
    """A tenant whose workspace is not a directory it owns (here a file root
    left in its place): every request is answered with one line on stderr,
    nothing of it is taken or used as a path, other tenants are unaffected."""
    w = make_warren().start()
    wsdir = os.path.join(w.state, "workspaces")
    os.makedirs(wsdir, exist_ok=True)
    with open(os.path.join(wsdir, "alice"), "w") as f:
        f.write("not a workspace\n")
    r = w.ssh("alice", "echo hi")
    assert r.returncode != 0
    assert r.stdout == ""
    assert "your workspace could not be prepared" in r.stderr, r.stderr
    with open(os.path.join(wsdir, "alice")) as f:
        assert f.read() == "not a workspace\n"
    r = w.ssh("bob", "echo fine")
    assert r.stdout == "fine\n", r.stderr
    assert "is not a directory owned by uid" in w.log_text()
    assert "(null)" not in w.log_text()


def test_check_names_a_template_tenants_cannot_reach(make_warren, tmp_path):
    """The workspace template is copied as the tenant: `warrend -t` says so
    when a directory on its path is closed to tenants, instead of the first
    login failing with "your workspace could not be prepared"."""
    from conftest import WARREND, make_base
    base = make_base()  # 0711, as state_dir's parent must be
    closed = os.path.join(base, "closed")
    os.makedirs(os.path.join(closed, "tpl"))
    os.chmod(closed, 0o700)
    w = make_warren(tenants=("alice",), server_extra=f"template_dir = {closed}/tpl")
    try:
        r = subprocess.run([WARREND, "-t", "-f", w.conf], capture_output=True, text=True)
        assert r.returncode == 1
        assert f"template_dir: {closed} is not searchable by tenants (mode 0700)" in r.stderr
        os.chmod(closed, 0o755)
        r = subprocess.run([WARREND, "-t", "-f", w.conf], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
