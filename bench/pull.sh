#!/usr/bin/env bash
# make bench (called by bench/run.sh at its end): time `nook pull` of a ~170 MB, three-layer
# image from a local registry (Debian's docker-registry on 127.0.0.1, plain HTTP), and
# `nook load` of the same image as a docker-archive, each into an empty store; with
# BENCH_PODMAN=1 (podman installed if missing) rootless Podman does the same in the same run.
#
# As root it installs what is missing and measures as the unprivileged test user.
# Results: bench/results/pull.json and a table on stdout. Knobs: BENCH_PULL_RUNS (default 3),
# BENCH_PODMAN (1: add Podman; 0 or unset: nook only).
# store and podman_args print words meant to be split; the *_pull/*_load functions run via measure.
# shellcheck disable=SC2046,SC2317
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
# shellcheck source-path=SCRIPTDIR source=../test/lib.sh
. "$repo/test/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$bench_dir/lib.sh"

runs=${BENCH_PULL_RUNS:-3}
podman=${BENCH_PODMAN:-0}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_PULL_RUNS must be a positive number" >&2; exit 2; }

if [[ ${1:-} != --measure ]]; then
	bench_as_user pull "docker-registry jq" "$runs" "$podman"
fi

# ---- as the measuring user ------------------------------------------------------------
result=$2 runs=${3:-$runs} podman=${4:-$podman}
nook=$repo/bin/nook
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench-pull.XXXXXX")
podman_xdg=$work/podman-xdg
# Podman refuses a run root longer than 50 characters: its run roots go in a short folder.
prun=$(mktemp -d /tmp/npr.XXXXXX)
reg_pid=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	[[ -n $reg_pid ]] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
	# Rootless podman leaves a pause process holding its user namespace: stop the one it made.
	local pid
	pid=$(cat "$podman_xdg/libpod/tmp/pause.pid" 2>/dev/null) || true
	if [[ $pid =~ ^[0-9]+$ ]]; then kill "$pid" 2>/dev/null || true; fi
	rm -rf "$prun" 2>/dev/null || unshare --map-root-user --map-auto rm -rf "$prun" 2>/dev/null || true
	rm -rf "$work" 2>/dev/null || unshare --map-root-user --map-auto rm -rf "$work" 2>/dev/null ||
		echo "bench: could not remove $work" >&2
}
trap cleanup EXIT

# The image: busybox, then two layers of ~85 MB each of pseudo-random files (half of each
# file repeats, so gzip has something to do, as with real layers).
mkdir -p "$work/img" "$work/l2/data" "$work/l3/data"
nook_busybox_tar "$work/img/l1.tar"
for l in l2 l3; do
	for i in $(seq 1 17); do
		head -c 2500000 /dev/urandom >"$work/$l/data/part$i"
		cat "$work/$l/data/part$i" "$work/$l/data/part$i" >"$work/$l/data/file$i"
		rm "$work/$l/data/part$i"
	done
	tar -C "$work/$l" --numeric-owner --owner=0 --group=0 -cf "$work/img/$l.tar" data
done
diffs=() layers=()
for l in l1 l2 l3; do
	d=$(sha256sum "$work/img/$l.tar" | cut -d' ' -f1)
	mkdir -p "$work/arch/$d"
	mv "$work/img/$l.tar" "$work/arch/$d/layer.tar"
	diffs+=("\"sha256:$d\"")
	layers+=("\"$d/layer.tar\"")
done
arch=$(uname -m)
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
cfg=$(printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
	"$arch" "$(IFS=,; echo "${diffs[*]}")")
cfgd=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
printf '%s' "$cfg" >"$work/arch/$cfgd.json"
printf '[{"Config":"%s.json","RepoTags":["big:1"],"Layers":[%s]}]' "$cfgd" "$(IFS=,; echo "${layers[*]}")" >"$work/arch/manifest.json"
tar -C "$work/arch" -cf "$work/big.tar" .
size_mb=$(($(stat -c %s "$work/big.tar") / 1000000))

