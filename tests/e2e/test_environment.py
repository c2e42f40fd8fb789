"""test_environment.py - a tenant's environment outlives one channel: all of
its channels and connections share one running sandbox (processes, /tmp,
loopback), which ends `linger` after the last connection; forwarded streams
(ssh -L, -D, -W) reach the sandbox's loopback. Driven with the real OpenSSH
client, curl and tmux."""
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import WARREND, free_port, procs, wait_until

# a small server inside the sandbox: prints its port, serves /blob (4 MiB)
# and /hello; started over ssh, found again from another connection
SERVER = r'''
import http.server, os, sys
blob = bytes(range(256)) * (4 * 4096)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = blob if self.path == "/blob" else b"hello from the sandbox\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print(s.server_address[1], flush=True)
s.serve_forever()
'''
BLOB_SHA = hashlib.sha256(bytes(range(256)) * (4 * 4096)).hexdigest()


def tenant_procs(uid):
    return [p for p in procs() if p[2] == uid]


def start_server(w, user="alice", port=0):
    """An exec channel starts the server in the background (nohup) and
    prints its port, as VS Code's remote server does; returns the port."""
    r = w.ssh(user, "cat > /tmp/srv.py && "
              f"(nohup /usr/bin/python3 /tmp/srv.py {port} > /tmp/srv.port 2>/tmp/srv.err &) ; "
              "for i in $(seq 100); do [ -s /tmp/srv.port ] && break; sleep 0.1; done; "
              "cat /tmp/srv.port /tmp/srv.err", input=SERVER)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[0])


@pytest.fixture
def env_warren(make_warren):
    w = make_warren(tenants=("alice", "bob"))
    with w.start():
        yield w


def test_processes_and_tmp_are_shared_across_connections(env_warren):
    w = env_warren
    r = w.ssh("alice", "echo $$ > /tmp/first; (nohup sleep 321 >/dev/null 2>&1 &); echo ok")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    # another connection: the same /tmp, the same PID namespace
    r = w.ssh("alice", "cat /tmp/first; pgrep -x sleep; ps -o pid=,args= -p 1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].strip().isdigit() and lines[1].strip().isdigit(), r.stdout
    assert "init" in r.stdout and "--env" in r.stdout
    uid = w.uid("alice")
    assert [p for p in tenant_procs(uid) if p[4] == "sleep"]
    # bob's environment is his own: none of alice's processes or files
    r = w.ssh("bob", "cat /tmp/first; pgrep -x sleep; echo rc=$?")
    assert "No such file" in r.stderr and "rc=1" in r.stdout, (r.stdout, r.stderr)


def test_nohup_job_survives_logout(env_warren):
    w = env_warren
    r = w.ssh("alice", "(nohup sh -c 'sleep 1; echo finished > /tmp/job.out' >/dev/null 2>&1 &)")
    assert r.returncode == 0, r.stderr
    # the connection is gone; the job finishes in the environment
    assert wait_until(lambda: w.ssh("alice", "cat /tmp/job.out").stdout == "finished\n",
                      timeout=15)


def test_tmux_detach_and_reattach_across_logins(env_warren):
    w = env_warren
    r = w.ssh("alice", "tmux new-session -d -s work 'echo tmux-says-hi; read x; echo got-$x; "
              "sleep 600'")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: "tmux-says-hi" in
                      w.ssh("alice", "tmux capture-pane -p -t work").stdout)
    r = w.ssh("alice", "tmux send-keys -t work again Enter")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: "got-again" in
                      w.ssh("alice", "tmux capture-pane -p -t work").stdout)
    # a terminal attaches to it (ssh -t, tmux attach), and detaches again
    import pexpect
    # pexpect is the terminal here, whatever TERM the test runs under (dumb
    # in fresh-check): tmux needs one that can clear
    child = pexpect.spawn(" ".join(w.ssh_argv("alice", extra=("-tt",))) + " tmux attach -t work",
                          timeout=20, dimensions=(30, 100), env=dict(os.environ, TERM="xterm"))
    child.expect("got-again")
    child.sendcontrol("b")
    child.send("d")
    child.expect(pexpect.EOF)
    assert "work" in w.ssh("alice", "tmux ls").stdout


