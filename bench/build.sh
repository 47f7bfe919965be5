#!/usr/bin/env bash
# make bench (called by bench/run.sh at its end): `nook build` of the same Dockerfiles cold
# (a fresh store with only the base image) and fully cached (the same build again), and one
# RUN step against the same command in `nook run` (interleaved pairs: medians and their ratio);
# with BENCH_PODMAN=1 (podman installed if
# missing) rootless `podman build` does the same in the same run.
#
# Dockerfiles: "busybox" (the busybox image, ENV/WORKDIR/COPY of 300 files/RUN/CMD), and the
# lab text's apache Dockerfile on a Debian bookworm base when the end-to-end suite's mmdebstrap
# tarball is in /var/tmp/nook-test-cache (it needs the Debian mirror; BENCH_BUILD_DEBIAN=0
# skips it).
#
# As root it installs what is missing and measures as the unprivileged test user.
# Results: bench/results/build.json and a table. Knobs: BENCH_BUILD_RUNS (default 5),
# BENCH_BUILD_PAIRS (RUN step and nook run pairs, default 15), BENCH_PODMAN, BENCH_BUILD_DEBIAN.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
# shellcheck source-path=SCRIPTDIR source=../test/lib.sh
. "$repo/test/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$bench_dir/lib.sh"

