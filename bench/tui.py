"""bench/tui.py - time from `ssh -tt` to an interactive agent's first
screen: Claude Code's TUI (the claude-code profile, built offline by `make
profiles`) in a tmux pane, until its first dialog ("trust this folder")
shows. warren runs it from the tenant's profile; the baseline sshd runs the
same binary from the same /nix/store path inside its bwrap. Runs alternate;
the median of each is reported."""
import os
import re
import shutil
import statistics
import subprocess
import time

from conftest import Warren, make_base

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PROFILES = os.path.join(ROOT, "nix-profiles")
TEMPLATE = os.path.join(PROFILES, "claude-code", "template")
# the template's .claude.json approves this key (its last 20 characters)
KEY = "sk-ant-warren-placeholder-the-gateway-holds-the-key"
ENV = f"export ANTHROPIC_API_KEY={KEY} ANTHROPIC_BASE_URL=http://127.0.0.1:9; "
MARK = "trust this folder"
SOCK = "warren-bench-tui"


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCK, "-f", "/dev/null", *args],
                          capture_output=True, text=True)


def first_screen(argv, command, timeout=60):
    """ms from starting the client to MARK on its screen; nan if never"""
    cmd = " ".join(f"'{a}'" for a in argv) + f" '{command}'"
    tmux("kill-server")
    t0 = time.perf_counter()
    if tmux("new-session", "-d", "-s", "tui", "-x", "120", "-y", "40", cmd).returncode != 0:
        return float("nan")
    try:
        while time.perf_counter() - t0 < timeout:
            if MARK in tmux("capture-pane", "-p", "-t", "tui").stdout:
                return (time.perf_counter() - t0) * 1000
            time.sleep(0.01)
        return float("nan")
    finally:
        tmux("kill-server")


def store_path(w):
    m = re.search(r"profile claude-code for tui: (/nix/store/\S+)", w.log_text())
    return m.group(1) if m else None


def measure(baseline, runs, same=()):
    """[(name, warren ms, baseline ms)], or [] with the reason printed"""
    if not shutil.which("tmux"):
        print("tui: tmux is not installed: not measured")
        return []
    base = make_base()
    w = Warren(base, tenants=("tui",),
               tenant_extra={"tui": "[sandbox]\nprofile = claude-code\n"},
               server_extra=f"profiles_dir = {PROFILES}\nnix_offline = yes\n"
                            f"template_dir = {TEMPLATE}")
    try:
        w.start()
        r = w.ssh("tui", "true", timeout=300)  # activates (or builds) the profile
        store = store_path(w)
        if r.returncode != 0 or store is None:
            print("tui: the claude-code profile is not available (make profiles): not measured")
            return []
        shutil.copy(os.path.join(TEMPLATE, ".claude.json"),
                    os.path.join(baseline.home, ".claude.json"))
        subprocess.run(["chown", f"{baseline.user}:", os.path.join(baseline.home, ".claude.json")],
                       check=True)
        wt, bt = [], []
        for _ in range(runs):
            # `same`: the cipher and key exchange the baseline's client uses
            wt.append(first_screen(w.ssh_argv("tui", extra=("-tt", *same)),
                                   ENV + "cd $HOME && exec claude"))
            bt.append(first_screen(baseline.ssh_argv(extra=("-tt",)),
                                   ENV + f"cd $HOME && PATH={store}/bin:$PATH exec claude"))
        ok_w = [x for x in wt if x == x]
        ok_b = [x for x in bt if x == x]
        med = (lambda xs: statistics.median(xs) if xs else float("nan"))
        return [("`ssh -tt` to Claude Code's first screen, median ms", med(ok_w), med(ok_b)),
                (f"... screens reached, of {runs}", len(ok_w), len(ok_b))]
    finally:
        w.stop()
        shutil.rmtree(base, ignore_errors=True)
