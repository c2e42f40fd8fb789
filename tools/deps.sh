#!/bin/bash
# tools/deps.sh - install the Debian 12 packages warren builds, tests and runs
# with. As root it installs what is missing; otherwise it names what to install.
set -euo pipefail

PKGS=(
	gcc make pkg-config libc6-dev clang-format
	libssh-dev libcap-dev libseccomp-dev libpam0g-dev libinih-dev libcmocka-dev libjson-c-dev libssl-dev
	bubblewrap nix-bin nix-setup-systemd openssh-client openssh-server openssh-sftp-server
	python3 python3-pytest python3-pexpect python3-asyncssh rsync git procps busybox-static curl openssl e2fsprogs man-db tmux
	libpam-wrapper libnss-wrapper
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
# npm (the e2e tests run it in a sandbox): Debian's, unless the host already
# has one (NodeSource's nodejs bundles npm and conflicts with Debian's npm)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "warren: missing Debian packages: ${missing[*]}" >&2
		echo "warren: run as root: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	echo "warren: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
