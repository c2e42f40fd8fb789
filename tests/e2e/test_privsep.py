"""test_privsep.py - what a tenant's session process (its uid, no
capabilities) may do to root's state: it holds neither the audit log nor the
master's status pipe, max_sessions is counted by root where the tenant
cannot write, and its root monitor checks every request (monproto.h): a
request out of state, an event a session may not write, a forged tenant are
refused and logged. Requests are injected on the session process's own
monitor socket, taken with pidfd_getfd(2)."""
import ctypes
import json
import os
import signal
import socket
import stat
import struct
import subprocess

import pytest

from test_environment import audited
from conftest import WARREND, procs, wait_until

SYS_pidfd_open, SYS_pidfd_getfd = 434, 438
MON_CLAIM, MON_RELEASE, MON_AUDIT, MON_NOTE = 1, 2, 4, 5
MON_AUTH_PASSWORD, MON_LOGIN = 8, 11
PREAUTH_UID_MIN = 2130706432  # preauth_uids' default
# SETUID, SETGID, SETPCAP, SYS_CHROOT: permitted, in its own namespace only
PREAUTH_CAPS = (1 << 6) | (1 << 7) | (1 << 8) | (1 << 18)


def steal_fd(pid, fd):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_pidfd_open, pid, 0)
    if pidfd < 0:
        pytest.skip(f"pidfd_open: {os.strerror(ctypes.get_errno())}")
    n = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    err = ctypes.get_errno()
    os.close(pidfd)
    if n < 0:
        pytest.skip(f"pidfd_getfd (Linux 5.6+): {os.strerror(err)}")
    return n


def session_process(uid, master):
    """(session pid, monitor pid, master pid): the tenant's warrend process
    whose parent is a connection's root monitor, the master's child; None
    while there is none or more than one (an earlier connection's, ending)."""
    ps = {p[0]: p for p in procs()}
    found = []
    for p in ps.values():
        parent = ps.get(p[1])
        if (p[2] == uid and p[4] == "warrend" and p[3] not in "ZX" and parent and
                parent[2] == 0 and parent[4] == "warrend" and parent[1] == master):
            found.append((p[0], parent[0], parent[1]))
    return found[0] if len(found) == 1 else None


def monitor_socket(pid, monitor):
    """The session process's socket to its monitor: an unnamed SEQPACKET
    pair made by the monitor (the environment's socket has a path)."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
            continue
        s = socket.socket(fileno=steal_fd(pid, int(fd)))
        if (s.family == socket.AF_UNIX and s.type == socket.SOCK_SEQPACKET and
                not s.getpeername()):
            cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", cred)[0] == monitor:
                return s
        s.close()
    raise AssertionError("no monitor socket in the session process")


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def preauth_process(master, inode):
    """(pid, monitor): the warrend in preauth_uids, whose parent is a root
    warrend, the master's child, that holds socket:[inode]; None while there
    is none. (Another connection's, such as the readiness probe's, may still
    be ending: under ASan the leak check at exit takes a while.)"""
    ps = {p[0]: p for p in procs()}
    held = holders(inode)
    for p in ps.values():
        parent = ps.get(p[1])
        if (p[2] >= PREAUTH_UID_MIN and p[4] == "warrend" and parent and parent[2] == 0 and
                parent[1] == master and p[0] in held):
            return p[0], parent[0]
    return None


def tcp_inode(local_port, remote_port):
    """The inode of the server's end of a loopback TCP connection."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            lp, rp = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if lp == local_port and rp == remote_port:
                return fields[9]
    return None


def holders(inode):
    """pids holding socket:[inode]"""
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                if os.readlink(f"/proc/{d}/fd/{fd}") == f"socket:[{inode}]":
                    out.add(int(d))
        except OSError:
            continue
    return out


