#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is missing (as root),
# builds, runs the unit tests, then the end-to-end suite as an unprivileged user.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh
if [ "$(id -u)" = 0 ]; then
	nook_install_deps make gcc libc6-dev git ca-certificates
fi
nook_require_go
make build
make test-unit
NOOK_FUZZTIME=${NOOK_FUZZTIME:-10s} bash test/fuzz.sh
make test-e2e
