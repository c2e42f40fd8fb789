"""test_agent.py - the real Claude Code binary (from the claude-code profile,
its npm tarball pinned by hash) runs an agent loop inside a tenant's sandbox
against a mock Messages API that only the allowlist proxy reaches: streaming
SSE, one tool_use turn whose Write tool puts a file in the workspace, then a
final answer. Also the interactive TUI's first start, from the workspace
template, up to a working prompt."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import mock_messages
from conftest import Warren, make_base, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROFILES = os.path.join(ROOT, "nix-profiles")
TEMPLATE = os.path.join(PROFILES, "claude-code", "template")
PLACEHOLDER = "sk-ant-warren-placeholder-the-gateway-holds-the-key"
MOCK_HOST = "127.0.0.2"  # not in the sandbox's NO_PROXY: the agent must use the proxy
GUS_BUDGET = 20000  # tokens: the mock counts request bytes / 4, a tool loop is ~50k


@pytest.fixture(scope="module")
def agent():
    base = make_base()
    ca, mock = mock_messages.serve_tls(base, MOCK_HOST)
    port = mock.server_address[1]
    # gus reaches the same mock only through warren's API gateway, which
    # holds the real key (and a budget); his sandbox has no network at all
    key_file = os.path.join(base, "anthropic.key")
    key = mock_messages.operator_key(key_file)
    api = (f"\n[api claude]\nupstream = https://{MOCK_HOST}:{port}\nkey_file = {key_file}\n"
           f"ca_file = {ca}\nbase_url_env = ANTHROPIC_BASE_URL\nkey_env = ANTHROPIC_API_KEY\n"
           f"budget_tokens = {GUS_BUDGET}\n")
    # the template where tenants can reach it: the tree may sit under a 0700
    # home (fresh-check clones into /root)
    template = os.path.join(base, "template")
    shutil.copytree(TEMPLATE, template, symlinks=True)
    w = Warren(base, tenants=("ann", "gus"),
               server_extra=f"profiles_dir = {PROFILES}\nnix_offline = yes\n"
                            f"template_dir = {template}" + api,
               tenant_extra={"ann": "[sandbox]\nprofile = claude-code\nnetwork = allowlist\n"
                                    f"allow = {MOCK_HOST}:{port}\n",
                             "gus": "[sandbox]\nprofile = claude-code\nnetwork = none\n"
                                    "api = claude\n"})
    w.key = key
    with w.start():
        with open(ca, "rb") as f:  # first login: builds the profile (offline)
            r = w.ssh("ann", "cat > ca.pem", input=f.read(), text=False, timeout=300)
        assert r.returncode == 0, r.stderr
        w.mock, w.env = mock, (f"export ANTHROPIC_BASE_URL=https://{MOCK_HOST}:{port} "
                               f"NODE_EXTRA_CA_CERTS=$HOME/ca.pem "
                               f"ANTHROPIC_API_KEY={PLACEHOLDER}; ")
        yield w
    mock.shutdown()
    shutil.rmtree(base, ignore_errors=True)

def test_claude_p_tool_loop_through_the_proxy(agent):
    before = len(agent.mock.requests)
    r = agent.ssh("ann", agent.env + 'cd $HOME && claude -p "please write the file '
                  '$HOME/agent-note.txt containing hello-from-the-agent" '
                  "--permission-mode acceptEdits", timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "WARREN-AGENT-DONE" in r.stdout
    seen = agent.mock.requests[before:]
    replies = [q.get("reply") for q in seen if q["path"] == "/v1/messages" and q["tools"]]
    assert replies[:2] == ["tool_use", "text"], seen
    # the call after the tool carries its ~96 KiB input back: over 64 KiB
    assert max(q["bytes"] for q in seen) > 100_000
    assert all(q["stream"] for q in seen if q["path"] == "/v1/messages" and q["tools"])
    # every call went through warren's proxy, which logged it
    port = agent.mock.server_address[1]
    assert wait_until(lambda: re.search(rf"dest={MOCK_HOST}:{port} verdict=allowed",
                                        agent.log_text()))
    # the file outlives the session
    r = agent.ssh("ann", "sort -u agent-note.txt; wc -l < agent-note.txt")
    uniq, lines = r.stdout.split()
    assert uniq == "hello-from-the-agent" and int(lines) > 4000


def test_claude_p_through_the_api_gateway_then_over_budget(agent):
    """The real key is added by warren's gateway: the sandbox only has the
    placeholder, and no network. Then the budget runs out: the next run
    gets the gateway's 429, and nothing more reaches the mock."""
    before = len(agent.mock.requests)
    r = agent.ssh("gus", 'echo "[$ANTHROPIC_BASE_URL] [$ANTHROPIC_API_KEY]"; cd $HOME && '
                  'claude -p "please write the file $HOME/gw-note.txt containing via-the-gateway" '
                  "--permission-mode acceptEdits", timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"[http://127.0.0.1:3130] [{PLACEHOLDER}]" in r.stdout
    assert "WARREN-AGENT-DONE" in r.stdout
    seen = agent.mock.requests[before:]
    replies = [q.get("reply") for q in seen if q["path"] == "/v1/messages" and q["tools"]]
    assert replies[:2] == ["tool_use", "text"], seen
    assert max(q["bytes"] for q in seen) > 100_000
    for q in seen:
        h = {k.lower(): v for k, v in q["headers"].items()}
        assert h.get("x-api-key") == agent.key, h  # the real key, every time
        assert PLACEHOLDER not in json.dumps(h)
    r = agent.ssh("gus", "sort -u gw-note.txt")
    assert r.stdout.strip() == "via-the-gateway"
    # over budget now (each call above was ~12k+ tokens): refused by warren
    before = len(agent.mock.requests)
    r = agent.ssh("gus", 'cd $HOME && claude -p "say hi"', timeout=180)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "429" in out and "budget" in out, out[-2000:]
    assert len(agent.mock.requests) == before


def test_mock_api_reachable_only_through_the_proxy(agent):
    port = agent.mock.server_address[1]
    url = f"https://{MOCK_HOST}:{port}/v1/models"
    r = agent.ssh("ann", f"curl -sS --max-time 10 --cacert ca.pem {url}")
    assert r.returncode == 0 and '"ok"' in r.stdout, r.stderr
    r = agent.ssh("ann", f"curl -sS --max-time 10 --noproxy '*' --cacert ca.pem {url}")
    assert r.returncode != 0


TMUX_CONF = os.path.join(os.path.dirname(__file__), "tmux-agent-test.conf")


def tmux(*args):
    # remain-on-exit (from the config): a client that exits leaves its last
    # screen to read
    return subprocess.run(["tmux", "-L", "warren-agent-test", "-f", TMUX_CONF, *args],
                          capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-p", "-t", "tui").stdout


def settle(quiet=1.0, timeout=20):
    """Until the screen has not changed for `quiet` seconds (the TUI redraws
    its first dialog once its settings are loaded, resetting the choice)."""
    last, since, end = None, time.time(), time.time() + timeout
    while time.time() < end:
        now = screen()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.1)


def press_until(key, pred, tries=5):
    """A key, then up to 2 s for the screen to show it took (a TUI drops
    keys while it is still drawing); again if it did not."""
    for _ in range(tries):
        tmux("send-keys", "-t", "tui", key)
        if wait_until(pred, timeout=2):
            return True
    return False


def test_tui_first_start_reaches_a_working_prompt(agent):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    home = agent.ssh("ann", "echo $HOME").stdout.strip()
    argv = agent.ssh_argv("ann", extra=("-tt",))
    cmd = " ".join(f"'{a}'" for a in argv) + \
        f" '{agent.env}cd $HOME && exec claude --permission-mode acceptEdits'"
    tmux("kill-server")
    assert tmux("new-session", "-d", "-s", "tui", "-x", "120", "-y", "40",
                cmd).returncode == 0
    try:
        # the home folder's trust question comes first (a real choice, not a
        # dead end); no connectivity check, theme or key question before it
        assert wait_until(lambda: "trust this folder" in screen(), timeout=60), screen()
        assert "Unable to connect" not in screen()
        settle()
        assert press_until("Down", lambda: "❯ Yes" in screen()), screen()
        assert press_until("Enter", lambda: "trust this folder" not in screen()), screen()
        assert wait_until(lambda: "auto mode" in screen().lower()
                          or "accept edits" in screen().lower(), timeout=30), screen()
        assert "Detected a custom API key" not in screen()
        tmux("send-keys", "-t", "tui", "-l",
             f"please write the file {home}/tui-note.txt containing typed-in-the-tui")
        time.sleep(0.5)  # the TUI debounces typed input before Enter
        tmux("send-keys", "-t", "tui", "Enter")
        assert wait_until(lambda: "WARREN-AGENT-DONE" in screen(), timeout=90), screen()
    finally:
        tmux("kill-server")
    r = agent.ssh("ann", "sort -u tui-note.txt")
    assert r.stdout.strip() == "typed-in-the-tui"
