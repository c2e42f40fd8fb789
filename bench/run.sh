#!/bin/bash
# bench/run.sh - entry point for `make bench`; see bench/run.py.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
