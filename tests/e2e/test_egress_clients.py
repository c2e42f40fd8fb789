"""test_egress_clients.py - package managers and git through the allowlist
proxy, as agents use them: npm installs a package and its dependency
(MiB-sized tarballs) from a local registry stand-in over HTTPS, and git
clones from and pushes to a local smart-HTTP server (git http-backend) over
HTTPS. The servers are named (https://localhost:PORT: npm's proxy agent
cannot verify a certificate for an IP literal) and the commands clear
NO_PROXY, as for any real registry, so every byte goes through warren's
CONNECT tunnel; the proxy's log shows each connection."""
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest

from conftest import QuietHandler, Warren, make_base, make_ca, need_localhost, serve_http, wait_until

HOST = "localhost"
ADDR = "127.0.0.1"
DIRECT = "unset NO_PROXY no_proxy; "
MiB = 1 << 20


def blob(seed, n):
    out, block = bytearray(), hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def npm_tarball(name, version, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Registry(QuietHandler):
    """GET /NAME: the packument; GET /NAME/-/NAME-V.tgz: the tarball."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.path.split("?")[0].lstrip("/")
        self.server.seen.append(path)
        if path in self.server.tarballs:
            return self.reply(self.server.tarballs[path], "application/octet-stream")
        if path in self.server.packuments:
            return self.reply(json.dumps(self.server.packuments[path]).encode(),
                              "application/json")
        self.reply(b'{"error":"not found"}', "application/json", 404)


def serve(handler, ctx, **attrs):
    return serve_http(handler, ADDR, 0, ctx, seen=[], **attrs)


def registry(ctx):
    srv = serve(Registry, ctx, tarballs={}, packuments={})
    url = f"https://{HOST}:{srv.server_address[1]}"
    pkgs = {
        "warren-right": ("2.0.0", {}, b"exports.half = () => 21;\n"),
        "warren-left": ("1.0.0", {"warren-right": "^2.0.0"},
                        b"exports.answer = () => 2 * require('warren-right').half();\n"),
    }
    for name, (version, deps, index) in pkgs.items():
        meta = {"name": name, "version": version, "main": "index.js", "dependencies": deps}
        tgz = npm_tarball(name, version, {"package.json": json.dumps(meta).encode(),
                                          "index.js": index,
                                          "blob.bin": blob(name, 3 * MiB)})
        file = f"{name}/-/{name}-{version}.tgz"
        srv.tarballs[file] = tgz
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        srv.packuments[name] = {"name": name, "dist-tags": {"latest": version}, "versions": {
            version: dict(meta, dist={"tarball": f"{url}/{file}", "integrity": integrity,
                                      "shasum": hashlib.sha1(tgz).hexdigest()})}}
    return srv, url


class GitHTTP(QuietHandler):
    """Smart HTTP: each request runs `git http-backend` as CGI (RFC 3875)."""
    protocol_version = "HTTP/1.1"

    def cgi(self, data):
        path, _, query = self.path.partition("?")
        env = dict(os.environ, GIT_PROJECT_ROOT=self.server.root, GIT_HTTP_EXPORT_ALL="1",
                   REQUEST_METHOD=self.command, PATH_INFO=path, QUERY_STRING=query,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(data)), REMOTE_USER="ann", REMOTE_ADDR="127.0.0.1",
                   GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
                   HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""))
        self.server.seen.append((self.command, path, len(data)))
        out = subprocess.run(["git", "http-backend"], input=data, env=env,
                             capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        self.headers_out = []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                self.headers_out.append((k, v.strip()))
        self.send_response(status)
        for k, v in self.headers_out:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    def do_GET(self):
        self.cgi(b"")

    def do_POST(self):
        self.cgi(b"".join(self.body_chunks()))


def git_server(base, ctx):
    root = os.path.join(base, "git")
    work = os.path.join(base, "git-work")
    os.makedirs(work)
    git = lambda *a, cwd=work: subprocess.run(["git", *a], cwd=cwd, check=True,
                                               capture_output=True)
    git("init", "-q", "-b", "main")
    with open(os.path.join(work, "big.bin"), "wb") as f:
        f.write(blob("git", 6 * MiB))
    git("add", "big.bin")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "six MiB")
    git("clone", "-q", "--bare", work, os.path.join(root, "repo.git"), cwd=base)
    git("config", "http.receivepack", "true", cwd=os.path.join(root, "repo.git"))
    srv = serve(GitHTTP, ctx, root=root)
    return srv, f"https://{HOST}:{srv.server_address[1]}/repo.git"


@pytest.fixture(scope="module")
def tools():
    base = make_base()
    ca, ctx = make_ca(base, HOST)
    try:
        reg, reg_url = registry(ctx)
        gsrv, git_url = git_server(base, ctx)
    except OSError as e:
        pytest.skip(f"cannot listen on {ADDR}: {e}")
    need_localhost()
    # by name and by the address it resolves to (an IP rule is what lets a
    # name through to loopback)
    rules = "".join(f"allow = {h}:{s.server_address[1]}\n" for s in (reg, gsrv)
                    for h in (HOST, ADDR))
    w = Warren(base, tenants=("ann",),
               tenant_extra={"ann": "[sandbox]\nnetwork = allowlist\n" + rules})
    with w.start():
        with open(ca, "rb") as f:
            assert w.ssh("ann", "cat > ca.pem", input=f.read(), text=False).returncode == 0
        w.reg, w.reg_url, w.git, w.git_url = reg, reg_url, gsrv, git_url
        yield w
    reg.shutdown()
    gsrv.shutdown()
    shutil.rmtree(base, ignore_errors=True)


def test_npm_install_from_a_registry_through_the_proxy(tools):
    if not shutil.which("npm"):
        pytest.skip("npm is not installed on the host")
    r = tools.ssh("ann", DIRECT + f"mkdir -p app && cd app && npm install --no-audit --no-fund "
                  f"--registry {tools.reg_url}/ --cafile $HOME/ca.pem warren-left 2>&1 && "
                  "node -e 'console.log(require(\"warren-left\").answer())' && "
                  "sha256sum node_modules/warren-left/blob.bin node_modules/warren-right/blob.bin",
                  timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert lines[-3] == "42"
    assert lines[-2].split()[0] == hashlib.sha256(blob("warren-left", 3 * MiB)).hexdigest()
    assert lines[-1].split()[0] == hashlib.sha256(blob("warren-right", 3 * MiB)).hexdigest()
    assert "warren-right/-/warren-right-2.0.0.tgz" in tools.reg.seen
    assert proxied(tools, tools.reg)


def test_git_clone_and_push_over_https_through_the_proxy(tools):
    r = tools.ssh("ann", DIRECT + f"export GIT_SSL_CAINFO=$HOME/ca.pem; git clone -q {tools.git_url} r "
                  "&& cd r && sha256sum big.bin && head -c 3145728 /dev/urandom > up.bin && "
                  "git add up.bin && git -c user.name=ann -c user.email=ann@warren commit -qm up "
                  "&& git push -q origin HEAD:main && sha256sum up.bin", timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    cloned, pushed = (line.split()[0] for line in r.stdout.split("\n") if line.strip())
    assert cloned == hashlib.sha256(blob("git", 6 * MiB)).hexdigest()
    repo = os.path.join(tools.git.root, "repo.git")
    got = subprocess.run(["git", "--git-dir", repo, "show", "main:up.bin"], check=True,
                         capture_output=True).stdout
    assert hashlib.sha256(got).hexdigest() == pushed
    assert any(m == "POST" and p.endswith("git-receive-pack") and n > 3 * MiB
               for m, p, n in tools.git.seen)
    assert proxied(tools, tools.git)


def proxied(w, srv):
    return wait_until(lambda: re.search(
        rf"dest={HOST}:{srv.server_address[1]} verdict=allowed bytes_up=\d+ bytes_down=[1-9]",
        w.log_text()))