# The registry, on a free port.
port=
for _ in 1 2 3 4 5; do
	p=$((20000 + RANDOM % 40000))
	cat >"$work/registry.yml" <<-EOF
		version: 0.1
		log:
		  level: error
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $work/registry
		http:
		  addr: 127.0.0.1:$p
	EOF
	docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
	reg_pid=$!
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$p/v2/" >/dev/null 2>&1 || (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			port=$p
			break
		fi
		kill -0 "$reg_pid" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n $port ]] && break
	kill "$reg_pid" 2>/dev/null || true
	reg_pid=
done
[[ -n $port ]] || { echo "bench: docker-registry did not start: $(cat "$work/registry.log")" >&2; exit 1; }
ref=127.0.0.1:$port/bench/big:1

store() { # store NAME: a fresh nook store's environment
	mkdir -p "$work/$1/data" "$work/$1/run"
	chmod 0700 "$work/$1/run"
	echo "XDG_DATA_HOME=$work/$1/data XDG_RUNTIME_DIR=$work/$1/run"
}
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

# Seed the registry from a store that loads the archive.
env $(store seed) "$nook" load -q -i "$work/big.tar" >/dev/null
env $(store seed) "$nook" push -q big:1 "$ref" >/dev/null

declare -A times
measure() { # measure ROW COMMAND...: run in a fresh store each time; keeps the median
	local row=$1 i t0 t1 list=()
	shift
	for i in $(seq 1 "$runs"); do
		local s="$row-$i"
		t0=$(now)
		"$@" "$s" >/dev/null 2>"$work/$row.err" || { echo "bench: $row failed: $(cat "$work/$row.err")" >&2; return 1; }
		t1=$(now)
		list+=("$(ms "$t0" "$t1")")
	done
	times[$row]=$(printf '%s\n' "${list[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
	echo "bench: $row: ${list[*]} ms (median ${times[$row]} ms)"
}
nook_pull() { env $(store "$1") "$nook" pull -q "$ref"; }
nook_load() { env $(store "$1") "$nook" load -q -i "$work/big.tar"; }
# Rootless podman as the same user, in a store of its own per run, with its own runtime directory.
podman_args() { echo "--root $work/$1/podman --runroot $prun/$1 --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime $(command -v runc || echo runc)"; }
podmanw() { mkdir -p "$podman_xdg" && chmod 0700 "$podman_xdg" && XDG_RUNTIME_DIR=$podman_xdg podman "$@"; }
podman_pull() { mkdir -p "$work/$1"; podmanw $(podman_args "$1") pull -q --tls-verify=false "$ref"; }
podman_load() { mkdir -p "$work/$1"; podmanw $(podman_args "$1") load -q -i "$work/big.tar"; }

echo "bench: image of $size_mb MB (3 layers) at $ref; $runs run(s) per row, each into an empty store"
rc=0
measure nook-pull nook_pull || rc=1
measure nook-load nook_load || rc=1
if [[ $podman == 1 ]]; then
	measure podman-pull podman_pull || rc=1
	measure podman-load podman_load || rc=1
fi

{
	printf '{"image_mb":%s,"layers":3,"runs":%s' "$size_mb" "$runs"
	for k in "${!times[@]}"; do printf ',"%s_ms":%s' "$k" "${times[$k]}"; done
	printf '}\n'
} >"$result"
printf '%-14s %10s\n' ROW "MEDIAN ms"
for k in nook-pull nook-load podman-pull podman-load; do
	[[ -n ${times[$k]:-} ]] && printf '%-14s %10s\n' "$k" "${times[$k]}"
done
if [[ -n ${times[podman-pull]:-} && -n ${times[nook-pull]:-} ]]; then
	awk -v n="${times[nook-pull]}" -v p="${times[podman-pull]}" 'BEGIN { printf "pull: nook/podman = %.2f\n", n / p }'
	awk -v n="${times[nook-load]}" -v p="${times[podman-load]}" 'BEGIN { printf "load: nook/podman = %.2f\n", n / p }'
fi
exit "$rc"
