#!/usr/bin/env bash
# make bench (called by bench/run.sh at its end): the life of a detached container.
#   - cycle: `run -d` + `stop` + `rm` of a busybox container whose PID 1 handles SIGTERM,
#     wall time per cycle (median of BENCH_LIFECYCLE_RUNS);
#   - memory: the proportional set size (PSS, as smem reports it: the sum of Pss in
#     /proc/PID/smaps_rollup) that one idle detached container adds on top of its payload —
#     its monitor and any helper (slirp4netns with the default network, fuse-overlayfs) —
#     measured with --network none, with the default network, and with a published port (-p).
# With BENCH_PODMAN=1 (podman installed if missing) rootless Podman does the same in the same
# run (its conmon, and its pause process and slirp4netns/pasta where it starts them).
#
# As root it installs what is missing and measures as the unprivileged test user.
# Results: bench/results/lifecycle.json and a table. Knobs: BENCH_LIFECYCLE_RUNS (default 10),
# BENCH_PODMAN, BENCH_IDLE_SETTLE (seconds before the idle memory is read, default 130: past
# the collection Go forces every two minutes; the reading at 2 s is kept too).
# nook's monitor becomes nook-idle (docs/decisions.md) 1 s after its container's last output
# (and, with -p, its forwarder's last connection or datagram), so the reading at 2 s is already
# of the idle monitor: the process list on stderr names what each measured process runs
# (/proc/PID/exe). With slirp4netns, slirp4netns itself (about
# 1.9 MB here) is in both tools' figures; in Podman's it shares glib's and libc's pages with
# conmon (PSS splits them), in nook's it shares them with nothing, so that row says less
# about the monitors than the --network none one.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
# shellcheck source-path=SCRIPTDIR source=../test/lib.sh
. "$repo/test/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$bench_dir/lib.sh"

runs=${BENCH_LIFECYCLE_RUNS:-10}
podman=${BENCH_PODMAN:-0}
settle=${BENCH_IDLE_SETTLE:-130}
[[ $settle =~ ^[0-9]+$ ]] || { echo "bench: BENCH_IDLE_SETTLE must be a number of seconds" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_LIFECYCLE_RUNS must be a positive number" >&2; exit 2; }

if [[ ${1:-} != --measure ]]; then
	bench_as_user lifecycle "jq" "$runs" "$podman" "$settle"
fi

# ---- as the measuring user ------------------------------------------------------------
result=$2 runs=${3:-$runs} podman=${4:-$podman} settle=${5:-$settle}
nook=$repo/bin/nook
work=$(mktemp -d "${TMPDIR:-/tmp}/lifecycle-bench.XXXXXX")
export XDG_DATA_HOME=$work/data
mkdir -p "$XDG_DATA_HOME"
podman_xdg=$work/podman/xdg
podmanw() {
	XDG_RUNTIME_DIR=$podman_xdg podman --root "$work/podman/root" --runroot "$work/podman/run" \
		--cgroup-manager cgroupfs --events-backend file --runtime "$(command -v runc || echo runc)" "$@"
}
cleanup() {
	"$nook" rm -f bench-idle >/dev/null 2>&1 || true
	if [[ -d $podman_xdg ]]; then
		podmanw rm -f bench-idle >/dev/null 2>&1 || true
		# Rootless podman leaves a pause process holding its user namespace: stop the one it made.
		pid=$(cat "$podman_xdg/libpod/tmp/pause.pid" 2>/dev/null) || true
		if [[ $pid =~ ^[0-9]+$ ]]; then kill "$pid" 2>/dev/null || true; fi
	fi
	rm -rf "$work" 2>/dev/null || unshare --map-root-user --map-auto rm -rf "$work" 2>/dev/null ||
		echo "bench: could not remove $work" >&2
}
trap cleanup EXIT

nook_busybox_tar "$work/busybox.tar"
"$nook" import "$work/busybox.tar" demo >/dev/null
payload='trap "exit 0" TERM; while :; do sleep 1 & wait $!; done'

now() { date +%s%N; }

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# cycle TOOL: run -d + stop + rm, milliseconds per cycle, one line per run
cycle() {
	local tool=$1 i t0 t1 id
	for ((i = 0; i < runs; i++)); do
		t0=$(now)
		id=$("$tool" run -d --network none demo sh -c "$payload")
		"$tool" stop -t 10 "$id" >/dev/null
		"$tool" rm "$id" >/dev/null
		t1=$(now)
		echo $(((t1 - t0) / 1000000))
	done
}

# pss PID...: the sum of Pss of the processes, in kB
pss() {
	local p sum=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# own_procs: pids of this user's processes, one per line
own_procs() { ps -u "$(id -u)" -o pid= | awk '{print $1}' | sort; }

# idle_pss TOOL NETWORK: the PSS of the processes one idle detached container adds, without
# its payload (the container's own processes, in the payload's PID namespace): 2 s after the
# start, and again after $settle s, when a Go process has been through the collection the
# runtime forces every two minutes. Prints "EARLY SETTLED" in kB. One container at a time, so
# no two measured processes share the pages of one binary (PSS would halve them).
idle_pss() {
	local tool=$1 net=$2 before after added p id payload_pids="" early settled
	shift 2
	before=$(own_procs)
	id=$("$tool" run -d --name bench-idle --network "$net" "$@" demo sh -c "$payload")
	sleep 2
	after=$(own_procs)
	added=$(comm -13 <(echo "$before") <(echo "$after"))
	local helpers=()
	for p in $added; do
		# The container's processes are in a PID namespace of their own (NSpid has two
		# entries); the rest are the tool's: monitor, network helper, pause process.
		if awk '/^NSpid:/ {exit !(NF > 2)}' "/proc/$p/status" 2>/dev/null; then
			payload_pids="$payload_pids $p"
			continue
		fi
		[[ -e /proc/$p ]] && helpers+=("$p")
	done
	local names=""
	for p in "${helpers[@]}"; do names="$names $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-40 | tr ' ' '_')[$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")]"; done
	early=$(pss "${helpers[@]}")
	echo "$early ${#helpers[@]}${names}" >&2
	if [[ $settle -gt 0 ]]; then
		sleep "$settle"
	fi
	settled=$(pss "${helpers[@]}")
	# Removed before the answer: the caller reads it and starts the next container at once.
	"$tool" rm -f "$id" >/dev/null
	echo "$early $settled"
}