def test_preauth_runs_unprivileged_in_an_empty_root(make_warren):
    """While a client is still in key exchange, the only process holding its
    socket is the connection's pre-auth process: its own uid (not root, not
    a tenant's), a user namespace that maps nothing, an empty root, no
    capabilities in effect, seccomp; its root monitor refuses what it may
    not ask before authentication."""
    w = audited(make_warren, tenants=("alice",))
    with w.start():
        c = socket.create_connection(("127.0.0.1", w.port))
        try:
            c.sendall(b"SSH-2.0-OpenSSH_9.2 probe\r\n")
            assert c.recv(256).startswith(b"SSH-2.0-")  # the server speaks: pre-auth runs
            inode = tcp_inode(w.port, c.getsockname()[1])
            assert inode, "no such connection in /proc/net/tcp"
            found = []
            assert wait_until(lambda: found.append(preauth_process(w.proc.pid, inode)) or
                              found[-1]), holders(inode)
            pid, monitor = found[-1]
            assert holders(inode) == {pid}, (holders(inode), pid, monitor)
            st = status(pid)
            assert st["Uid"].split() == [str(PREAUTH_UID_MIN + pid)] * 4, st["Uid"]
            assert st["Gid"].split() == [str(PREAUTH_UID_MIN + pid)] * 4
            assert st["Groups"].strip() == ""
            assert int(st["CapEff"], 16) == 0 and int(st["CapAmb"], 16) == 0
            assert int(st["CapPrm"], 16) == PREAUTH_CAPS and int(st["CapBnd"], 16) == PREAUTH_CAPS
            assert st["NoNewPrivs"].strip() == "1" and st["Seccomp"].strip() == "2"
            # its own user namespace, in which no uid is mapped yet
            assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
            assert open(f"/proc/{pid}/uid_map").read() == ""
            assert open(f"/proc/{pid}/gid_map").read() == ""
            # an empty root, read-only to it
            assert os.listdir(f"/proc/{pid}/root/") == []
            rs = os.stat(f"/proc/{pid}/root/")
            assert rs.st_uid == 0 and stat.S_IMODE(rs.st_mode) == 0o555
            # the audit log and the master's pipe are root's
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            assert os.path.realpath(w.audit_path) not in links
            assert not pipe_inodes(pid) & pipe_inodes(w.proc.pid)
            # requests out of phase: refused (answered "denied") and logged
            s = monitor_socket(pid, monitor)
            for req in (struct.pack("Ii", MON_LOGIN, 0), struct.pack("Ii", MON_CLAIM, 1),
                        struct.pack("Ii", MON_AUTH_PASSWORD, 0) + b"alice\0pw"):
                s.send(req)
                assert struct.unpack("i", s.recv(16384)[:4])[0] == 0  # MON_AUTH_DENIED
            s.close()
            for why in ("out of phase: not before authentication", "bad password request"):
                assert wait_until(lambda: why in w.log_text()), why
        finally:
            c.close()
        assert wait_until(lambda: process_ended(pid))
        r = w.ssh("alice", "id -u")
        assert r.returncode == 0 and r.stdout.strip() == str(w.uid("alice")), r.stderr


