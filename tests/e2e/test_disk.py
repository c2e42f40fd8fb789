"""test_disk.py - disk_max: a tenant's workspace is an ext4 image of that
size on a loop device, so writing past it fails inside the sandbox with
ENOSPC while other tenants write on; the data persists across logins; an
existing workspace is carried over when the operator sets disk_max later;
and the sandbox's mountinfo shows no host path for the workspace."""
import os
import shutil
import subprocess

import pytest

from conftest import Warren, make_base


def need_loop():
    if not os.path.exists("/dev/loop-control") or not os.access("/sbin/mkfs.ext4", os.X_OK):
        pytest.skip("no loop devices or no mkfs.ext4 on this host: disk_max cannot work here")
    r = subprocess.run(["losetup", "-f"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no free loop device: {r.stderr.strip()}")


def unmount_under(base):
    with open("/proc/self/mounts") as f:
        targets = [line.split()[1] for line in f if line.split()[1].startswith(base + "/")]
    for t in sorted(targets, reverse=True):
        subprocess.run(["umount", "-l", t], check=False)


@pytest.fixture(scope="module")
def dw():
    need_loop()
    base = make_base()
    w = Warren(base, tenants=("quo", "roomy", "late"),
               tenant_extra={"quo": "[sandbox]\ndisk_max = 32M\n"})
    w.start()
    yield w
    w.stop()
    unmount_under(base)
    shutil.rmtree(base, ignore_errors=True)


def test_writing_past_disk_max_fails_and_others_go_on(dw):
    r = dw.ssh("quo", "df -B1 --output=size $HOME | tail -1; "
                      "dd if=/dev/zero of=big bs=1M count=64 2>&1; echo rc=$?; "
                      "stat -c %s big; echo still-here > small2 || echo small-failed")
    lines = r.stdout.splitlines()
    size = int(lines[0])
    assert 24 << 20 < size <= 32 << 20, lines[0]
    assert "No space left on device" in r.stdout
    assert "rc=1" in r.stdout
    written = int([l for l in lines if l.isdigit()][-1])
    assert written <= 32 << 20
    # another tenant is not limited by it
    r = dw.ssh("roomy", "dd if=/dev/zero of=big bs=1M count=64 2>/dev/null && stat -c %s big")
    assert r.stdout.strip() == str(64 << 20)
    # freeing space makes room again
    r = dw.ssh("quo", "rm big && echo ok > note && cat note")
    assert r.stdout.strip() == "ok"


def test_data_persists_and_mountinfo_shows_no_host_path(dw):
    assert dw.ssh("quo", "echo kept > kept.txt").returncode == 0
    r = dw.ssh("quo", "cat kept.txt; grep ' /home/quo ' /proc/self/mountinfo")
    lines = r.stdout.splitlines()
    assert lines[0] == "kept"
    fields = lines[1].split()
    assert fields[3] == "/", lines[1]  # the root of its own filesystem
    assert dw.base not in lines[1] and "ext4" in lines[1]
    # the image is root's, in a root-only directory
    st = os.stat(os.path.join(dw.state, "disks"))
    assert st.st_uid == 0 and st.st_mode & 0o077 == 0


def test_existing_workspace_is_carried_over(dw):
    assert dw.ssh("late", "echo from-before > old.txt").returncode == 0
    with open(os.path.join(dw.tenants_dir, "late.conf"), "a") as f:
        f.write("[sandbox]\ndisk_max = 20M\n")
    r = dw.ssh("late", "cat old.txt; df -B1 --output=size $HOME | tail -1")
    lines = r.stdout.splitlines()
    assert lines[:1] == ["from-before"], (r.returncode, r.stdout, r.stderr)
    assert int(lines[1]) <= 20 << 20


def test_config_check_and_bad_value(dw, tmp_path):
    with open(os.path.join(dw.tenants_dir, "late.conf")) as f:
        conf = f.read()
    bad = tmp_path / "t"
    bad.mkdir()
    (bad / "x.conf").write_text("[tenant]\n[sandbox]\ndisk_max = 1M\n")
    c = tmp_path / "w.conf"
    c.write_text(open(dw.conf).read().replace(dw.tenants_dir, str(bad)))
    from conftest import WARREND
    r = subprocess.run([WARREND, "-t", "-f", str(c)], capture_output=True, text=True)
    assert r.returncode != 0
    assert f"{bad}/x.conf:3: disk_max: at least 16M" in r.stderr
    assert "disk_max = 20M" in conf
