"""test_spine.py - warrend end to end with the real OpenSSH client: exec, PTY,
workspaces, isolation, identity inside the sandbox, refusals, robustness."""
import hashlib
import os
import re
import signal
import socket
import stat
import subprocess
import time

import pexpect
import pytest

from conftest import WARREND, procs, wait_until


def test_exec_exit_codes(warren):
    for code in (0, 1, 3, 42, 255):
        r = warren.ssh("alice", f"exit {code}")
        assert r.returncode == code, r.stderr


def test_stdout_stderr_separate(warren):
    r = warren.ssh("alice", "echo to-out; echo to-err >&2; echo more-out")
    assert r.returncode == 0
    assert r.stdout == "to-out\nmore-out\n"
    assert r.stderr == "to-err\n"


def test_stdin_to_command(warren):
    r = warren.ssh("alice", "cat", input="hello\n")
    assert r.stdout == "hello\n"
    r = warren.ssh("alice", "wc -l", input="a\nb\nc\n")
    assert r.stdout.strip() == "3"


def test_binary_roundtrip_50mb(warren, tmp_path):
    data = os.urandom(50 * 1024 * 1024)
    want = hashlib.sha256(data).hexdigest()
    r = warren.ssh("alice", "cat > blob && sha256sum blob", input=data, text=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == want
    r = warren.ssh("alice", "cat blob", text=False)
    assert r.returncode == 0
    assert len(r.stdout) == len(data)
    assert hashlib.sha256(r.stdout).hexdigest() == want


def test_output_not_lost_when_child_exits(warren):
    # the child exits right after writing; everything still in the pipe arrives
    r = warren.ssh("alice", "head -c 3000000 /dev/zero | tr '\\0' x; exit 7", text=False)
    assert r.returncode == 7
    assert r.stdout == b"x" * 3000000


def test_exit_signal_reaches_client(warren):
    r = warren.ssh("alice", "kill -TERM $$", extra=("-o", "LogLevel=DEBUG1"))
    assert r.returncode == 255
    assert "rtype exit-signal" in r.stderr
    r = warren.ssh("alice", "kill -KILL $$", extra=("-o", "LogLevel=DEBUG1"))
    assert "rtype exit-signal" in r.stderr


def test_missing_command_is_127_with_message(warren):
    r = warren.ssh("alice", "no-such-command-here")
    assert r.returncode == 127
    assert "no-such-command-here" in r.stderr and "not found" in r.stderr


def test_env_allowlist(warren):
    env = dict(os.environ, LANG="C.UTF-8", LD_PRELOAD="", WARREN_SECRET="x")
    argv = warren.ssh_argv("alice", extra=("-o", "SendEnv=LANG WARREN_SECRET",
                                           "-o", "SetEnv=LC_TIME=C PATH=/evil"))
    argv.append("echo LANG=$LANG; echo LC_TIME=$LC_TIME; echo SECRET=$WARREN_SECRET;"
                " echo PATH=$PATH; echo HOME=$HOME USER=$USER")
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "LANG=C.UTF-8\n" in r.stdout
    assert "LC_TIME=C\n" in r.stdout
    assert "SECRET=\n" in r.stdout
    assert "/evil" not in r.stdout
    assert "HOME=/home/alice USER=alice" in r.stdout


def test_pty_session(warren):
    argv = warren.ssh_argv("alice", extra=("-tt",))
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(33, 101), encoding="utf-8", timeout=15,
                          env=dict(os.environ, TERM="xterm-256color"))
    try:
        child.expect(r"alice@alice:~\$ ")
        child.sendline("tty; echo TERM=$TERM")
        child.expect(r"(/dev/pts/\d+)\r\n")
        child.expect(r"TERM=(\S+)\r\n")
        assert child.match.group(1) == "xterm-256color"
        child.expect(r"\$ ")
        child.sendline("stty size")
        child.expect(r"33 101\r\n")
        child.expect(r"\$ ")
        child.setwinsize(40, 120)
        # window-change travels on its own: ask until the shell sees it
        deadline = time.time() + 10
        while True:
            child.sendline("stty size")
            i = child.expect([r"40 120\r\n", r"33 101\r\n"])
            child.expect(r"\$ ")
            if i == 0:
                break
            assert time.time() < deadline, "window-change never arrived"
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5


