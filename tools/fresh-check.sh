#!/bin/bash
# tools/fresh-check.sh - prove the README's set-up on a bare Debian 12: build a
# minimal bookworm root with debootstrap, enter it as its own mount and PID
# namespace (pivot_root, not chroot, so tenants' unprivileged user namespaces
# still work), copy the committed tree in, run `make demo`,
# log in with the ssh command it prints, then run `make check`.
# Needs root and Debian's archive. Not part of `make check` (it takes minutes).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FRESH=${FRESH_DIR:-/var/tmp/warren-fresh}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
LOG=${FRESH_LOG:-$ROOT/build/fresh-check.log}

[ "$(id -u)" -eq 0 ] || { echo "fresh-check: run as root" >&2; exit 1; }
mkdir -p "$(dirname "$LOG")"
exec > >(tee "$LOG") 2>&1
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

echo "== $(date -u +%FT%TZ) fresh-check: minimal Debian 12 root in $FRESH"
rm -rf "$FRESH"
debootstrap --variant=minbase bookworm "$FRESH" "$MIRROR" >/dev/null
cp /etc/resolv.conf "$FRESH/etc/resolv.conf"
# what Debian's installer writes and debootstrap does not
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$FRESH/etc/hosts"
cat > "$FRESH/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
# the committed tree, as a fresh clone sees it
git clone -q "$ROOT" "$FRESH/root/warren"

# Inside: what a newcomer types. make itself is the one thing they bring.
cat > "$FRESH/root/fresh-inside.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd /root/warren
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends make >/dev/null
echo "== make demo"
make demo > /root/demo.log 2>&1 &
demo=$!
for _ in $(seq 900); do
	grep -q 'ssh -i' /root/demo.log && (exec 3<>/dev/tcp/127.0.0.1/2222) 2>/dev/null && break
	kill -0 $demo 2>/dev/null || { cat /root/demo.log; echo "fresh-check: make demo died"; exit 1; }
	sleep 1
done
cmd=$(grep -m1 -o 'ssh -i .*demo@127.0.0.1' /root/demo.log)
echo "== login: $cmd"
out=$($cmd -o BatchMode=yes -o UserKnownHostsFile=/root/known_hosts \
	'echo logged-in-as=$(id -un); warren-hello; echo kept > kept.txt')
echo "$out"
grep -qx 'logged-in-as=demo' <<<"$out" && grep -qx 'hello from the offline profile' <<<"$out" \
	|| { echo "fresh-check: demo login failed"; tail -20 /root/demo.log; exit 1; }
out=$($cmd -o BatchMode=yes -o UserKnownHostsFile=/root/known_hosts 'cat kept.txt')
[ "$out" = kept ] || { echo "fresh-check: workspace did not persist"; exit 1; }
kill $demo; wait $demo 2>/dev/null || true
echo "== make check (CI=true, no stdin)"
CI=true make check < /dev/null
echo "== fresh-check: demo login and make check passed"
EOF
chmod +x "$FRESH/root/fresh-inside.sh"

echo "== entering the fresh root"
# Its own mount and PID namespace with a plain /proc (no overmounts: the
# tenants' unprivileged bwrap must be allowed to mount proc inside it), the
# host's /dev and /sys (cgroups), and pivot_root into the fresh root.
rc=0
unshare --mount --pid --fork --propagation private /bin/bash -c '
	set -e
	R=$1
	mount --rbind "$R" "$R"
	mount -t proc proc "$R/proc"
	mount --rbind /dev "$R/dev"
	mount --rbind /sys "$R/sys"
	mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
	mount -t tmpfs -o mode=755 tmpfs "$R/run"
	mkdir -p "$R/.oldroot"
	cd "$R"
	pivot_root . .oldroot
	umount -l /.oldroot
	cd /root
	exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM=dumb /root/fresh-inside.sh
' fresh "$FRESH" || rc=$?
echo "== $(date -u +%FT%TZ) fresh-check: exit $rc (log: $LOG)"
exit $rc
