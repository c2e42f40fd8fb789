"""test_files.py - files in and out of workspaces with the real clients: sftp,
scp (SFTP and legacy protocols), rsync and git over SSH; confinement."""
import hashlib
import os
import subprocess

import pexpect
import pytest

ODD = ["with space.txt", "ünïcödé-файл.txt", "-leading-dash", "semi;colon 'quote'"]


def ssh_opts(w, user):
    return ["-i", w.keys[user], "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


def sftp(w, user, batch, check=True):
    r = subprocess.run(["sftp", "-b", "-", "-P", str(w.port), *ssh_opts(w, user),
                        f"{user}@127.0.0.1"], input=batch, capture_output=True, text=True,
                       timeout=120)
    if check:
        assert r.returncode == 0, r.stderr + r.stdout
    return r


def scp(w, user, *args, legacy=False):
    argv = ["scp", *(["-O"] if legacy else []), "-P", str(w.port), *ssh_opts(w, user), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def make_tree(root):
    os.makedirs(os.path.join(root, "sub", "deeper"))
    for i, name in enumerate(ODD):
        with open(os.path.join(root, name), "w") as f:
            f.write(f"content {i} of {name}\n")
    with open(os.path.join(root, "sub", "deeper", "bin"), "wb") as f:
        f.write(os.urandom(100000))


def trees_equal(a, b):
    r = subprocess.run(["diff", "-r", a, b], capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


def test_sftp_operations_odd_names(warren, tmp_path):
    src = tmp_path / "src"
    make_tree(str(src))
    sftp(warren, "alice", f'mkdir sftp-tree\ncd sftp-tree\nlcd "{src}"\n'
         + "".join(f'put "./{n}" "./{n}"\n' for n in ODD))
    r = warren.ssh("alice", "cd sftp-tree && ls -1")
    assert sorted(r.stdout.splitlines()) == sorted(ODD)
    dst = tmp_path / "back"
    dst.mkdir()
    sftp(warren, "alice", f'cd sftp-tree\nlcd "{dst}"\n'
         + "".join(f'get "./{n}" "./{n}"\n' for n in ODD)
         + 'rename "with space.txt" renamed.txt\nchmod 600 renamed.txt\n'
         + 'rm "./-leading-dash"\nmkdir newdir\nrmdir newdir\nls -l\n')
    for n in ODD:
        assert (dst / n).read_text() == (src / n).read_text()
    r = warren.ssh("alice", "cd sftp-tree && stat -c '%a %n' renamed.txt && ls -1")
    assert r.stdout.startswith("600 renamed.txt\n")
    assert "-leading-dash" not in r.stdout and "newdir" not in r.stdout


def test_sftp_recursive_and_200mb_roundtrip(warren, tmp_path):
    src = tmp_path / "tree"
    make_tree(str(src))
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    sftp(warren, "alice", f'put -r "{src}" tree\nput "{big}" big.bin\n')
    r = warren.ssh("alice", "sha256sum big.bin")
    assert r.stdout.split()[0] == sha(big)
    back = tmp_path / "back"
    back.mkdir()
    sftp(warren, "alice", f'get -r tree "{back}/tree"\nget big.bin "{back}/big.bin"\n')
    assert sha(back / "big.bin") == sha(big)
    ok, diff = trees_equal(str(src), str(back / "tree"))
    assert ok, diff


def test_scp_both_protocols_both_directions(warren, tmp_path):
    src = tmp_path / "src"
    make_tree(str(src))
    for legacy in (False, True):
        name = "scp-legacy" if legacy else "scp-sftp"
        r = scp(warren, "bob", "-r", str(src), f"bob@127.0.0.1:{name}", legacy=legacy)
        assert r.returncode == 0, r.stderr
        back = tmp_path / f"back-{name}"
        r = scp(warren, "bob", "-r", f"bob@127.0.0.1:{name}", str(back), legacy=legacy)
        assert r.returncode == 0, r.stderr
        ok, diff = trees_equal(str(src), str(back))
        assert ok, (name, diff)
        # single file with an odd name, into a directory
        r = scp(warren, "bob", str(src / ODD[1]), "bob@127.0.0.1:", legacy=legacy)
        assert r.returncode == 0, r.stderr
        assert warren.ssh("bob", f"cat '{ODD[1]}'").stdout == (src / ODD[1]).read_text()


def test_scp_missing_remote_file_is_clear(warren, tmp_path):
    for legacy in (False, True):
        r = scp(warren, "bob", "bob@127.0.0.1:does-not-exist", str(tmp_path), legacy=legacy)
        assert r.returncode != 0
        assert "does-not-exist" in r.stderr and "No such file" in r.stderr


def rsync(w, user, *args):
    e = " ".join(["ssh", "-p", str(w.port), *ssh_opts(w, user)])
    return subprocess.run(["rsync", "-e", e, *args], capture_output=True, text=True, timeout=120)


def test_rsync_full_then_incremental(warren, tmp_path):
    src = tmp_path / "src"
    make_tree(str(src))
    r = rsync(warren, "alice", "-a", "--stats", f"{src}/", "alice@127.0.0.1:rs/")
    assert r.returncode == 0, r.stderr
    with open(src / "sub" / "changed.txt", "w") as f:
        f.write("new file\n")
    r = rsync(warren, "alice", "-a", "-i", f"{src}/", "alice@127.0.0.1:rs/")
    assert r.returncode == 0, r.stderr
    changed = [line for line in r.stdout.splitlines() if line.startswith("<f")]
    assert changed == ["<f+++++++++ sub/changed.txt"], r.stdout
    back = tmp_path / "back"
    r = rsync(warren, "alice", "-a", "alice@127.0.0.1:rs/", f"{back}/")
    assert r.returncode == 0, r.stderr
    ok, diff = trees_equal(str(src), str(back))
    assert ok, diff


def test_rsync_partial_resume(warren, tmp_path):
    data = os.urandom(8 << 20)
    f = tmp_path / "resume.bin"
    f.write_bytes(data)
    # leave a truncated copy where rsync --partial would, then resume
    warren.ssh("alice", "cat > resume.bin", input=data[:3 << 20], text=False)
    r = rsync(warren, "alice", "--partial", "--append-verify", str(f), "alice@127.0.0.1:resume.bin")
    assert r.returncode == 0, r.stderr
    assert warren.ssh("alice", "sha256sum resume.bin").stdout.split()[0] == \
        hashlib.sha256(data).hexdigest()


def test_git_clone_and_push(warren, tmp_path):
    assert warren.ssh("bob", "git init -q --bare repo.git").returncode == 0
    env = dict(os.environ, GIT_SSH_COMMAND=" ".join(["ssh", "-p", str(warren.port),
                                                       *ssh_opts(warren, "bob")]),
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    work = tmp_path / "work"
    run = lambda *a, cwd=None: subprocess.run(a, cwd=cwd, env=env, capture_output=True,  # noqa
                                              text=True, timeout=60)
    r = run("git", "clone", "-q", "bob@127.0.0.1:repo.git", str(work))
    assert r.returncode == 0, r.stderr
    (work / "hello.txt").write_text("hello warren\n")
    assert run("git", "add", ".", cwd=work).returncode == 0
    assert run("git", "commit", "-qm", "first", cwd=work).returncode == 0
    r = run("git", "push", "-q", "origin", "HEAD:main", cwd=work)
    assert r.returncode == 0, r.stderr
    r = warren.ssh("bob", "git --git-dir=repo.git show main:hello.txt")
    assert r.stdout == "hello warren\n"
    again = tmp_path / "again"
    r = run("git", "clone", "-q", "-b", "main", "bob@127.0.0.1:repo.git", str(again))
    assert r.returncode == 0, r.stderr
    assert (again / "hello.txt").read_text() == "hello warren\n"


def test_sftp_confinement(warren, tmp_path):
    assert warren.ssh("bob", "echo bob-private > private.txt").returncode == 0
    bob_ws = os.path.join(warren.state, "workspaces", "bob")
    # symlinks planted in the workspace resolve inside the sandbox only
    warren.ssh("alice", "ln -sf /etc/shadow shadow-link; ln -sf /etc/passwd passwd-link;"
               f" ln -sfn {bob_ws} bob-link")
    out = tmp_path / "out"
    out.mkdir()
    for target in ("/etc/shadow", "../bob/private.txt", f"{bob_ws}/private.txt",
                   "/home/bob/private.txt", "shadow-link", "bob-link/private.txt",
                   "/root/.bashrc"):
        r = sftp(warren, "alice", f'get "{target}" "{out}/got"\n', check=False)
        assert r.returncode != 0, target
        assert not (out / "got").exists(), target
    sftp(warren, "alice", f'get passwd-link "{out}/passwd"\n')
    text = (out / "passwd").read_text()
    assert "alice:x:" in text and "warren tenant" in text
    with open("/etc/passwd") as f:
        assert text != f.read()  # the sandbox's generated file, never the host's
    r = sftp(warren, "alice", "ls /home\n")
    assert "bob" not in r.stdout
    r = sftp(warren, "alice", "put /etc/hostname /usr/evil\n", check=False)
    assert r.returncode != 0


def test_sftp_while_pty_session_open(warren, tmp_path):
    argv = warren.ssh_argv("alice", extra=("-tt",))
    child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=30)
    try:
        child.expect(r"\$ ")
        blob = tmp_path / "concurrent.bin"
        blob.write_bytes(os.urandom(20 << 20))
        sftp(warren, "alice", f'put "{blob}" concurrent.bin\n')
        child.sendline("sha256sum concurrent.bin")
        child.expect(r"([0-9a-f]{64})\s+concurrent.bin")
        assert child.match.group(1) == sha(blob)
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()


def test_sftp_server_missing_is_a_clear_error(make_warren):
    w = make_warren(tenants=("alice",), server_extra="sftp_server = /usr/lib/nope/sftp-server")
    w.start()
    r = sftp(w, "alice", "ls\n", check=False)
    assert r.returncode != 0
    assert "/usr/lib/nope/sftp-server" in r.stderr


def test_interrupted_transfer_leaves_nothing_behind(warren, tmp_path):
    from conftest import procs, wait_until
    uid = warren.uid("alice")
    blob = tmp_path / "huge.bin"
    with open(blob, "wb") as f:
        f.truncate(512 << 20)  # sparse: the transfer is cut long before the end
    p = subprocess.Popen(["sftp", "-b", "-", "-P", str(warren.port), *ssh_opts(warren, "alice"),
                          "alice@127.0.0.1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, text=True)
    p.stdin.write(f'put "{blob}" partial.bin\n')
    p.stdin.flush()
    assert wait_until(lambda: any(u == uid and c == "sftp-server" for _, _, u, _, c in procs()))
    assert wait_until(lambda: int(warren.ssh("alice", "stat -c %s partial.bin 2>/dev/null || echo 0")
                                  .stdout or 0) > 0)
    p.kill()
    p.wait()
    # the sftp-server ends with its connection (the environment itself lingers)
    assert wait_until(lambda: not any(u == uid and c == "sftp-server"
                                      for _, _, u, _, c in procs()), timeout=15)
    # what arrived is kept, and resuming completes it
    sftp(warren, "alice", f'reput "{blob}" partial.bin\n')
    assert warren.ssh("alice", "stat -c %s partial.bin").stdout.strip() == str(512 << 20)


def test_sftp_symlink_direction_openssh_client(warren):
    warren.ssh("alice", "rm -rf lnk-o && mkdir lnk-o && echo target-o > lnk-o/target")
    # OpenSSH's sftp: ln -s OLDPATH NEWPATH makes NEWPATH point at OLDPATH
    sftp(warren, "alice", "ln -s target lnk-o/link\n")
    r = warren.ssh("alice", "readlink lnk-o/link; cat lnk-o/link")
    assert r.stdout == "target\ntarget-o\n", r.stdout + r.stderr


def test_sftp_symlink_direction_asyncssh_client(warren):
    asyncssh = pytest.importorskip("asyncssh")
    import asyncio

    warren.ssh("alice", "rm -rf lnk-a && mkdir lnk-a && echo target-a > lnk-a/target")

    async def run():
        key = asyncssh.read_private_key(warren.keys["alice"])
        async with asyncssh.connect("127.0.0.1", warren.port, username="alice",
                                    client_keys=[key], known_hosts=None) as conn:
            async with conn.start_sftp_client() as s:
                # asyncssh's symlink(oldpath, newpath): newpath points at oldpath
                await s.symlink("target", "lnk-a/link")

    asyncio.run(run())
    r = warren.ssh("alice", "readlink lnk-a/link; cat lnk-a/link")
    assert r.stdout == "target\ntarget-a\n", r.stdout + r.stderr
