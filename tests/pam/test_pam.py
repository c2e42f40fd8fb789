"""test_pam.py - PAM through pam_wrapper (no /etc edits): pam_matrix for
passwords, a test module for a second factor and expired accounts, pam_exec
to observe session open/close. Driven with the real OpenSSH client."""
import os
import re
import shutil
import subprocess
import time

import pexpect
import pytest

from conftest import BUILD, Warren, make_base, procs, wait_until

def multiarch_lib(rel):
    """A library under this machine's multiarch directory (x86_64-linux-gnu,
    aarch64-linux-gnu, ...), or None."""
    arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                          text=True).stdout.strip()
    path = f"/usr/lib/{arch}/{rel}"
    return path if arch and os.path.exists(path) else None


MATRIX = multiarch_lib("pam_wrapper/pam_matrix.so")
OTP = os.path.join(BUILD, "pam_otp_test.so")
PASSWORD = "correct horse"
CODE = "424242"


@pytest.fixture(scope="module")
def w():
    if MATRIX is None:
        pytest.skip("pam_wrapper's pam_matrix.so is not installed (libpam-wrapper)")
    from conftest import ASAN_DIR
    if ASAN_DIR:
        pytest.skip("ASan build: pam_wrapper dlopens libpam with RTLD_DEEPBIND, which the "
                    "sanitizer runtime refuses")
    base = make_base()
    svc = os.path.join(base, "pam.d")
    os.makedirs(svc)
    passdb = os.path.join(base, "passdb")
    sessions = os.path.join(base, "sessions.log")
    with open(passdb, "w") as f:
        for u in ("alice", "carol", "dave", "erin", "frank", "sysu"):
            f.write(f"{u}:{PASSWORD}:warren\n")
    hook = os.path.join(base, "session-hook.sh")
    with open(hook, "w") as f:
        f.write(f"#!/bin/sh\necho \"$PAM_TYPE $PAM_USER\" >> {sessions}\n")
    os.chmod(hook, 0o755)
    with open(os.path.join(svc, "warren"), "w") as f:
        f.write(f"""auth required {MATRIX} passdb={passdb}
auth required {OTP} code={CODE} users=carol,dave
account required {OTP} expired=erin
session required pam_exec.so {hook}
""")
    with open(os.path.join(svc, "other"), "w") as f:
        f.write("auth required pam_deny.so\naccount required pam_deny.so\n")
    # nss_wrapper: a system account "sysu" without a tenant file
    pw, gr = os.path.join(base, "passwd"), os.path.join(base, "group")
    with open(pw, "w") as f:
        f.write("root:x:0:0:root:/root:/bin/bash\nsysu:x:3999000:3999000:sys user:/home/sysu:/bin/bash\n")
    with open(gr, "w") as f:
        f.write("root:x:0:\nsysu:x:3999000:\n")
    env = {"LD_PRELOAD": "libpam_wrapper.so libnss_wrapper.so", "PAM_WRAPPER": "1",
           "PAM_WRAPPER_SERVICE_DIR": svc, "NSS_WRAPPER_PASSWD": pw, "NSS_WRAPPER_GROUP": gr}
    tenant_extra = {
        "alice": "auth = password\n",
        "carol": "auth = keyboard-interactive\n",
        "dave": "auth = publickey+keyboard-interactive\n",
        "erin": "auth = password\n",
        "frank": "auth = publickey\n",
    }
    warren = Warren(base, tenants=tuple(tenant_extra), tenant_extra=tenant_extra, env=env,
                    server_extra="use_pam = yes\nmax_auth_tries = 3\nauth = publickey password\n"
                                 "allow_system_users = yes").start()
    warren.sessions = sessions
    yield warren
    warren.stop()
    shutil.rmtree(base, ignore_errors=True)


def interactive(w, user, answers, command="echo logged-in-as-$(whoami)", key=None, methods=None):
    """Log in answering prompts in order; returns (transcript, exit status)."""
    opts = ["-p", str(w.port), "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=5",
            # INFO: the client shows banners and PAM's instructions only at this level
            "-o", "LogLevel=INFO"]
    if key:
        opts += ["-i", key, "-o", "IdentitiesOnly=yes"]
    else:
        opts += ["-o", "PubkeyAuthentication=no"]
    if methods:
        opts += ["-o", f"PreferredAuthentications={methods}"]
    child = pexpect.spawn("ssh", opts + [f"{user}@127.0.0.1", command], encoding="utf-8",
                          timeout=20)
    out = ""
    try:
        for pattern, answer in answers:
            child.expect(pattern)
            out += child.before + child.after
            child.sendline(answer)
        child.expect(pexpect.EOF)
        out += child.before
    finally:
        child.close()
    return out, child.exitstatus


def test_password_right(w):
    out, rc = interactive(w, "alice", [(r"password: ", PASSWORD)], methods="password")
    assert rc == 0, out
    assert "logged-in-as-alice" in out