def fetch_through(port, path, timeout=30):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read()


def wait_listening(port):
    def ok():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    assert wait_until(ok)


def test_local_forward_to_a_server_started_from_another_connection(env_warren):
    w = env_warren
    port = start_server(w)
    local = free_port()
    fwd = subprocess.Popen(w.ssh_argv("alice", extra=("-N", "-L", f"{local}:127.0.0.1:{port}",
                                                      "-o", "ExitOnForwardFailure=yes")),
                           stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(local)
        assert fetch_through(local, "/hello") == b"hello from the sandbox\n"
        # MiB bodies, four at once
        results = []

        def one():
            results.append(hashlib.sha256(fetch_through(local, "/blob")).hexdigest())
        ts = [threading.Thread(target=one) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert results == [BLOB_SHA] * 4
    finally:
        fwd.kill()
        fwd.wait()
    # the killed client took nothing else down: the server still answers
    r = w.ssh("alice", f"curl -s http://127.0.0.1:{port}/hello")
    assert r.stdout == "hello from the sandbox\n", r.stderr


def test_vscode_style_exec_then_direct_tcpip(env_warren):
    """One connection's exec starts a server and prints its port; a second
    connection opens a direct-tcpip channel to it (ssh -W)."""
    w = env_warren
    port = start_server(w)
    req = b"GET /blob HTTP/1.0\r\nHost: x\r\n\r\n"
    r = subprocess.run(w.ssh_argv("alice", extra=("-W", f"127.0.0.1:{port}")), input=req,
                       capture_output=True, timeout=60)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), (head[:200], r.stderr)
    assert hashlib.sha256(body).hexdigest() == BLOB_SHA


def test_dynamic_forward_with_curl_socks5h(env_warren):
    w = env_warren
    port = start_server(w)
    local = free_port()
    fwd = subprocess.Popen(w.ssh_argv("alice", extra=("-N", "-D", f"127.0.0.1:{local}")),
                           stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(local)
        r = subprocess.run(["curl", "-sS", "--max-time", "30", "-x",
                            f"socks5h://127.0.0.1:{local}", f"http://localhost:{port}/blob"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(r.stdout).hexdigest() == BLOB_SHA
    finally:
        fwd.kill()
        fwd.wait()


def audited(make_warren, **kw):
    """A warren whose audit log is at w.audit_path."""
    w = make_warren(server_extra="audit_log = @AUDIT@", **kw)
    w.audit_path = os.path.join(w.base, "audit.jsonl")
    with open(w.conf) as f:
        conf = f.read().replace("@AUDIT@", w.audit_path)
    with open(w.conf, "w") as f:
        f.write(conf)
    return w


def test_forward_refusals_are_explained_and_audited(make_warren):
    w = audited(make_warren, tenants=("alice", "bob"),
                tenant_extra={"bob": "[sandbox]\nallow_tcp_forwarding = no\n"})
    audit = w.audit_path
    with w.start():
        port = start_server(w, "bob")
        # nothing listens there: refused, with the reason for ssh -v
        closed = free_port()
        r = subprocess.run(w.ssh_argv("alice", extra=("-v", "-W", f"127.0.0.1:{closed}")),
                           input=b"", capture_output=True, timeout=30)
        assert r.returncode != 0
        assert b"Connection refused" in r.stderr and b"warren: direct-tcpip" in r.stderr
        # network = none: nothing beyond the sandbox
        r = subprocess.run(w.ssh_argv("alice", extra=("-v", "-W", "192.0.2.1:80")),
                           input=b"", capture_output=True, timeout=30)
        assert r.returncode != 0 and b"network = none" in r.stderr
        # allow_tcp_forwarding = no
        r = subprocess.run(w.ssh_argv("bob", extra=("-v", "-W", f"127.0.0.1:{port}")),
                           input=b"", capture_output=True, timeout=30)
        assert r.returncode != 0 and b"allow_tcp_forwarding" in r.stderr
        # alice's loopback is not bob's: his server is not reachable from hers
        r = subprocess.run(w.ssh_argv("alice", extra=("-W", f"127.0.0.1:{port}")),
                           input=b"GET /hello HTTP/1.0\r\n\r\n", capture_output=True, timeout=30)
        assert b"hello from the sandbox" not in r.stdout
        assert wait_until(lambda: os.path.exists(audit) and
                          sum('"forward_refused"' in line for line in open(audit)) >= 4)
        events = [json.loads(line) for line in open(audit) if '"forward_refused"' in line]
        assert {e["tenant"] for e in events} == {"alice", "bob"}
        assert any("allow_tcp_forwarding" in e["reason"] for e in events)


def test_linger_expiry_ends_everything(make_warren):
    w = make_warren(tenants=("alice",), sandbox_extra="linger = 2")
    with w.start():
        uid = w.uid("alice")
        r = w.ssh("alice", "(nohup sleep 600 >/dev/null 2>&1 &); echo started")
        assert r.returncode == 0, r.stderr
        # (nohup execs sleep a moment after the channel closed)
        assert wait_until(lambda: [p for p in tenant_procs(uid) if p[4] == "sleep"])
        # after the last connection, linger (2 s): nothing of the tenant's is left
        assert wait_until(lambda: not tenant_procs(uid), timeout=20), tenant_procs(uid)
        # (its root monitor logs the end after the last process is gone)
        assert wait_until(lambda: "environment for alice ended" in w.log_text(), timeout=10)
        assert not os.path.exists(os.path.join(w.state, "envs", "alice.sock"))
        # the next login starts a fresh environment
        r = w.ssh("alice", "pgrep -x sleep; echo rc=$?")
        assert "rc=1" in r.stdout


def test_a_held_connection_keeps_the_environment(make_warren):
    w = make_warren(tenants=("alice",), sandbox_extra="linger = 0")
    with w.start():
        held = subprocess.Popen(w.ssh_argv("alice") + ["sleep 30"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            uid = w.uid("alice")
            r = w.ssh("alice", "(nohup sleep 555 >/dev/null 2>&1 &); echo ok")
            assert r.returncode == 0
            time.sleep(0.5)  # linger 0 would have ended it by now, were nobody holding it
            assert [p for p in tenant_procs(uid) if p[4] == "sleep"]
        finally:
            held.kill()
            held.wait()
        assert wait_until(lambda: not tenant_procs(uid), timeout=20)


def test_status_lists_the_environment_and_kill_ends_it(env_warren):
    w = env_warren
    uid = w.uid("alice")
    w.ssh("alice", "(nohup sleep 444 >/dev/null 2>&1 &)")
    r = subprocess.run([WARREND, "-f", w.conf, "--status"], capture_output=True, text=True)
    rows = [line.split(None, 5) for line in r.stdout.splitlines()[1:]]
    envs = [row for row in rows if row[1] == "alice" and "(environment)" in row[5]]
    assert len(envs) == 1, r.stdout
    r = subprocess.run([WARREND, "-f", w.conf, "--kill", envs[0][0]], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: not tenant_procs(uid), timeout=20)


def test_channel_scope_keeps_one_sandbox_per_channel(make_warren):
    w = make_warren(tenants=("alice",), sandbox_extra="sandbox_scope = channel")
    with w.start():
        w.ssh("alice", "echo x > /tmp/mine; (nohup sleep 333 >/dev/null 2>&1 &)")
        r = w.ssh("alice", "cat /tmp/mine; pgrep -x sleep; echo rc=$?")
        assert "No such file" in r.stderr and "rc=1" in r.stdout
        # no environment to forward into
        r = subprocess.run(w.ssh_argv("alice", extra=("-v", "-W", "127.0.0.1:80")),
                           input=b"", capture_output=True, timeout=30)
        assert r.returncode != 0 and b"sandbox_scope = channel" in r.stderr
        # no environment to keep a detached terminal in
        r = w.ssh("alice", "warren-attach -l")
        assert r.returncode == 1 and "sandbox_scope = tenant" in r.stderr, r.stderr


def test_remote_forward_reaches_the_client(env_warren, tmp_path):
    """ssh -R: a listener on the sandbox's loopback; what connects there
    reaches a server on the client's side, from this connection and others."""
    from conftest import QuietHandler, serve_http
    big = os.urandom(2 << 20)

    class H(QuietHandler):
        def do_GET(self):
            self.reply(big if self.path == "/big" else b"hello from the client\n")
    srv = serve_http(H)
    w = env_warren
    cport = srv.server_address[1]
    try:
        r = subprocess.run(w.ssh_argv("alice", extra=("-o", "ExitOnForwardFailure=yes", "-R",
                                                      f"18080:127.0.0.1:{cport}")) +
                           ["curl -s http://127.0.0.1:18080/hello && "
                            "curl -s http://127.0.0.1:18080/big | sha256sum"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("hello from the client\n")
        assert hashlib.sha256(big).hexdigest() in r.stdout
        # port 0: the server picks; another connection uses the forward
        fwd = subprocess.Popen(w.ssh_argv("alice", extra=("-N", "-o", "LogLevel=INFO", "-R",
                                                          f"0:127.0.0.1:{cport}")),
                               stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            line = ""
            for _ in range(5):  # ssh's own warnings may come first
                line = fwd.stderr.readline()
                if "Allocated port" in line:
                    break
            assert "Allocated port" in line, line
            port = int(line.split("Allocated port")[1].split()[0])
            r = w.ssh("alice", f"curl -s http://127.0.0.1:{port}/hello")
            assert r.stdout == "hello from the client\n", r.stderr
        finally:
            fwd.kill()
            fwd.wait()
    finally:
        srv.shutdown()


def test_agent_forwarding(make_warren, tmp_path):
    w = make_warren(tenants=("alice", "bob"),
                    tenant_extra={"bob": "[sandbox]\nallow_agent_forwarding = no\n"})
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: os.path.exists(sock))
        env = dict(os.environ, SSH_AUTH_SOCK=sock)
        subprocess.run(["ssh-add", "-q", w.keys["bob"]], env=env, check=True)
        fp = subprocess.run(["ssh-add", "-l"], env=env, capture_output=True,
                            text=True).stdout.split()[1]
        with w.start():
            argv = w.ssh_argv("alice", extra=("-A",)) + ['echo "$SSH_AUTH_SOCK"; ssh-add -l']
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith("/tmp/ssh-warren/agent.sock\n") and fp in r.stdout
            # tmux started earlier keeps the same path: it reaches the latest agent
            r = w.ssh("alice", "SSH_AUTH_SOCK=/tmp/ssh-warren/agent.sock ssh-add -l; echo rc=$?")
            assert "rc=2" in r.stdout or "rc=1" in r.stdout  # nobody forwards now
            # without -A there is no agent; bob may not forward one
            r = w.ssh("alice", "echo \"[$SSH_AUTH_SOCK]\"")
            assert r.stdout == "[]\n"
            argv = w.ssh_argv("bob", extra=("-A",)) + ['echo "[$SSH_AUTH_SOCK]"; ssh-add -l']
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            assert r.stdout.startswith("[]") and fp not in r.stdout
            assert "agent forwarding refused: allow_agent_forwarding" in w.log_text()
    finally:
        agent.kill()
        agent.wait()


def terminal(w, command="", dims=(30, 100)):
    import pexpect
    return pexpect.spawn(" ".join(w.ssh_argv("alice", extra=("-tt",))) + " " + command,
                         timeout=20, dimensions=dims)


def detached_ids(w):
    r = w.ssh("alice", "warren-attach -l")
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines()]


def test_pty_session_reattaches_after_the_client_is_killed(make_warren):
    w = audited(make_warren, tenants=("alice",))
    with w.start():
        pty_session_reattaches(w)


def pty_session_reattaches(w):
    import pexpect
    t = terminal(w)
    t.sendline("export MARK=kept-state; echo id=$WARREN_SESSION pid=$$")
    t.expect(r"id=(\d+) pid=(\d+)")
    sid, pid = t.match.group(1).decode(), t.match.group(2).decode()
    assert sid == pid  # the id is the shell's pid in the environment
    t.sendline("(sleep 1; echo printed-while-away; touch /tmp/printed) & echo job-''started")
    t.expect("job-started")
    t.kill(9)  # the client dies; the shell lives on, detached
    t.close()
    assert wait_until(lambda: sid in detached_ids(w), timeout=15)
    assert wait_until(lambda: w.ssh("alice", "test -e /tmp/printed").returncode == 0)
    # a login shell tells the tenant what is waiting
    n = terminal(w)
    n.expect("1 detached session")
    n.expect(sid + r" \d+ bash")
    n.sendline("exit")
    n.expect(pexpect.EOF)
    # reattach: the screen from before the drop, what was printed meanwhile,
    # and the same shell with its state
    a = terminal(w, "warren-attach " + sid)
    a.expect(f"id={sid} pid={pid}")
    a.expect("printed-while-away")
    a.sendline("echo $MARK-$$")
    a.expect(f"kept-state-{pid}")
    assert sid not in detached_ids(w)  # attached: no longer listed
    a.sendline("exit 7")
    a.expect(pexpect.EOF)
    a.close()
    assert a.exitstatus == 7
    assert detached_ids(w) == []
    audit = [json.loads(line) for line in open(w.audit_path)]
    assert any(e["event"] == "session_detach" and str(e["session"]) == sid for e in audit)
    assert any(e["event"] == "session_start" and e.get("type") == "attach" for e in audit)


def test_reattach_redraws_full_screen_programs_and_refuses_clearly(env_warren):
    import pexpect
    w = env_warren
    # a full-screen program's stand-in: it redraws on SIGWINCH
    prog = ("n=0; trap 'n=$((n+1)); echo redraw$n $(stty size)' WINCH; echo ready; "
            "while :; do sleep 0.1; done")
    assert w.ssh("alice", "cat > /tmp/redraw.sh", input=prog).returncode == 0
    t = terminal(w, "bash /tmp/redraw.sh")
    t.expect("ready")
    t.kill(9)
    t.close()
    assert wait_until(lambda: len(detached_ids(w)) == 1, timeout=15)
    a = terminal(w, "warren-attach", dims=(40, 120))  # the latest, at a new size
    a.expect("redraw1 40 120")
    a.kill(9)
    a.close()
    assert wait_until(lambda: len(detached_ids(w)) == 1, timeout=15)
    a = terminal(w, "warren-attach", dims=(40, 120))  # the same size: redrawn all the same
    a.expect("redraw2 40 120")
    # a second terminal cannot take it while it is attached
    r = subprocess.run(w.ssh_argv("alice", extra=("-tt",)) + ["warren-attach"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert r.returncode == 1 and b"no detached session" in r.stdout + r.stderr
    r = subprocess.run(w.ssh_argv("alice", extra=("-tt",)) + ["warren-attach 4194000"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert b"no detached session 4194000" in r.stdout + r.stderr
    r = w.ssh("alice", "warren-attach")
    assert r.returncode == 1 and "needs a terminal" in r.stderr
    r = w.ssh("alice", "warren-attach x1")
    assert r.returncode == 1 and "usage: warren-attach" in r.stderr
    a.sendcontrol("c")
    a.expect(pexpect.EOF)
    assert detached_ids(w) == []


def test_detached_sessions_end_with_linger(make_warren):
    w = make_warren(tenants=("alice",), sandbox_extra="linger = 2")
    with w.start():
        uid = w.uid("alice")
        t = terminal(w)
        t.sendline("echo id=$WARREN_SESSION")
        t.expect(r"id=\d+")
        t.kill(9)
        t.close()
        # detached, then gone with the environment: nothing of the tenant's is left
        assert wait_until(lambda: not tenant_procs(uid), timeout=20), tenant_procs(uid)
        assert "detached" in w.log_text()


def test_every_login_after_a_configuration_change_gets_an_environment(make_warren):
    # each change retires the running environment (it has no connection: it
    # ends at once) while the login binds its successor's socket at the same
    # path; on ext4 the new socket can get the old one's inode number, and
    # the old environment, ending, must not take the new socket with it
    w = make_warren(tenants=("alice",)).start()
    conf = os.path.join(w.tenants_dir, "alice.conf")
    with open(conf) as f:
        base = f.read()
    for i in range(20):
        with open(conf, "w") as f:
            f.write(base + f"[sandbox]\nproxy_idle_timeout = {100 + i}\n")
        r = w.ssh("alice", "echo round")
        assert (r.returncode, r.stdout) == (0, "round\n"), (i, r.stderr)
        assert "configuration changed" in w.log_text() or i == 0