def process_ended(pid):
    """pid has exited (or is a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] in "ZX"
    except OSError:
        return True


def pipe_inodes(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("pipe:"):
            out.add(link)
    return out


@pytest.fixture
def held(make_warren):
    w = audited(make_warren, tenants=("alice",), sandbox_extra="max_sessions = 3")
    with w.start():
        p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 60"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            uid = w.uid("alice")
            assert wait_until(lambda: session_process(uid, w.proc.pid) and os.listdir(
                os.path.join(w.state, "sessions", "alice")), timeout=20)
            yield w, session_process(uid, w.proc.pid)
        finally:
            p.kill()
            p.wait()


def test_session_process_holds_no_root_state(held):
    w, (pid, monitor, master) = held
    links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert os.path.realpath(w.audit_path) not in links, links
    # the master's status pipe: the monitor writes it, the session process does not hold it
    shared = pipe_inodes(pid) & pipe_inodes(master)
    assert not shared, shared
    assert pipe_inodes(monitor) & pipe_inodes(master)
    # max_sessions: counted by root, in a directory the tenant cannot write
    d = os.path.join(w.state, "sessions", "alice")
    st = os.stat(d)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700
    assert wait_until(lambda: all(name.startswith(f"{monitor}.") for name in os.listdir(d))), \
        (monitor, os.listdir(d))
    # its channels run in the environment: it speaks SSH under a seccomp
    # allowlist (no exec, no new process, no file written: confine.c)
    with open(f"/proc/{pid}/status") as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "1", st["Seccomp"]
    assert st["CapEff"].strip() == "0000000000000000"


def test_monitor_refuses_requests_out_of_state_and_forged_events(held):
    w, (pid, monitor, master) = held
    s = monitor_socket(pid, monitor)
    hdr = lambda t, ch=0: struct.pack("Ii", t, ch)  # noqa: E731
    s.send(hdr(MON_RELEASE, 4242))                      # a slot it never claimed
    s.send(hdr(77))                                     # no such request
    s.send(hdr(MON_NOTE) + b"Xforged")                  # no such note
    s.send(hdr(MON_AUDIT) + b"auth_success\0method\0forged-login\0")  # not a session's event
    s.send(hdr(MON_AUDIT) + b"session_end\0tenant\0bob\0type\0forged-tenant\0")
    s.send(hdr(MON_AUDIT) + b"session_end\0type\0probe-ok\0")  # well-formed: written
    s.close()
    log = lambda: w.log_text()  # noqa: E731
    assert wait_until(lambda: "probe-ok" in open(w.audit_path).read())
    s2 = monitor_socket(pid, monitor)
    s2.send(hdr(MON_AUTH_PASSWORD) + b"alice\0pw\0")      # authentication is over
    s2.send(hdr(MON_LOGIN))                                # and so is the login
    s2.close()
    for why in ("release of a channel that holds no slot", "unknown request", "unknown note",
                "an event a session may not write", "bad key",
                "out of phase: authentication is over"):
        assert wait_until(lambda: why in log()), why
    events = [json.loads(line) for line in open(w.audit_path)]
    assert not [e for e in events if "forged" in json.dumps(e)]
    probe = [e for e in events if e.get("type") == "probe-ok"]
    assert len(probe) == 1 and probe[0]["tenant"] == "alice" and probe[0]["pid"] == pid
    # the session goes on: its channels still work
    r = w.ssh("alice", "echo still-here")
    assert r.returncode == 0 and r.stdout == "still-here\n"


def test_session_process_cannot_extend_its_session_timeout(make_warren):
    """session_timeout is root's too: a session process that does not end a
    channel at the timeout (stopped here, as a taken-over one would not) is
    ended by its monitor MON_TIMEOUT_GRACE_S (5 s) later, with the channel's
    processes; the audit log says who enforced it."""
    w = audited(make_warren, tenants=("alice",), sandbox_extra="session_timeout = 2")
    w.start()
    uid = w.uid("alice")
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 60"], stdin=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        def sleeping():
            return [q for q in procs() if q[2] == uid and q[4] == "sleep"]
        assert wait_until(sleeping)
        assert wait_until(lambda: session_process(uid, w.proc.pid)), "no session process"
        found = session_process(uid, w.proc.pid)
        pid = found[0]
        os.kill(pid, signal.SIGSTOP)

        assert not wait_until(lambda: process_ended(pid), timeout=4), \
            "ended before session_timeout and its grace"
        assert wait_until(lambda: process_ended(pid), timeout=10), \
            "a stopped session process outlived its timeout"
        assert wait_until(lambda: not sleeping(), timeout=10)
        assert "the monitor ends the session process" in w.log_text()
        with open(w.audit_path) as f:
            events = [json.loads(line) for line in f]
        assert any(e["event"] == "timeout_enforced" and e.get("by") == "monitor" and
                   e.get("tenant") == "alice" for e in events), events[-5:]
    finally:
        p.kill()
        p.wait()


def test_session_process_cannot_outgrow_record_max_bytes(make_warren):
    """record_max_bytes is root's too: a session process that writes past it
    (a taken-over one would; here the test writes on its recording's
    descriptor, taken with pidfd_getfd) has the file cut back to the cap by
    its monitor, which ends it; the audit log says who enforced it."""
    cap = 64 * 1024
    w = audited(make_warren, tenants=("alice",),
                sandbox_extra="record = all\nrecord_max_bytes = 64K")
    w.start()
    uid = w.uid("alice")
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 60"], stdin=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: [q for q in procs() if q[2] == uid and q[4] == "sleep"])
        assert wait_until(lambda: session_process(uid, w.proc.pid)), "no session process"
        found = session_process(uid, w.proc.pid)
        pid = found[0]
        recdir = os.path.join(w.state, "recordings", "alice")
        fds = [fd for fd in os.listdir(f"/proc/{pid}/fd")
               if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(recdir)]
        assert len(fds) == 1, fds
        path = os.readlink(f"/proc/{pid}/fd/{fds[0]}")
        rec = steal_fd(pid, int(fds[0]))
        os.write(rec, b"x" * (1 << 20))  # what the session process itself never writes
        os.close(rec)

        assert wait_until(lambda: process_ended(pid), timeout=10), \
            "the session process outlived its recording's cap"
        assert os.path.getsize(path) <= cap
        p.wait(timeout=10)
        assert "grew past record_max_bytes" in w.log_text()
        with open(w.audit_path) as f:
            events = [json.loads(line) for line in f]
        assert any(e["event"] == "limit_enforced" and e.get("by") == "monitor" and
                   e.get("limit") == "record_max_bytes" for e in events), events[-5:]
        # the tenant is not locked out by it
        assert w.ssh("alice", "echo again").stdout == "again\n"
    finally:
        p.kill()
        p.wait()


def test_channel_scope_sandboxes_are_started_by_the_monitor(make_warren, tmp_path):
    """sandbox_scope = channel: the session process execs nothing and runs
    under its allowlist; each channel's bwrap is started by a helper of the
    root monitor that joined the session and became the tenant. Exec
    (streams, exit status), a terminal and sftp work through it, and a client
    that goes away ends its sandbox."""
    import hashlib
    import pexpect
    from test_files import sftp
    w = make_warren(tenants=("alice",), sandbox_extra="sandbox_scope = channel")
    w.start()
    uid = w.uid("alice")
    r = w.ssh("alice", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    data = os.urandom(4 << 20)
    r = subprocess.run(w.ssh_argv("alice") + ["sha256sum"], input=data, capture_output=True,
                       timeout=60)
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    t = pexpect.spawn(" ".join(w.ssh_argv("alice", extra=("-tt",))) + " 'tty; exit 5'",
                      timeout=20)
    t.expect(r"/dev/pts/\d+")
    t.expect(pexpect.EOF)
    t.close()
    assert t.exitstatus == 5
    (tmp_path / "up.bin").write_bytes(data)
    sftp(w, "alice", f"put {tmp_path / 'up.bin'} up.bin\nget up.bin {tmp_path / 'back.bin'}\n")
    assert (tmp_path / "back.bin").read_bytes() == data
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 60"], stdin=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: [q for q in procs() if q[2] == uid and q[4] == "sleep"])
        assert wait_until(lambda: session_process(uid, w.proc.pid)), "no session process"
        pid, monitor, _ = session_process(uid, w.proc.pid)
        ps = procs()
        assert not [q for q in ps if q[1] == pid], "the session process has children"
        helpers = [q for q in ps if q[1] == monitor and q[4] == "warren-spawn"]
        assert len(helpers) == 1 and helpers[0][2] == uid, helpers
        assert [q for q in ps if q[1] == helpers[0][0] and q[4] == "bwrap"]
        with open(f"/proc/{pid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        assert st["Seccomp"].strip() == "2", st["Seccomp"]
        with open(f"/proc/{helpers[0][0]}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        assert st["CapEff"].strip() == "0000000000000000" and st["NoNewPrivs"].strip() == "1"
        p.kill()  # the client goes: its sandbox ends, the helper with it
        p.wait()
        assert wait_until(lambda: not [q for q in procs() if q[2] == uid and q[4] == "sleep"],
                          timeout=15)
        assert wait_until(lambda: not [q for q in procs() if q[4] == "warren-spawn"], timeout=15)
    finally:
        p.kill()
        p.wait()


def test_preauth_root_that_is_not_empty_is_refused_at_start(make_warren):
    """The pre-auth jail's root must be empty and root's: warrend will not
    start on one that holds something, and says which and why."""
    w = make_warren(tenants=("alice",))
    root = os.path.join(w.state, "preauth-root")
    os.makedirs(root, mode=0o555)
    open(os.path.join(root, "planted"), "w").close()
    with pytest.raises(RuntimeError) as e:
        w.start()
    assert "preauth-root: must be an empty directory owned by root, mode 0555" in str(e.value)


def test_inherited_descriptors_reach_no_process_of_warrens(make_warren, tmp_path):
    """warrend closes what it inherited beyond 0-2 (a launching shell's open
    file): no process it starts holds it, the tenant's least of all."""
    marker = tmp_path / "inherited.secret"
    fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o600)
    w = make_warren()
    try:
        w.start(pass_fds=(fd,))
    finally:
        os.close(fd)
    uid = w.uid("alice")
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 30"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: session_process(uid, w.proc.pid) is not None, timeout=15)
        holding = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                for f in os.listdir(f"/proc/{d}/fd"):
                    if os.readlink(f"/proc/{d}/fd/{f}") == str(marker):
                        holding.append(int(d))
            except OSError:
                continue
        assert holding == [], holding
    finally:
        p.kill()
        p.wait()