def test_pty_exec_and_controlling_terminal(warren):
    r = warren.ssh("alice", "tty; test -t 0 && echo stdin-is-tty", extra=("-tt",))
    assert re.search(r"^/dev/pts/\d+\r?$", r.stdout, re.M), r.stdout
    assert "stdin-is-tty" in r.stdout


def test_workspace_persists(warren):
    token = os.urandom(8).hex()
    assert warren.ssh("alice", f"echo {token} > persist.txt && mkdir -p d/e").returncode == 0
    r = warren.ssh("alice", "cat persist.txt; pwd; echo $HOME")
    assert r.stdout == f"{token}\n/home/alice\n/home/alice\n"
    ws = os.path.join(warren.state, "workspaces", "alice")
    st = os.stat(ws)
    assert st.st_uid == warren.uid("alice")
    assert stat.S_IMODE(st.st_mode) == 0o700
    with open(os.path.join(ws, "persist.txt")) as f:
        assert f.read() == token + "\n"


def test_concurrent_sessions_share_workspace(warren):
    # the first session waits (bounded) for the second one's write
    warren.ssh("alice", "rm -f shared.txt")
    argv = warren.ssh_argv("alice") + ["echo ready; for i in $(seq 400); do "
                                       "[ -s shared.txt ] && break; sleep 0.05; done; "
                                       "cat shared.txt"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert p.stdout.readline() == "ready\n"
    assert warren.ssh("alice", "echo both > shared.txt").returncode == 0
    out, _ = p.communicate(timeout=30)
    assert out == "both\n"


def test_tenants_isolated(warren):
    assert warren.ssh("bob", "echo bob-secret > secret.txt").returncode == 0
    r = warren.ssh("alice", "ls -a /home; cat /home/bob/secret.txt")
    assert r.returncode != 0
    assert r.stdout.split() == [".", "..", "alice"]
    # the host path of bob's workspace is not reachable either
    bob_ws = os.path.join(warren.state, "workspaces", "bob")
    r = warren.ssh("alice", f"cat {bob_ws}/secret.txt; ls {warren.state}")
    assert "bob-secret" not in r.stdout
    assert r.returncode != 0
    assert warren.uid("alice") != warren.uid("bob")


def test_identity_inside_sandbox(warren):
    r = warren.ssh("alice", "id -u; id -g; whoami; hostname; ls -d /root 2>&1;"
                   " cat /etc/shadow 2>&1; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status")
    lines = r.stdout.splitlines()
    uid = warren.uid("alice")
    assert lines[0] == str(uid)
    assert lines[1] == str(uid)
    assert lines[2] == "alice"
    assert lines[3] == "alice"
    assert "No such file" in lines[4]
    assert "No such file" in lines[5]
    status = dict(re.findall(r"^(\w+):\s+(\S+)$", r.stdout, re.M))
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapPrm"], 16) == 0
    assert int(status["CapBnd"], 16) == 0


def test_host_processes_invisible(warren):
    r = warren.ssh("alice", "ps -eo pid,comm --no-headers")
    rows = [line.split() for line in r.stdout.splitlines()]
    comms = {c for _, c in rows}
    assert "warrend" not in comms and "sshd" not in comms
    assert rows[0][0] == "1"
    assert len(rows) <= 4  # init, the shell, ps


def test_system_readonly(warren):
    r = warren.ssh("alice", "touch /usr/x 2>&1; touch /etc/x 2>&1; echo ok > /tmp/t && cat /tmp/t")
    assert r.stdout.count("Read-only file system") == 2
    assert r.stdout.endswith("ok\n")


def test_session_process_dropped_privileges(warren):
    """The per-connection process that handles channels runs as the tenant,
    with no capabilities, no supplementary groups and no_new_privs."""
    argv = warren.ssh_argv("alice") + ["sleep 20"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        uid = warren.uid("alice")
        st = {}

        def look():  # the newest of alice's warrend processes that is still there
            for pid in sorted((pid for pid, _, u, _, comm in procs()
                               if u == uid and comm == "warrend"), reverse=True):
                try:
                    with open(f"/proc/{pid}/status") as f:
                        st.update(line.rstrip("\n").split(":\t", 1) for line in f
                                  if ":\t" in line)
                    return True
                except OSError:
                    continue
            return False

        assert wait_until(look)
        assert st["Uid"].split() == [str(uid)] * 4
        assert st["Gid"].split() == [str(uid)] * 4
        assert st["Groups"].strip() == ""
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(st[cap], 16) == 0, cap
        assert st["NoNewPrivs"].strip() == "1"
    finally:
        p.kill()
        p.wait()


def test_idle_session_sleeps(warren):
    """After a burst of output, an idle session's processes sleep in poll: the
    loops poll without a timeout only while work keeps coming (evfd_dopoll),
    so none of them spins. The one-second window is a measurement, not a
    wait: a spinning loop would use about 100 ticks in it."""
    argv = warren.ssh_argv("alice") + ["head -c 20000000 /dev/zero; echo; echo ready; exec sleep 30"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        seen = b""
        while not seen.endswith(b"ready\n"):
            b = p.stdout.read1(1 << 20)
            assert b, "the command ended early"
            seen = seen[-16:] + b
        uid = warren.uid("alice")

        def ticks():  # CPU of all the tenant's processes: session, environment, sandbox
            total = 0
            for pid, _, u, _, _ in procs():
                if u == uid:
                    try:
                        with open(f"/proc/{pid}/stat") as f:
                            fields = f.read().rsplit(")", 1)[1].split()
                        total += int(fields[11]) + int(fields[12])
                    except (OSError, IndexError):
                        pass
            return total

        before = ticks()
        time.sleep(1.0)
        used = ticks() - before
        assert used <= 5, f"the tenant's idle processes used {used} ticks in one second"
    finally:
        p.kill()
        p.wait()


def test_wrong_key_refused(warren):
    r = warren.ssh("alice", "true", key=warren.stranger_key)
    assert r.returncode == 255
    assert "Permission denied" in r.stderr


def test_unknown_tenant_refused(warren):
    r = warren.ssh("mallory", "true", key=warren.stranger_key)
    assert r.returncode == 255
    assert "Permission denied" in r.stderr
    r = warren.ssh("../../etc", "true", key=warren.stranger_key)
    assert r.returncode == 255


def test_other_tenants_key_refused(warren):
    r = warren.ssh("alice", "true", key=warren.keys["bob"])
    assert r.returncode == 255


def test_several_channels_one_connection(warren, tmp_path):
    ctl = str(tmp_path / "ctl")
    master = subprocess.Popen(warren.ssh_argv("alice", extra=(
        "-o", "ControlMaster=yes", "-o", f"ControlPath={ctl}", "-N")), stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: os.path.exists(ctl))
        mux = ("-o", "ControlMaster=no", "-o", f"ControlPath={ctl}")
        ps = [subprocess.Popen(warren.ssh_argv("alice", extra=mux) + [f"sleep 0.5; echo ch{i}"],
                               stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
              for i in range(4)]
        outs = [p.communicate(timeout=30)[0] for p in ps]
        assert outs == [f"ch{i}\n" for i in range(4)]
        assert all(p.returncode == 0 for p in ps)
    finally:
        master.terminate()
        master.wait()


def test_client_disconnect_mid_session_cleans_up(warren):
    uid = warren.uid("alice")
    p = subprocess.Popen(warren.ssh_argv("alice") + ["sleep 300"], stdin=subprocess.DEVNULL)
    assert wait_until(lambda: any(u == uid and c == "sleep" for _, _, u, _, c in procs()))
    p.send_signal(signal.SIGKILL)
    p.wait()
    # the command gets the hangup; the tenant's environment (one bwrap) lingers
    assert wait_until(lambda: not any(u == uid and c == "sleep"
                                      for _, _, u, _, c in procs()), timeout=15)
    assert sum(u == uid and c == "bwrap" for _, _, u, _, c in procs()) == 1
    assert warren.proc.poll() is None
    assert warren.ssh("alice", "echo alive").stdout == "alive\n"


def test_garbage_instead_of_ssh(warren):
    for payload in (b"GET / HTTP/1.0\r\n\r\n", os.urandom(4096), b"SSH-2.0-x\r\n" + os.urandom(2000)):
        s = socket.create_connection(("127.0.0.1", warren.port), timeout=5)
        try:
            s.sendall(payload)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            s.close()
    assert warren.proc.poll() is None
    assert warren.ssh("bob", "echo still-here").stdout == "still-here\n"


def test_no_zombies_or_leftovers_after_50_logins(warren):
    batch = 5
    for start in range(0, 50, batch):
        ps = [subprocess.Popen(warren.ssh_argv("bob") + ["true"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
              for _ in range(batch)]
        for p in ps:
            assert p.wait(timeout=60) == 0, p.stderr.read()
    master = warren.proc.pid

    def clean():
        ps_ = procs()
        kids = {pid for pid, ppid, *_ in ps_ if ppid == master}
        zombies = [x for x in ps_ if x[3] == "Z" and (x[1] == master or x[1] in kids)]
        bwraps = [x for x in ps_ if x[4] == "bwrap" and x[2] == warren.uid("bob")]
        # what stays: bob's environment, one env monitor with one sandbox
        envs = [x for x in ps_ if x[1] == master and x[4] == "warren-env"]
        return not zombies and len(bwraps) == 1 and kids == {x[0] for x in envs} and \
            len(envs) <= 2

    assert wait_until(clean, timeout=15)


def test_host_key_generated_0600(warren):
    st = os.stat(os.path.join(warren.base, "host_ed25519"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    r = warren.ssh("alice", "true", extra=("-o", "LogLevel=DEBUG1"))
    assert "kex: algorithm: curve25519-sha256" in r.stderr
    assert "host key algorithm: ssh-ed25519" in r.stderr


def test_weak_algorithms_refused(warren):
    # (a MAC is only negotiated with a non-AEAD cipher, hence the pairing)
    for opt in (("Ciphers=aes128-cbc",), ("Ciphers=aes128-ctr", "MACs=hmac-sha1"),
                ("Ciphers=aes128-ctr", "MACs=hmac-sha2-256"),
                ("KexAlgorithms=diffie-hellman-group14-sha1",), ("HostKeyAlgorithms=ssh-dss",)):
        extra = [x for o in opt for x in ("-o", o)] + ["-o", "LogLevel=INFO"]
        r = warren.ssh("alice", "true", extra=extra)
        assert r.returncode == 255, opt
        assert "no matching" in r.stderr.lower(), (opt, r.stderr)
    # the modern set works: AES-CTR with an ETM MAC, AES-GCM
    for extra in (("-o", "Ciphers=aes256-ctr", "-o", "MACs=hmac-sha2-512-etm@openssh.com"),
                  ("-o", "Ciphers=aes128-gcm@openssh.com")):
        assert warren.ssh("alice", "echo ok", extra=extra).stdout == "ok\n"


def test_config_check(tmp_path, warren):
    r = subprocess.run([WARREND, "-t", "-f", warren.conf], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nlisten = 127.0.0.1:1\nfrobnicate = yes\n")
    r = subprocess.run([WARREND, "-t", "-f", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stderr.startswith(f"{bad}:3: unknown key 'frobnicate'")
    # a broken tenant file is reported with its own file:line
    conf = tmp_path / "w.conf"
    tdir = tmp_path / "t"
    tdir.mkdir()
    (tdir / "carol.conf").write_text("[tenant]\nuid = 12\n\n[sandbox]\nnetwork = maybe\n")
    conf.write_text(f"[server]\nlisten = 127.0.0.1:1\nhost_key = /k\nstate_dir = {tmp_path}/s\n"
                    f"tenants_dir = {tdir}\n")
    r = subprocess.run([WARREND, "-t", "-f", str(conf)], capture_output=True, text=True)
    assert r.returncode != 0
    assert f"{tdir}/carol.conf:5: network: expected none, allowlist or host" in r.stderr


def test_flat_memory_1gib_both_ways(warren):
    """1 GiB through an exec channel in each direction; the session process's
    memory stays bounded (flow control, not buffering)."""
    from conftest import ASAN_DIR
    if ASAN_DIR:
        pytest.skip("ASan build: its shadow memory and quarantine make RSS meaningless here")
    uid = warren.uid("bob")
    peak = [0]

    def sample():
        for pid, _, u, _, comm in procs():
            if u == uid and comm == "warrend":
                try:
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmRSS:"):
                                peak[0] = max(peak[0], int(line.split()[1]))
                except OSError:
                    pass

    gib = 1024 * 1024 * 1024
    up = subprocess.Popen(warren.ssh_argv("bob") + ["wc -c"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE)
    chunk = b"\0" * (1 << 20)
    for i in range(gib // len(chunk)):
        up.stdin.write(chunk)
        if i % 64 == 0:
            sample()
    up.stdin.close()
    assert up.stdout.read().strip() == str(gib).encode()
    assert up.wait() == 0
    down = subprocess.Popen(warren.ssh_argv("bob") + [f"head -c {gib} /dev/zero"],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    total = 0
    n = 0
    while True:
        b = down.stdout.read(1 << 20)
        if not b:
            break
        total += len(b)
        n += 1
        if n % 64 == 0:
            sample()
    assert down.wait() == 0
    assert total == gib
    assert 0 < peak[0] < 48 * 1024, f"session process RSS peaked at {peak[0]} KiB"


def test_template_dir(make_warren):
    w = make_warren(tenants=("carol",), server_extra="template_dir = @TMPL@")
    tmpl = os.path.join(w.base, "template")  # readable by tenants, as the README asks
    os.makedirs(os.path.join(tmpl, "sub"))
    with open(os.path.join(tmpl, "README.md"), "w") as f:
        f.write("welcome\n")
    with open(os.path.join(tmpl, "sub", "f"), "w") as f:
        f.write("x\n")
    with open(w.conf) as f:
        conf = f.read().replace("@TMPL@", tmpl)
    with open(w.conf, "w") as f:
        f.write(conf)
    w.start()
    r = w.ssh("carol", "cat README.md sub/f; stat -c '%u %a' . README.md")
    assert r.returncode == 0, r.stderr
    uid = w.uid("carol")
    assert r.stdout == f"welcome\nx\n{uid} 700\n{uid} 644\n"


def test_max_startups(make_warren):
    w = make_warren(tenants=("alice",), server_extra="max_startups = 2")
    w.start()
    # start()'s readiness probe is itself a short-lived connection: let it end
    assert wait_until(lambda: "key exchange failed" in w.log_text())
    assert wait_until(lambda: not [p for p in procs() if p[1] == w.proc.pid])
    held = [socket.create_connection(("127.0.0.1", w.port)) for _ in range(2)]
    try:
        for s in held:
            s.settimeout(5)
            assert s.recv(100).startswith(b"SSH-2.0-")
        s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        s.settimeout(5)
        assert s.recv(100) == b""  # closed straight away, no banner
        s.close()
        assert "max_startups" in w.log_text()
    finally:
        for s in held:
            s.close()
    assert wait_until(lambda: w.ssh("alice", "echo in").stdout == "in\n", timeout=10)


def test_login_grace_time(make_warren):
    w = make_warren(tenants=("alice",), server_extra="login_grace_time = 1")
    w.start()
    s = socket.create_connection(("127.0.0.1", w.port), timeout=5)
    s.settimeout(5)
    banner = s.recv(100)
    assert banner.startswith(b"SSH-2.0-")
    t0 = time.time()
    rest = b""
    try:
        while True:
            b = s.recv(100)
            if not b:
                break
            rest += b
    except socket.timeout:
        pytest.fail("connection not closed after login_grace_time")
    assert time.time() - t0 < 4
    s.close()


def test_fhs_basics_in_the_sandbox(warren):
    # man finds its configuration, /var/run is the usual link to /run,
    # and what a tenant installs in ~/.local/bin is on PATH
    r = warren.ssh("alice", "mkdir -p ~/.local/bin && printf '#!/bin/sh\\necho mine\\n' > "
                            "~/.local/bin/my-tool && chmod +x ~/.local/bin/my-tool && my-tool; "
                            "readlink /var/run; test -d /var/run && echo var-run-ok; "
                            "MANPAGER=cat man ls 2>&1 | grep -m1 -o 'list directory contents'")
    assert r.stdout == "mine\n../run\nvar-run-ok\nlist directory contents\n", r.stdout + r.stderr
