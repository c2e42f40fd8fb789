"""test_profiles.py - Nix profiles end to end with the offline fixture
profile: tools first on PATH from /nix/store, env vars, path mappings,
rebuild on edit, clear refusal for a broken profile, one store path shared
by tenants, and a cache that survives a restart without running nix."""
import glob
import os
import shutil
import subprocess
import time

import pytest

from conftest import ROOT, Warren, make_base

PROFILES = os.path.join(ROOT, "nix-profiles")


@pytest.mark.parametrize("flake", sorted(glob.glob(os.path.join(PROFILES, "*", "flake.nix"))))
def test_every_shipped_profile_parses(flake):
    r = subprocess.run(["nix-instantiate", "--parse", flake], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def pw():
    base = make_base()
    pdir = os.path.join(base, "profiles")
    os.makedirs(pdir)
    shutil.copytree(os.path.join(PROFILES, "offline"), os.path.join(pdir, "offline"))
    shutil.copytree(os.path.join(PROFILES, "offline"), os.path.join(pdir, "broken"))
    with open(os.path.join(pdir, "broken", "flake.nix"), "a") as f:
        f.write("this is not nix {\n")
    extra = {"alice": "[sandbox]\nprofile = offline\n", "bob": "[sandbox]\nprofile = offline\n",
             "carol": "[sandbox]\nprofile = broken\n", "dan": "[sandbox]\nprofile = none\n"}
    w = Warren(base, tenants=tuple(extra), tenant_extra=extra,
               server_extra=f"profiles_dir = {pdir}\nnix_offline = yes").start()
    w.pdir = pdir
    yield w
    w.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_profile_activated(pw):
    r = pw.ssh("alice", "command -v warren-hello; echo PATH=$PATH; warren-hello; "
                        "echo $WARREN_PROFILE; /opt/warren-offline/bin/hello; "
                        "cat $(dirname $(command -v warren-hello))/../share/warren/flake.nix | head -3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("/nix/store/") and lines[0].endswith("/bin/warren-hello")
    store = lines[0][:-len("/bin/warren-hello")]
    assert lines[1] == f"PATH=/home/alice/.local/bin:{store}/bin:/usr/local/bin:/usr/bin:/bin"
    assert lines[2] == "hello from the offline profile"
    assert lines[3] == "offline"
    assert lines[4] == "hello from the offline profile"  # the path mapping
    assert "TEST FIXTURE" in r.stdout  # the declaration is readable in the sandbox
    # the store is read-only in the sandbox
    r = pw.ssh("alice", f"touch {store}/x")
    assert r.returncode != 0


def test_tenants_share_the_store_path(pw):
    a = pw.ssh("alice", "command -v warren-hello").stdout
    b = pw.ssh("bob", "command -v warren-hello").stdout
    assert a == b and a.startswith("/nix/store/")
    assert "cache hit" in pw.log_text()


def test_edit_rebuilds(pw):
    before = pw.ssh("alice", "command -v warren-hello").stdout.strip()
    path = os.path.join(pw.pdir, "offline", "flake.nix")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("hello from the offline profile", "hello after an edit"))
    r = pw.ssh("alice", "command -v warren-hello; warren-hello")
    after, greeting = r.stdout.splitlines()
    assert after != before and after.startswith("/nix/store/")
    assert greeting == "hello after an edit"


def test_broken_profile_is_a_clear_refusal(pw):
    r = pw.ssh("carol", "echo should-not-run")
    assert r.returncode == 1
    assert "should-not-run" not in r.stdout
    assert r.stderr.strip() == ("warren: profile 'broken' is not available; "
                                "the operator's log has details")
    log = pw.log_text()
    assert "profile 'broken': nix build" in log
    assert "nix: " in log  # nix's own error lines reach the operator
    # the failure is remembered: the next login is refused without running nix
    t0 = time.time()
    r = pw.ssh("carol", "echo should-not-run")
    assert r.returncode == 1 and "profile 'broken' is not available" in r.stderr
    assert time.time() - t0 < 3
    assert "its build failed 1 time(s); next try in" in pw.log_text()
    # a mended flake is tried at once (its files changed)
    shutil.copy(os.path.join(pw.pdir, "offline", "flake.nix"),
                os.path.join(pw.pdir, "broken", "flake.nix"))
    r = pw.ssh("carol", "warren-hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from the offline profile\n"


def test_check_reports_profiles_that_do_not_evaluate(pw):
    from conftest import WARREND
    r = subprocess.run([WARREND, "-t", "-f", pw.conf], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1
    assert "profile 'broken' does not evaluate: " in r.stderr, r.stderr
    assert "carol.conf" in r.stderr
    assert "'offline'" not in r.stderr  # the good one passes


def test_no_profile(pw):
    r = pw.ssh("dan", "echo $PATH; command -v warren-hello || echo absent")
    assert r.stdout == "/home/dan/.local/bin:/usr/local/bin:/usr/bin:/bin\nabsent\n"


def test_cache_survives_restart_without_nix(pw):
    before = pw.ssh("alice", "command -v warren-hello").stdout
    pw.stop()
    with open(pw.conf) as f:
        conf = f.read()
    with open(pw.conf, "w") as f:  # a restart that could not run nix at all
        f.write(conf.replace("nix_offline = yes", "nix_offline = yes\nnix = /bin/false"))
    pw.start()
    r = pw.ssh("alice", "command -v warren-hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == before
