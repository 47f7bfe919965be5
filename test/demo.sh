#!/usr/bin/env bash
# The README's first command: installs what is missing, builds nook, and (as
# root) creates the unprivileged user nookdemo; then, as that user (or as you),
# imports a busybox image and runs a container that shows its isolation.
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

# What the user runs; $1 is the directory holding nook, $2 is lib.sh.
# shellcheck disable=SC2016
demo='
set -euo pipefail
dir=$1
. "$2"
export PATH=$dir:$PATH
show() { printf "\n$ %s\n" "$*"; "$@"; }
tar=$(mktemp --suffix=.tar)
trap "rm -f $tar" EXIT
nook_busybox_tar "$tar"
if nook images | awk "NR > 1 && (\$1 == \"demo\" || \$1 == \"localhost/demo\") && \$2 == \"latest\" { found = 1 } END { exit !found }"; then
	nook rmi demo >/dev/null
fi
show nook import "$tar" demo
show nook images
show nook run --rm demo sh -c "echo \"uid: \$(id -u) pid: \$\$ host: \$(hostname)\"; cat /proc/self/uid_map; ps"
show nook info
'

if [ "$(id -u)" -ne 0 ]; then
	exec bash -c "$demo" demo "$repo/bin" "$repo/test/lib.sh"
fi

NOOK_TEST_USER=$(nook_setup_user nookdemo)
home=$(getent passwd "$NOOK_TEST_USER" | cut -d: -f6)
dir=$home/nook-demo
install -d -m 0755 -o "$NOOK_TEST_USER" -g "$(id -g "$NOOK_TEST_USER")" "$dir"
install -m 0755 bin/nook bin/nook-runtime "$dir/"
install -m 0644 test/lib.sh "$dir/lib.sh"
nook_log "running the demo as $NOOK_TEST_USER (nook installed in $dir)"
cd "$dir"
nook_as_user bash -c "$demo" demo "$dir" "$dir/lib.sh"