def test_password_wrong_refused_and_counted(w):
    out, rc = interactive(w, "alice", [(r"password: ", "nope"), (r"password: ", "nope2"),
                                       (r"password: ", "nope3")], methods="password")
    assert rc == 255
    assert "logged-in-as" not in out
    log = w.log_text()
    assert re.search(r"auth failure: user=alice .*method=password \(wrong password\) \[3/3\]", log)
    assert "too many authentication failures" in log


def test_kbdint_two_prompts(w):
    out, rc = interactive(w, "carol", [(r"Password: ", PASSWORD), (r"One-time code: ", CODE)],
                          methods="keyboard-interactive")
    assert rc == 0, out
    assert "A code was sent to your token." in out  # PAM_TEXT_INFO relayed
    assert "logged-in-as-carol" in out


def test_kbdint_wrong_second_factor(w):
    out, rc = interactive(w, "carol", [(r"Password: ", PASSWORD), (r"One-time code: ", "000000"),
                                       (r"Password: ", PASSWORD), (r"One-time code: ", "111111"),
                                       (r"Password: ", PASSWORD), (r"One-time code: ", "222222")],
                          methods="keyboard-interactive")
    assert rc == 255
    assert "logged-in-as" not in out


def test_publickey_plus_kbdint_needs_both(w):
    # key alone: partial success, then the second factor is required
    out, rc = interactive(w, "dave", [(r"Password: ", PASSWORD), (r"One-time code: ", CODE)],
                          key=w.keys["dave"], methods="publickey,keyboard-interactive")
    assert rc == 0, out
    assert "logged-in-as-dave" in out
    # key only: refused
    r = w.ssh("dave", "true")
    assert r.returncode == 255
    # second factor only, without the key: refused (publickey must come first)
    out, rc = interactive(w, "dave", [], methods="keyboard-interactive")
    assert rc == 255
    assert "logged-in-as" not in out


def test_account_refused_with_pam_text(w):
    out, rc = interactive(w, "erin", [(r"password: ", PASSWORD)], methods="password")
    assert rc == 255
    assert "Your account has expired" in out
    assert "logged-in-as" not in out


def test_publickey_goes_through_account_and_session(w):
    before = open(w.sessions).read() if os.path.exists(w.sessions) else ""
    r = w.ssh("frank", "echo hi")
    assert r.stdout == "hi\n", r.stderr
    assert wait_until(lambda: open(w.sessions).read().count("close_session frank") >
                      before.count("close_session frank"))
    text = open(w.sessions).read()[len(before):]
    assert text.index("open_session frank") < text.index("close_session frank")


def test_close_session_after_client_disconnects(w):
    p = subprocess.Popen(w.ssh_argv("frank") + ["sleep 300"], stdin=subprocess.DEVNULL)
    uid = w.uid("frank")
    assert wait_until(lambda: any(u == uid and c == "sleep" for _, _, u, _, c in procs()))
    before = open(w.sessions).read().count("close_session frank")
    p.kill()
    p.wait()
    assert wait_until(lambda: open(w.sessions).read().count("close_session frank") > before,
                      timeout=15)


def test_session_process_unprivileged_with_pam(w):
    p = subprocess.Popen(w.ssh_argv("frank") + ["sleep 20"], stdin=subprocess.DEVNULL)
    try:
        uid = w.uid("frank")
        found = []
        assert wait_until(lambda: found.extend(
            pid for pid, _, u, _, c in procs() if u == uid and c == "warrend") or found)
        with open(f"/proc/{found[0]}/status") as f:
            st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        assert st["Uid"].split() == [str(uid)] * 4
        for cap in ("CapPrm", "CapEff", "CapBnd"):
            assert int(st[cap], 16) == 0
    finally:
        p.kill()
        p.wait()


def timed_fail(w, user):
    """Seconds from sending a wrong password to the server's refusal."""
    child = pexpect.spawn("ssh", ["-p", str(w.port), "-o", "StrictHostKeyChecking=no", "-o",
                                  "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                                  "-o", "PubkeyAuthentication=no",
                                  "-o", "PreferredAuthentications=password",
                                  f"{user}@127.0.0.1", "true"], encoding="utf-8", timeout=20)
    try:
        child.expect(r"password: ")
        t0 = time.time()
        child.sendline("wrong-password")
        child.expect(r"Permission denied")
        return time.time() - t0
    finally:
        child.close(force=True)


def test_no_user_enumeration_by_timing(w):
    # first attempt of each connection, alternating, several rounds
    known, unknown = [], []
    for _ in range(4):
        known.append(timed_fail(w, "alice"))
        unknown.append(timed_fail(w, "nosuchuser"))
    k, u = sorted(known)[len(known) // 2], sorted(unknown)[len(unknown) // 2]
    assert abs(k - u) < 0.3, (known, unknown)
    assert min(known + unknown) >= 0.45  # the failure floor applies to both


def test_system_user_becomes_tenant(w):
    out, rc = interactive(w, "sysu", [(r"password: ", PASSWORD)], methods="password",
                          command="echo uid=$(id -u) home=$HOME; pwd")
    assert rc == 0, out
    assert "uid=3999000 home=/home/sysu" in out
    ws = os.path.join(w.state, "workspaces", "sysu")
    assert os.stat(ws).st_uid == 3999000