declare -A cyc mem memnet mem0 memnet0 memport memport0
# A published port as well: nook's forwarder lives in the monitor (its host sockets cross into
# nook-idle, so it idles as the others do), Podman's in rootlessport.
port=$((20000 + RANDOM % 20000))
echo "bench: lifecycle: $runs cycles of run -d + stop + rm" >&2
cyc[nook]=$(cycle "$nook" | median)
read -r mem0[nook] mem[nook] < <(idle_pss "$nook" none)
read -r memnet0[nook] memnet[nook] < <(idle_pss "$nook" slirp4netns 2>/dev/null || echo null null)
read -r memport0[nook] memport[nook] < <(idle_pss "$nook" slirp4netns -p "127.0.0.1:$port:80" 2>/dev/null || echo null null)
tools="nook"
if [[ $podman == 1 ]] && command -v podman >/dev/null; then
	mkdir -p "$podman_xdg"
	chmod 0700 "$podman_xdg"
	podmanw import -q "$work/busybox.tar" demo >/dev/null
	cyc[podman]=$(cycle podmanw | median)
	read -r mem0[podman] mem[podman] < <(idle_pss podmanw none)
	read -r memnet0[podman] memnet[podman] < <(idle_pss podmanw slirp4netns 2>/dev/null || echo null null)
	read -r memport0[podman] memport[podman] < <(idle_pss podmanw slirp4netns -p "127.0.0.1:$port:80" 2>/dev/null || echo null null)
	tools="nook podman"
fi

{
	echo "{"
	first=1
	for t in $tools; do
		[[ $first == 1 ]] || echo ","
		first=0
		printf '  "%s": {"cycle_ms_median": %s, "idle_pss_kb": %s, "idle_pss_kb_slirp4netns": %s, "idle_pss_kb_published": %s, "idle_pss_kb_at_2s": %s, "idle_pss_kb_slirp4netns_at_2s": %s, "idle_pss_kb_published_at_2s": %s, "settle_s": %s}' \
			"$t" "${cyc[$t]}" "${mem[$t]}" "${memnet[$t]:-null}" "${memport[$t]:-null}" "${mem0[$t]}" "${memnet0[$t]:-null}" "${memport0[$t]:-null}" "$settle"
	done
	echo
	echo "}"
} >"$result"
printf '%-8s %12s %22s %30s %24s\n' tool "cycle (ms)" "idle PSS kB (at 2 s)" "idle PSS, slirp4netns (at 2 s)" "idle PSS, -p (at 2 s)"
for t in $tools; do
	printf '%-8s %12s %22s %30s %24s\n' "$t" "${cyc[$t]}" "${mem[$t]} (${mem0[$t]})" "${memnet[$t]:-n/a} (${memnet0[$t]:-n/a})" "${memport[$t]:-n/a} (${memport0[$t]:-n/a})"
done
echo "(idle PSS: ${settle} s after the start; in brackets: 2 s after it)"
echo "(with slirp4netns, slirp4netns itself is counted: in Podman's case it shares glib/libc pages with conmon, in nook's with nothing)"
echo "(with -p, the port forwarder is counted: nook's runs in the monitor, which idles with its host sockets as nook-idle; Podman's is rootlessport)"
if [[ $tools == "nook podman" ]]; then
	awk -v a="${cyc[podman]}" -v b="${cyc[nook]}" -v c="${mem[nook]}" -v d="${mem[podman]}" \
		'BEGIN {printf "nook vs podman: cycle %.1fx faster, idle memory %.0f%% of podman'"'"'s\n", a/b, 100*c/d}'
fi