runs=${BENCH_BUILD_RUNS:-5}
pairs=${BENCH_BUILD_PAIRS:-15}
podman=${BENCH_PODMAN:-0}
debian=${BENCH_BUILD_DEBIAN:-1}
debian_tar=/var/tmp/nook-test-cache/debian-bookworm-minbase.tar
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_BUILD_RUNS must be a positive number" >&2; exit 2; }
[[ $pairs =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_BUILD_PAIRS must be a positive number" >&2; exit 2; }

if [[ ${1:-} != --measure ]]; then
	bench_as_user build "jq" "$runs" "$podman" "$debian" "$pairs"
fi

# ---- as the measuring user ------------------------------------------------------------
result=$2 runs=${3:-$runs} podman=${4:-$podman} debian=${5:-$debian} pairs=${6:-$pairs}
nook=$repo/bin/nook
work=$(mktemp -d "${TMPDIR:-/tmp}/nook-bench-build.XXXXXX")
# Podman refuses a run root longer than 50 characters: its run roots get a short directory.
prun=$(mktemp -d /tmp/nbp.XXXXXX)
cleanup() {
	for d in "$work" "$prun"; do
		rm -rf "$d" 2>/dev/null || unshare --map-root-user --map-auto rm -rf "$d" 2>/dev/null ||
			echo "bench: could not remove $d" >&2
	done
}
trap cleanup EXIT

nook_busybox_tar "$work/busybox.tar"
run_cmd='for i in $(seq 1 200); do echo $i > /srv/out.$i; done; tar -cf /srv/all.tar /srv/app'
mkdir -p "$work/bb/app"
for i in $(seq 1 300); do head -c 2000 /dev/urandom >"$work/bb/app/f$i"; done
cat >"$work/bb/Dockerfile" <<EOF
FROM demo
ENV APP=/srv/app
WORKDIR /srv
COPY app/ /srv/app/
RUN $run_cmd
LABEL bench=1
CMD ["ls", "/srv"]
EOF
mkdir -p "$work/lab"
cat >"$work/lab/Dockerfile" <<'EOF'
FROM debian:bookworm
MAINTAINER Kto To Wie

RUN apt-get update && apt-get install -y apache2

EXPOSE 80

CMD apachectl -D FOREGROUND
EOF

store() { # store NAME: a nook store's environment
	mkdir -p "$work/$1/data" "$work/$1/run"
	chmod 0700 "$work/$1/run"
	echo "XDG_DATA_HOME=$work/$1/data XDG_RUNTIME_DIR=$work/$1/run"
}
podman_args() { echo "--root $work/$1/podman --runroot $prun/$1 --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime $(command -v runc || echo runc)"; }
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | sed -n "$(((runs + 1) / 2))p"; }
median_of() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

declare -A times
# measure ROW PREPARE BUILD: per run, PREPARE STORE (untimed), then BUILD STORE (timed).
measure() {
	local row=$1 prep=$2 cmd=$3 i t0 t1 list=()
	for i in $(seq 1 "$runs"); do
		local s="$row-$i"
		$prep "$s" >/dev/null 2>"$work/$row.err" || { echo "bench: $row (preparing) failed: $(tail -5 "$work/$row.err")" >&2; return 1; }
		t0=$(now)
		$cmd "$s" >"$work/$row.out" 2>"$work/$row.err" || { echo "bench: $row failed: $(tail -5 "$work/$row.err")" >&2; return 1; }
		t1=$(now)
		list+=("$(ms "$t0" "$t1")")
	done
	times[$row]=$(printf '%s\n' "${list[@]}" | median)
	echo "bench: $row: ${list[*]} ms (median ${times[$row]} ms)"
}

nook_base() { env $(store "$1") "$nook" import "$work/busybox.tar" demo; }
nook_cold() { env $(store "$1") "$nook" build -q -t bench "$work/bb"; }
nook_warm_prep() { nook_base "$1" && nook_cold "$1"; }
podman_base() { podman $(podman_args "$1") import -q "$work/busybox.tar" demo; }
podman_cold() { podman $(podman_args "$1") build -q --layers -t bench "$work/bb"; }
podman_warm_prep() { podman_base "$1" && podman_cold "$1"; }

rc=0
measure nook-busybox-cold nook_base nook_cold || rc=1
measure nook-busybox-cached nook_warm_prep nook_cold || rc=1
# One RUN step against `nook run` of the same command on the same files. "runbase" is an image
# of the Dockerfile's steps before its RUN (FROM, ENV, WORKDIR, COPY of the 300 files), and the
# step is the RUN of a Dockerfile `FROM runbase`: both make a container of the same image (same
# files, working directory, environment, default network) and run the same `sh -c` command in
# it. `nook run --rm` is timed from outside, as a user sees it (CLI, user namespace, engine,
# removal); the step as the build's output times it, from its STEP line to its result, read
# from the build's timing marks (NOOK_TIMING_LOG) in milliseconds rather than the 10 ms the
# output prints. The whole `nook build` of that two-line Dockerfile is timed too, for reference.
# Pairs are interleaved (run, build, run, build, ...) so that the machine's load falls on both
# alike; the result is step/run as the ratio of the medians and as the median of the pairs'
# ratios (each step against the run just before it), which a load that drifts during the
# bench moves less.
env $(store runstep) "$nook" import "$work/busybox.tar" demo >/dev/null
mkdir -p "$work/runbase" "$work/runstep"
cp -a "$work/bb/app" "$work/runbase/app"
sed -n '1,/^COPY /p' "$work/bb/Dockerfile" >"$work/runbase/Dockerfile"
env $(store runstep) "$nook" build -q -t runbase "$work/runbase" >/dev/null
printf 'FROM runbase\nRUN %s\n' "$run_cmd" >"$work/runstep/Dockerfile"
# step_ms MARKS: the step's interval, from the last "build step header" to the last "build step done".
step_ms() {
	awk '$3 == "build" && $4 == "step" && $5 == "header" { h = $6 }
		$3 == "build" && $4 == "step" && $5 == "done" { d = $6 }
		END { if (h == "" || d == "") exit 1; printf "%.0f\n", d - h }' "$1"
}
run_list=() step_list=() build_list=()
for i in $(seq 1 "$pairs"); do
	t0=$(now)
	env $(store runstep) "$nook" run --rm runbase sh -c "$run_cmd" >/dev/null 2>"$work/run.err" ||
		{ echo "bench: nook run of the RUN command failed: $(tail -5 "$work/run.err")" >&2; rc=1; break; }
	t1=$(now)
	run_list+=("$(ms "$t0" "$t1")")
	rm -f "$work/marks"
	t0=$(now)
	env $(store runstep) NOOK_TIMING=1 NOOK_TIMING_LOG="$work/marks" "$nook" build --no-cache -q "$work/runstep" >/dev/null 2>"$work/step.err" ||
		{ echo "bench: nook build of the RUN step failed: $(tail -5 "$work/step.err")" >&2; rc=1; break; }
	t1=$(now)
	build_list+=("$(ms "$t0" "$t1")")
	step=$(step_ms "$work/marks") || { echo "bench: no step marks in the build's timing log" >&2; rc=1; break; }
	step_list+=("$step")
done
if [[ ${#step_list[@]} -eq $pairs ]]; then
	times[nook-run-same-command]=$(median_of "${run_list[@]}")
	times[nook-build-run-step]=$(median_of "${step_list[@]}")
	times[nook-build-run-only]=$(median_of "${build_list[@]}")
	echo "bench: nook run of the RUN command:   ${run_list[*]} ms (median ${times[nook-run-same-command]})"
	echo "bench: the RUN step in nook build:    ${step_list[*]} ms (median ${times[nook-build-run-step]})"
	echo "bench: nook build FROM runbase + RUN: ${build_list[*]} ms (median ${times[nook-build-run-only]})"
	ratios=()
	for i in "${!step_list[@]}"; do
		ratios+=("$(awk -v s="${step_list[$i]}" -v r="${run_list[$i]}" 'BEGIN { printf "%.3f\n", s / r }')")
	done
	paired=$(median_of "${ratios[@]}")
fi

if [[ $podman == 1 ]]; then
	measure podman-busybox-cold podman_base podman_cold || rc=1
	measure podman-busybox-cached podman_warm_prep podman_cold || rc=1
fi

if [[ $debian == 1 && -r $debian_tar ]]; then
	deb_base() { env $(store "$1") "$nook" import "$debian_tar" debian:bookworm; }
	deb_cold() { env $(store "$1") "$nook" build -q -t lab "$work/lab"; }
	deb_warm_prep() { deb_base "$1" && deb_cold "$1"; }
	pdeb_base() { podman $(podman_args "$1") import -q "$debian_tar" debian:bookworm; }
	pdeb_cold() { podman $(podman_args "$1") build -q --layers -t lab "$work/lab"; }
	pdeb_warm_prep() { pdeb_base "$1" && pdeb_cold "$1"; }
	saved=$runs
	runs=1 # bound by the Debian mirror
	measure nook-lab-cold deb_base deb_cold || rc=1
	runs=$saved
	measure nook-lab-cached deb_warm_prep deb_cold || rc=1
	if [[ $podman == 1 ]]; then
		runs=1
		measure podman-lab-cold pdeb_base pdeb_cold || rc=1
		runs=$saved
		measure podman-lab-cached pdeb_warm_prep pdeb_cold || rc=1
	fi
elif [[ $debian == 1 ]]; then
	echo "bench: no $debian_tar (the end-to-end suite's TestBuildDebianApt makes it): the lab's apache Dockerfile is not measured" >&2
fi

{
	printf '{"runs":%s,"pairs":%s' "$runs" "$pairs"
	[[ -n ${paired:-} ]] && printf ',"run_step_paired_ratio":%s' "$paired"
	for k in "${!times[@]}"; do printf ',"%s_ms":%s' "$k" "${times[$k]}"; done
	printf '}\n'
} >"$result"
printf '%-24s %10s\n' ROW "MEDIAN ms"
for k in nook-busybox-cold nook-busybox-cached podman-busybox-cold podman-busybox-cached nook-run-same-command nook-build-run-step \
	nook-build-run-only nook-lab-cold nook-lab-cached podman-lab-cold podman-lab-cached; do
	[[ -n ${times[$k]:-} ]] && printf '%-24s %10s\n' "$k" "${times[$k]}"
done
if [[ -n ${times[nook-build-run-step]:-} ]]; then
	awk -v s="${times[nook-build-run-step]}" -v r="${times[nook-run-same-command]}" -v p="$paired" -v n="$pairs" \
		'BEGIN { printf "RUN step/nook run of the same command = %.2f (ratio of the medians), %.2f (median of the %d pairs'"'"' ratios); goal <= 1\n", s / r, p, n }'
fi
for w in busybox lab; do
	if [[ -n ${times[podman-$w-cached]:-} && -n ${times[nook-$w-cached]:-} ]]; then
		awk -v n="${times[nook-$w-cold]:-0}" -v p="${times[podman-$w-cold]:-1}" -v nc="${times[nook-$w-cached]}" -v pc="${times[podman-$w-cached]}" \
			-v w="$w" 'BEGIN { printf "%s: cold nook/podman = %.2f, cached nook/podman = %.2f\n", w, n / p, nc / pc }'
	fi
done
exit "$rc"
