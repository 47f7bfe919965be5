#!/usr/bin/env bash
# make bench: start latency of `nook run --rm --network none demo /bin/true` against bubblewrap
# and `unshare -Urmpf` on the same busybox root filesystem, measured in one run with hyperfine
# and reported as ratios (absolute times depend on the machine; the ratios are the result).
#
# As root it installs what is missing and measures as the unprivileged test user; as a normal
# user it measures as that user. Results: bench/results/latest.json and a table on stdout.
# The exit status is non-zero when a tool failed to run, never because a figure is high.
#
# Knobs (environment):
#   BENCH_ONLY=LIST    comma-separated rows to measure, or a group: refs (bwrap,unshare),
#                      nook (every nook row). Rows: nook nook-fuse-overlayfs nook-copy
#                      nook-help nook-images bwrap unshare podman. Default: all except podman unless enabled.
#   BENCH_RUNS=N       timed runs per row (default 40, at least 30)
#   BENCH_WARMUP=N     untimed warm-up runs per row (default 5)
#   BENCH_PODMAN=1     install podman (and runc) and add a rootless Podman row; =0 never add it;
#                      unset: add it only when podman is already installed.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
# shellcheck source-path=SCRIPTDIR source=../test/lib.sh
. "$repo/test/lib.sh"

runs=${BENCH_RUNS:-40}
warmup=${BENCH_WARMUP:-5}
only=${BENCH_ONLY:-}
podman=${BENCH_PODMAN:-}

if ! [[ $runs =~ ^[0-9]+$ && $runs -ge 30 ]]; then
	echo "bench: BENCH_RUNS must be a number >= 30 (got '$runs')" >&2
	exit 2
fi
if ! [[ $warmup =~ ^[0-9]+$ ]]; then
	echo "bench: BENCH_WARMUP must be a number (got '$warmup')" >&2
	exit 2
fi
case $podman in
'' | 0 | 1) ;;
*)
	echo "bench: BENCH_PODMAN must be 0 or 1 (got '$podman')" >&2
	exit 2
	;;
esac

# Expand BENCH_ONLY into the list of rows; podman joins by default only when installed.
all_rows="nook nook-fuse-overlayfs nook-copy nook-help nook-images bwrap unshare podman"
rows=""
if [[ -z $only ]]; then
	rows="nook nook-fuse-overlayfs nook-copy nook-help nook-images bwrap unshare"
	if [[ $podman == 1 ]] || { [[ -z $podman ]] && command -v podman >/dev/null; }; then
		rows="$rows podman"
	fi
else
	for r in ${only//,/ }; do
		case $r in
		refs) rows="$rows bwrap unshare" ;;
		nook) rows="$rows nook nook-fuse-overlayfs nook-copy nook-help nook-images" ;;
		*)
			if [[ " $all_rows " != *" $r "* ]]; then
				echo "bench: unknown row '$r' in BENCH_ONLY (rows: $all_rows; groups: refs nook)" >&2
				exit 2
			fi
			rows="$rows $r"
			;;
		esac
	done
	if [[ $podman == 0 ]]; then rows=${rows//podman/}; fi
fi
# shellcheck disable=SC2086 # one row name per word
rows=$(printf '%s\n' $rows | awk '!seen[$0]++' | tr '\n' ' ')
rows=${rows% }
[[ -n $rows ]] || { echo "bench: no rows selected" >&2; exit 2; }

if [[ " $rows " == *" nook"* ]]; then
	for b in nook nook-engine nook-engine-lean nook-runtime; do
		if [[ ! -x $repo/bin/$b ]]; then
			echo "bench: $repo/bin/$b is missing; run 'make build' first (or BENCH_ONLY=refs)" >&2
			exit 2
		fi
	done
fi

deps="hyperfine bubblewrap jq"
[[ " $rows " == *" podman "* ]] && deps="$deps podman runc"
# shellcheck disable=SC2086
nook_install_deps $deps

if [[ $(id -u) -eq 0 ]]; then
	user=$(nook_setup_user "$NOOK_TEST_USER")
	# nook_setup_user sets it in its own subshell only; nook_as_user reads it.
	# shellcheck disable=SC2034
	NOOK_TEST_USER=$user
else
	user=$(id -un)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench.XXXXXX")
chmod 0755 "$work"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	# Layers unpacked in the user namespace belong to subordinate IDs: as a normal user only a
	# process with the same mapping can remove them.
	nook_stop_pauses "$work"
	rm -rf "$work" 2>/dev/null ||
		unshare --map-root-user --map-auto rm -rf "$work" 2>/dev/null ||
		echo "bench: could not remove $work" >&2
}
trap cleanup EXIT

nook_busybox_tar "$work/busybox.tar" >/dev/null
{
	printf 'runs=%q\nwarmup=%q\nrows=%q\nrepo=%q\n' "$runs" "$warmup" "$rows" "$repo"
} >"$work/config"
if [[ $(id -u) -eq 0 ]]; then
	chown -R "$user:" "$work"
fi

echo "bench: user $user, rows: $rows; $runs runs + $warmup warm-up each"
rc=0
nook_as_user bash "$bench_dir/start-latency.sh" "$work" || rc=$?

if [[ -s $work/latest.json ]]; then
	mkdir -p "$bench_dir/results"
	cp "$work/latest.json" "$bench_dir/results/latest.json"
	echo "bench: results written to bench/results/latest.json"
else
	echo "bench: no results were produced" >&2
	[[ $rc -ne 0 ]] || rc=1
fi

# Pull of a ~170 MB image from a local registry and load of the same archive (bench/pull.sh).
bash "$bench_dir/pull.sh" || rc=$?

# nook build cold and fully cached, and a RUN step against nook run (bench/build.sh).
bash "$bench_dir/build.sh" || rc=$?

# run -d + stop + rm cycle time and the memory an idle detached container adds (bench/lifecycle.sh).
bash "$bench_dir/lifecycle.sh" || rc=$?

# Network throughput: container→host and host→published port per backend (bench/net.sh).
bash "$bench_dir/net.sh" || rc=$?
exit "$rc"
