#!/usr/bin/env bash
# The README's first command: installs what is missing, builds nook, and (as
# root) creates the unprivileged user nookdemo; then, as that user (or as you),
# imports a busybox base image, builds an image on it from a Dockerfile, shows a container's
# isolation and serves a page from a detached container with a published port.
# Running it again is fine.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib.sh
. "$repo/test/lib.sh"
cd "$repo"

nook_install_deps
nook_require_go
nook_log "building nook"
make build

if [ "$(id -u)" -ne 0 ]; then
	exec bash "$repo/test/demo-user.sh" "$repo/bin" "$repo/test/lib.sh"
fi

NOOK_TEST_USER=$(nook_setup_user nookdemo)
home=$(getent passwd "$NOOK_TEST_USER" | cut -d: -f6)
dir=$home/nook-demo
install -d -m 0755 -o "$NOOK_TEST_USER" -g "$(id -g "$NOOK_TEST_USER")" "$dir"
install -m 0755 bin/nook bin/nook-engine bin/nook-engine-lean bin/nook-runtime bin/nook-idle bin/nook-pause bin/nook-init "$dir/"
install -m 0644 test/lib.sh "$dir/lib.sh"
install -m 0755 test/demo-user.sh "$dir/demo-user.sh"
nook_log "running the demo as $NOOK_TEST_USER (nook installed in $dir)"
cd "$dir"
nook_as_user bash "$dir/demo-user.sh" "$dir" "$dir/lib.sh"
