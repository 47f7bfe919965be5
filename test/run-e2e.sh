#!/usr/bin/env bash
# The end-to-end suite against bin/nook (built by `make build`).
#
# As root (as CI runs it): installs the Debian packages the suite needs, creates
# an unprivileged user with subordinate IDs (NOOK_TEST_USER, default nooktest),
# compiles the suite and runs it as that user. As any other user: runs it as
# that user, which then needs its own /etc/subuid and /etc/subgid entries.
#
# Environment: NOOK_E2E_RUN (a -test.run pattern), NOOK_E2E_TIMEOUT (default 30m).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib.sh
. "$repo/test/lib.sh"
cd "$repo"

timeout=${NOOK_E2E_TIMEOUT:-30m}
args=(-test.v -test.count=1 -test.timeout "$timeout")
if [ -n "${NOOK_E2E_RUN:-}" ]; then
	args+=(-test.run "$NOOK_E2E_RUN")
fi

for b in bin/nook bin/nook-engine bin/nook-engine-lean bin/nook-runtime bin/nook-idle bin/nook-pause bin/nook-init; do
	if [ ! -x "$b" ]; then
		nook_err "$repo/$b is missing: run \`make build\` first"
		exit 1
	fi
done
nook_require_go

if [ "$(id -u)" -ne 0 ]; then
	export NOOK_BIN=$repo/bin/nook
	nook_install_deps || nook_log "continuing; the tests that need the missing packages will fail"
	set +e
	go test -count=1 -v -timeout "$timeout" ${NOOK_E2E_RUN:+-run "$NOOK_E2E_RUN"} ./test/e2e
	rc=$?
	set -e
	nook_log "end-to-end suite (as $(id -un)): exit $rc"
	exit "$rc"
fi

nook_install_deps
NOOK_TEST_USER=$(nook_setup_user "$NOOK_TEST_USER")
export NOOK_TEST_USER

tmp=$(mktemp -d /tmp/e2e-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

nook_log "compiling the suite"
go test -c -o "$tmp/e2e.test" ./test/e2e
chmod 0755 "$tmp/e2e.test"

# The user must reach bin/ (nook finds nook-runtime next to itself); when the
# repository is not readable to it, run a copy.
bindir=$repo/bin
if ! nook_as_user test -x "$bindir/nook" || ! nook_as_user test -x "$bindir/nook-runtime" || ! nook_as_user test -x "$bindir/nook-engine" || ! nook_as_user test -x "$bindir/nook-engine-lean"; then
	cp -a "$repo/bin" "$tmp/bin"
	chmod -R a+rX "$tmp/bin"
	bindir=$tmp/bin
fi
export NOOK_BIN=$bindir/nook

nook_log "running the suite as $NOOK_TEST_USER (uid $(id -u "$NOOK_TEST_USER")) against $NOOK_BIN"
cd "$tmp"
set +e
nook_as_user "$tmp/e2e.test" "${args[@]}"
rc=$?
set -e
nook_log "end-to-end suite (as $NOOK_TEST_USER): exit $rc"
exit "$rc"