def test_audit_events_take_their_identity_from_the_monitor(held):
    """A session process cannot name another user or source in its events:
    the monitor drops a user it names and writes the connection's own
    source in place of the one it names."""
    w, (pid, monitor, master) = held
    s = monitor_socket(pid, monitor)
    s.send(struct.pack("Ii", MON_AUDIT, 0) +
           b"session_start\x00user\x00root\x00source\x00203.0.113.9 22 1.2.3.4 22\x00"
           b"type\x00forge-probe\x00")
    s.close()

    def events():
        with open(w.audit_path) as f:
            return [json.loads(line) for line in f]
    assert wait_until(lambda: any(e.get("type") == "forge-probe" for e in events()))
    # this connection's own session_start (w.uid logs in too: another one)
    assert wait_until(lambda: any(e.get("event") == "session_start" and e.get("pid") == pid and
                                  e.get("type") != "forge-probe" for e in events()))
    events = events()
    probe = [e for e in events if e.get("type") == "forge-probe"]
    real = [e for e in events if e.get("event") == "session_start" and e.get("pid") == pid and
            e.get("type") != "forge-probe"]
    assert len(probe) == 1 and real, events[-5:]
    assert "user" not in probe[0], probe[0]
    assert probe[0]["source"] == real[0]["source"] and "203.0.113.9" not in probe[0]["source"]


