#!/bin/bash
# bench/loginpath.sh [TREE] - how one login (`ssh demo@host true`) goes
# through the code of the tree at TREE (default: this one): warrend built
# with -finstrument-functions (bench/trace.c) logs the first entry into each
# of its functions per process; this prints, per process, the source files
# in the order first entered, the distinct files, and the re-entries (a
# file entered again after others: "preauth.c x3" means three separate runs).
# A second count leaves out the helpers every layer calls (config, policy,
# fdpass, audit, ...) and follows only the files that carry the login.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TREE=$(cd "${1:-$HERE/..}" && pwd)
W=$(mktemp -d /tmp/warren-loginpath.XXXXXX)
chmod 755 "$W"
trap 'kill $(cat $W/pid 2>/dev/null) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
PKGS="libssh libcap inih libseccomp json-c openssl"
SRCS=$(ls "$TREE"/sshd-frontend/*.c "$TREE"/pam/pam.c "$TREE"/sandbox/*.c "$TREE"/egress/*.c 2>/dev/null | grep -v '/sandbox/init')
# shellcheck disable=SC2086
cc -std=gnu11 -O1 -g -D_GNU_SOURCE -finstrument-functions -fPIE -pie $(pkg-config --cflags $PKGS) \
	-o "$W/warrend" $SRCS "$HERE/trace.c" $(pkg-config --libs $PKGS) -lpam -pthread
cc -std=gnu11 -O1 -D_GNU_SOURCE -static -o "$W/warren-init" "$TREE"/sandbox/init*.c \
	"$TREE"/sandbox/fdpass.c "$TREE"/sandbox/ring.c "$TREE"/sandbox/strblob.c
mkdir -p "$W/tenants.d"
ssh-keygen -q -t ed25519 -N '' -f "$W/id"
PORT=$((20000 + RANDOM % 20000))
cat > "$W/warrend.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
host_key = $W/hostkey
state_dir = $W/state
tenants_dir = $W/tenants.d
uid_range = 200000-299999
[sandbox]
network = none
CONF
printf '[tenant]\nauthorized_keys = %s/id.pub\n' "$W" > "$W/tenants.d/demo.conf"
"$W/warrend" -f "$W/warrend.conf" 2> "$W/log" &
echo $! > "$W/pid"
for _ in $(seq 100); do grep -q 'listening on' "$W/log" 2>/dev/null && break; sleep 0.1; done
: > "$W/log.before"; cp "$W/log" "$W/log.before"
ssh -q -i "$W/id" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	-o BatchMode=yes demo@127.0.0.1 true
kill "$(cat "$W/pid")"; wait 2>/dev/null || true
# the login's lines: everything after the master was listening
tail -n +$(($(wc -l < "$W/log.before") + 1)) "$W/log" | grep '^T ' > "$W/trace" || true
awk '{print $3}' "$W/trace" | sort -u | sed 's/^/0x/' > "$W/addrs"
addr2line -f -e "$W/warrend" $(cat "$W/addrs") | paste - - |
	awk -v OFS='\t' '{split($2, a, ":"); n = split(a[1], p, "/"); print $1, p[n]}' > "$W/names"
paste "$W/addrs" "$W/names" | sed 's/^0x//' > "$W/map"
/usr/bin/python3 - "$W/trace" "$W/map" <<'PY'
import sys
m = {}
for line in open(sys.argv[2]):
    a, fn, f = line.rstrip("\n").split("\t")
    m[a] = (fn, f)
order, procs = [], {}
for line in open(sys.argv[1]):
    _, pid, a = line.split()
    fn, f = m.get(a, ("?", "?"))
    if f.endswith(".c") and f != "trace.c":
        procs.setdefault(pid, []).append(f)
FLOW = {"main.c", "master.c", "accept.c", "children.c", "conn.c", "monauth.c", "moncheck.c",
        "monitor.c", "monitor_wrap.c", "chanspawn.c", "preauth.c", "session.c", "channel.c",
        "chanreq.c", "chanpump.c", "chanfwd.c", "reattach.c", "envd.c", "envd_wrap.c",
        "envmon.c", "envproc.c", "proxy.c"}
flow_files, flow_re = set(), 0
for pid, seq in procs.items():
    fl = [f for f in seq if f in FLOW]
    runs = [f for i, f in enumerate(fl) if i == 0 or fl[i - 1] != f]
    flow_files |= set(fl)
    flow_re += len(runs) - len(set(runs))
    print(f"process {pid} (login files only): " + " > ".join(runs))
print(f"login files only: {len(flow_files)} files, {flow_re} re-entries")
files, reentries = set(), 0
for pid, seq in procs.items():
    runs = [f for i, f in enumerate(seq) if i == 0 or seq[i - 1] != f]
    count = {}
    for f in runs:
        count[f] = count.get(f, 0) + 1
    again = {f: n for f, n in count.items() if n > 1}
    files |= set(seq)
    reentries += sum(n - 1 for n in again.values())
    print(f"process {pid}: {len(set(seq))} files; re-entered: " +
          (", ".join(f"{f} x{n}" for f, n in sorted(again.items(), key=lambda x: -x[1])) or "none"))
    print("  " + " > ".join(runs))
print(f"login: {len(procs)} processes, {len(files)} files, {reentries} re-entries")
PY
