#!/bin/bash
# tools/profiles.sh - build, as root, the profiles whose inputs are downloads
# pinned by hash (fixed-output), so that the builds warrend runs at login are
# offline. `make check` runs it (the agent tests use claude-code); `make demo`
# does not need it. Not root: nothing to do, warrend builds them at first login.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFETCH=(claude-code)
if [ "$(id -u)" -eq 0 ]; then
	for p in "${PREFETCH[@]}"; do
		nix --extra-experimental-features 'nix-command flakes' build --no-link \
			--no-write-lock-file --option substituters '' "path:$ROOT/nix-profiles/$p" ||
			{ echo "warren: could not build profile $p (its pinned download?)" >&2; exit 1; }
	done
fi
