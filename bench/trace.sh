#!/usr/bin/env bash
# Where the start of `nook run --rm --network none demo /bin/true` spends its time:
#   1. Go package initialisation of bin/nook and bin/nook-runtime (GODEBUG=inittrace=1): the
#      floor each exec of a Go binary pays before main;
#   2. the stages of one start as nook's own processes mark them (NOOK_TIMING=1, internal/timing);
#   3. the timeline of one start under strace: every exec, clone, mount and pivot_root, in ms
#      since nook was started, and the time between consecutive execs.
# Run after `make build` (bash bench/trace.sh). As root it traces as the test user (strace -u,
# so the setuid newuidmap/newgidmap keep their privilege); as a normal user part 3 is skipped,
# because under an unprivileged tracer the setuid helpers lose it and nook would take another
# path. Figures vary between runs: read them as proportions.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
# shellcheck source-path=SCRIPTDIR source=../test/lib.sh
. "$repo/test/lib.sh"
nook=$repo/bin/nook
for b in nook nook-engine nook-engine-lean nook-runtime; do
	[[ -x $repo/bin/$b ]] || { echo "trace: $repo/bin/$b is missing; run 'make build'" >&2; exit 2; }
done

nook_install_deps strace
root=0
if [[ $(id -u) -eq 0 ]]; then
	root=1
	NOOK_TEST_USER=$(nook_setup_user "$NOOK_TEST_USER")
fi
user=${NOOK_TEST_USER:-$(id -un)}
[[ $root -eq 1 ]] || user=$(id -un)
uid=$(id -u "$user")

work=$(mktemp -d "${TMPDIR:-/tmp}/nook-trace.XXXXXX")
chmod 0755 "$work"
trap 'rm -rf "$work" 2>/dev/null || unshare --map-root-user --map-auto rm -rf "$work" 2>/dev/null || true' EXIT
nook_busybox_tar "$work/busybox.tar"
[[ $root -eq 0 ]] || chown -R "$user:" "$work"

as_user() { nook_as_user env XDG_DATA_HOME="$work/data" "$@"; }
as_user "$nook" import "$work/busybox.tar" demo >/dev/null
as_user "$nook" run --rm --network none demo /bin/true # warm the caches once

# inittrace lines: "init PKG @0.5 ms, 0.012 ms clock, 1024 bytes, 3 allocs". A new Go process
# starts with internal/bytealg; a process whose environment was cleared reports nothing.
inits() {
	awk '$1 != "init" { next }
		$2 == "internal/bytealg" { p++ }
		{ n[p]++; t[p] += $5; last[p] = substr($3, 2); if ($5 > 0.3) top = top sprintf("    %7.2f ms  %s\n", $5, $2) }
		END {
			for (i = 1; i <= p; i++)
				printf "  Go process %d: %d package inits, %.1f ms of init clock, last init at %s ms after exec\n", i, n[i], t[i], last[i]
			printf "%s", top
		}'
}
echo "== 1. Go start-up (GODEBUG=inittrace=1; inits over 0.3 ms listed)"
echo "bin/nook --help:"
as_user env GODEBUG=inittrace=1 "$nook" --help 2>&1 >/dev/null | inits
echo "bin/nook run --rm --network none demo /bin/true, every Go process that reports:"
as_user env GODEBUG=inittrace=1 "$nook" run --rm --network none demo /bin/true 2>&1 >/dev/null | inits
echo
echo "== 2. Stages of one start (NOOK_TIMING=1: every nook process marks its stages on one clock, ms)"
for i in 1 2 3; do
	as_user env NOOK_TIMING=1 "$nook" run --rm --network none demo /bin/true 2>&1 >/dev/null | grep '^timing:' >"$work/timing.$i"
done
# The median of three runs per stage, in the order the stages were reached.
cat "$work/timing."* | awk '{ st = $3; for (i = 4; i < NF; i++) st = st " " $i; print st "\t" $NF }' |
	sort -t "$(printf '\t')" -k1,1 -k2,2n | awk -F '\t' '{ v[$1] = v[$1] " " $2; n[$1]++ }
		END { for (s in v) { split(substr(v[s], 2), a, " "); printf "%8.2f  %s\n", a[int((n[s] + 1) / 2)], s } }' | sort -n
echo
echo "== 3. Timeline of one start (strace -f)"
if [[ $root -eq 0 ]]; then
	echo "skipped: needs root (see the header of bench/trace.sh)"
	exit 0
fi
home=$(getent passwd "$user" | cut -d: -f6)
env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	XDG_RUNTIME_DIR="/run/user/$uid" XDG_DATA_HOME="$work/data" LANG=C.UTF-8 \
	strace -u "$user" -f -ttt -qq -s 96 -o "$work/strace.txt" \
	-e trace=execve,clone,clone3,fork,vfork,mount,pivot_root,umount2,exit_group \
	"$nook" run --rm --network none demo /bin/true
awk '
	NR == 1 { t0 = $2; first = $1 }
	{ ms = ($2 - t0) * 1000 }
	/ execve\(/ {
		match($0, /execve\("[^"]*"/); exe = substr($0, RSTART + 8, RLENGTH - 9)
		gap = (lastexec == "") ? 0 : ms - lastexec; lastexec = ms; execd[$1] = 1
		printf "%8.2f ms  pid %-7s exec %s  (+%.2f ms since the previous exec)\n", ms, $1, exe, gap
		next
	}
	/ mount\(/ { n = ++mounts[$1]; if (n == 1) firstmount[$1] = ms; lastmount[$1] = ms; next }
	/ pivot_root\(/ { printf "%8.2f ms  pid %-7s pivot_root\n", ms, $1; next }
	/ exit_group\(/ && ($1 in execd || $1 == first) { printf "%8.2f ms  pid %-7s exit_group\n", ms, $1; next }
	END {
		for (p in mounts) printf "          pid %-7s %d mount calls from %.2f to %.2f ms\n", p, mounts[p], firstmount[p], lastmount[p]
		printf "%8.2f ms  last traced event\n", ms
	}' "$work/strace.txt"
echo "(strace slows every traced process down: compare the gaps with each other, not with the bench)"