def claim_and_record(s, channel):
    """MON_CLAIM then MON_RECORD for channel, as a taken-over session
    process would send them: the record reply's code, and its fd closed."""
    s.send(struct.pack("Ii", MON_CLAIM, channel))
    code = struct.unpack("ii", s.recv(64)[:8])[0]
    assert code == 0, code
    s.send(struct.pack("Ii", MON_RECORD, channel))
    msg, anc, _, _ = s.recvmsg(64, socket.CMSG_SPACE(4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            os.close(struct.unpack("i", data[:4])[0])
    s.send(struct.pack("Ii", MON_RELEASE, channel))
    return struct.unpack("ii", msg[:8])[0]


MON_RECORD, MON_OK, MON_FAILED, MON_FULL = 3, 0, 1, 2


def test_monitor_creates_no_recording_a_tenant_policy_forbids(held):
    """record = none (alice's default): a session process that asks for a
    recording anyway gets none, and no file is created."""
    w, (pid, monitor, master) = held
    s = monitor_socket(pid, monitor)
    assert claim_and_record(s, 9001) == MON_FAILED
    s.close()
    recdir = os.path.join(w.state, "recordings", "alice")
    assert not os.path.isdir(recdir) or os.listdir(recdir) == []
    assert wait_until(lambda: "recording refused: record = none" in w.log_text())


def test_monitor_caps_recordings_per_connection_and_in_total(make_warren):
    """record = all, record_max_files = 5: cycling claim/record/release
    makes at most 5 files (the session's own included), then each request is
    refused (MON_FULL) and the monitor goes on serving."""
    w = audited(make_warren, tenants=("alice",),
                sandbox_extra="record = all\nrecord_max_files = 5")
    with w.start():
        uid = w.uid("alice")
        # w.uid's own connection first ends (its recording counts, its process goes)
        assert wait_until(lambda: session_process(uid, w.proc.pid) is None, timeout=20)
        p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 60"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            found = []
            # one session process (w.uid's own connection may still be ending)
            assert wait_until(lambda: found.append(session_process(uid, w.proc.pid)) or
                              found[-1], timeout=20)
            pid, monitor, _ = found[-1]
            s = monitor_socket(pid, monitor)
            codes = [claim_and_record(s, 7000 + i) for i in range(12)]
            s.close()
            # the session's own recording counts too: four more at most
            assert codes.count(MON_OK) <= 4 and codes[-1] == MON_FULL, codes
            recdir = os.path.join(w.state, "recordings", "alice")
            assert len(os.listdir(recdir)) <= 5, os.listdir(recdir)
            # every claim after the cap was still answered: the monitor serves on
        finally:
            p.kill()
            p.wait()


def memory_holds(pid, needle):
    """needle in any readable mapping of pid's memory (read as root)"""
    with open(f"/proc/{pid}/maps") as f:
        regions = [line.split() for line in f]
    chunk = 16 << 20
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for r in regions:
            start, end = (int(x, 16) for x in r[0].split("-"))
            # not the kernel's pages, nor a sanitizer's reserved shadow
            if ("r" not in r[1] or (len(r) > 5 and r[5] in ("[vvar]", "[vsyscall]")) or
                    end - start > 1 << 32):
                continue
            for at in range(start, end, chunk):
                try:
                    mem.seek(at)
                    data = mem.read(min(chunk + len(needle), end - at))
                except (OSError, ValueError, OverflowError):
                    break
                if needle in data:
                    return True
    return False


def test_no_process_inherits_another_tenants_command(make_warren):
    """A marker in tenant alice's command reaches the master (warrend
    --status lists commands); tenant bob's connection processes, forks of
    the master, hold none of it: not his session process (which was his
    pre-auth process), not his monitor."""
    w = make_warren(tenants=("alice", "bob"))
    w.start()
    marker = "WARREN-MARKER-" + os.urandom(8).hex()
    uid_a, uid_b = w.uid("alice"), w.uid("bob")
    # their own connections (w.uid's) first end
    assert wait_until(lambda: session_process(uid_a, w.proc.pid) is None and
                      session_process(uid_b, w.proc.pid) is None, timeout=20)
    a = subprocess.Popen(w.ssh_argv("alice") + [f"sleep 60 # {marker}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    b = None
    try:
        assert wait_until(lambda: session_process(uid_a, w.proc.pid), timeout=20)
        assert wait_until(lambda: memory_holds(w.proc.pid, marker.encode()), timeout=10), \
            "the master never saw the command: the test proves nothing"
        # as an operator would: the listing carries the command too
        st = subprocess.run([WARREND, "-f", w.conf, "--status"], capture_output=True, text=True)
        assert marker in st.stdout, st.stdout
        b = subprocess.Popen(w.ssh_argv("bob") + ["sleep 60"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = []
        assert wait_until(lambda: found.append(session_process(uid_b, w.proc.pid)) or
                          found[-1], timeout=20)
        pid, monitor, _ = found[-1]
        for p in (pid, monitor):
            assert not memory_holds(p, marker.encode()), f"marker in pid {p}"
    finally:
        for p in (a, b):
            if p:
                p.kill()
                p.wait()


def test_no_tenant_process_holds_the_log(make_warren):
    """The tenant's processes (session process, env process, sandbox) hold
    no descriptor to warrend's log or audit file: their stderr is a pipe
    their root monitor relays, escaped, line by line."""
    w = audited(make_warren, tenants=("alice",))
    w.start()
    uid = w.uid("alice")
    p = subprocess.Popen(w.ssh_argv("alice") + ["sleep 60"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: session_process(uid, w.proc.pid), timeout=20)
        # what the session process logs still reaches the log, through its monitor
        assert wait_until(lambda: "session start: tenant=alice" in w.log_text())
        files = {os.path.realpath(w.log.name), os.path.realpath(w.audit_path)}
        mine = [q[0] for q in procs() if q[2] == uid]
        assert any(q[4] == "warrend" for q in procs() if q[2] == uid), mine
        held = []
        for pid in mine:
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    if os.path.realpath(f"/proc/{pid}/fd/{fd}") in files:
                        held.append((pid, fd))
            except OSError:
                continue
        assert held == [], held
    finally:
        p.kill()
        p.wait()
