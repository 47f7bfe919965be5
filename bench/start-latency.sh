#!/usr/bin/env bash
# The measuring half of bench/run.sh, run as the unprivileged user in WORKDIR (which holds
# busybox.tar and config). Every row starts a no-op container on the same busybox root
# filesystem; each command is checked once, then timed with hyperfine. Writes
# WORKDIR/latest.json and prints the table. Exit 1 when any row failed to run.
set -euo pipefail

work=${1:?usage: start-latency.sh WORKDIR}
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
. "$work/config"
: "${repo:?}" "${rows:?}" "${runs:?}" "${warmup:?}"
cd "$work"

nook=$repo/bin/nook
rootfs=$work/rootfs
export XDG_DATA_HOME=$work/data
mkdir -p "$XDG_DATA_HOME" "$work/hf" "$work/failed"

has_row() { [[ " $rows " == *" $1 "* ]]; }

# fail NAME COMMAND EXIT OUTPUT: record a row that could not be run, and show why.
fail() {
	printf '%s\n' "$2" >"$work/failed/$1.cmd"
	printf '%s\n' "$3" >"$work/failed/$1.rc"
	printf '%s' "$4" >"$work/failed/$1.err"
	echo "bench: FAILED $1 (exit $3): $2" >&2
	printf '    %s\n' "${4//$'\n'/$'\n'    }" >&2
}

# One root filesystem directory for bubblewrap and unshare, unpacked from the tarball nook
# imports, so every row runs the same /bin/true.
mkdir -p "$rootfs"
tar -xf busybox.tar -C "$rootfs"
mkdir -p "$rootfs/proc" "$rootfs/dev" "$rootfs/sys"

# name|command: each command is split on blanks (hyperfine -N, no shell in the measurement).
declare -A cmd
chroot=$(PATH=$PATH:/usr/sbin:/sbin command -v chroot) || chroot=chroot # in sbin, often not on a user's PATH
cmd[unshare]="unshare -Urmpf --mount-proc=$rootfs/proc $chroot $rootfs /bin/true"
# bubblewrap as close to nook's isolation as it gets: every namespace, uid 0, own hostname,
# fresh /proc, minimal /dev, /sys read-only, killed with its parent.
cmd[bwrap]="bwrap --unshare-all --die-with-parent --uid 0 --gid 0 --hostname bench --bind $rootfs / --proc /proc --dev /dev --ro-bind /sys /sys /bin/true"
cmd[nook]="$nook run --rm --network none demo /bin/true"
cmd[nook-fuse-overlayfs]="$nook --root $work/store-fuse --runroot $work/run-fuse --rootfs-mode fuse-overlayfs run --rm --network none demo /bin/true"
cmd[nook-copy]="$nook --root $work/store-copy --runroot $work/run-copy --rootfs-mode copy run --rm --network none demo /bin/true"
cmd[nook-help]="$nook --help"
# Entering the user namespace and opening the store, without a container.
cmd[nook-images]="$nook --root $work/store-images --runroot $work/run-images images"
# Podman keeps everything, its pause process's pid file included, under the work directory.
podman_xdg=$work/podman/xdg
podman_args="--root $work/podman/root --runroot $work/podman/run --cgroup-manager cgroupfs --events-backend file"
if command -v runc >/dev/null; then
	# crun 1.8 refuses to run on hybrid cgroup hosts; runc works everywhere here.
	podman_args="$podman_args --runtime $(command -v runc)"
fi
podman_cmd="env XDG_RUNTIME_DIR=$podman_xdg podman $podman_args"
if has_row podman; then
	mkdir -p "$podman_xdg"
	chmod 0700 "$podman_xdg"
	# Rootless podman leaves a pause process holding its user namespace: stop the one it made.
	stop_podman_pause() {
		local pid
		pid=$(cat "$podman_xdg/libpod/tmp/pause.pid" 2>/dev/null) || return 0
		if [[ $pid =~ ^[0-9]+$ ]]; then kill "$pid" 2>/dev/null || true; fi
	}
	trap stop_podman_pause EXIT
fi
cmd[podman]="$podman_cmd run --rm --network none localhost/demo /bin/true"

# Each extra nook row gets its own store and run root, so none reuses another's layers,
# mounts or probe results; the headline row runs as a user would, with the default run root.
declare -A import
import[nook-images]="$nook --root $work/store-images --runroot $work/run-images import busybox.tar demo"
import[nook]="$nook import busybox.tar demo"
import[nook-fuse-overlayfs]="$nook --root $work/store-fuse --runroot $work/run-fuse --rootfs-mode fuse-overlayfs import busybox.tar demo"
import[nook-copy]="$nook --root $work/store-copy --runroot $work/run-copy --rootfs-mode copy import busybox.tar demo"
import[podman]="$podman_cmd import busybox.tar demo"

auto_mode=""
if has_row nook; then
	auto_mode=$("$nook" info 2>/dev/null | awk '$1 == "rootfsMode:" { print $2; exit }') || true
fi

# Other work on the machine shifts every row; the ratios stand up to it better than the times.
load_before=$(cut -d' ' -f1 /proc/loadavg)
measured=()
for name in $rows; do
	if [[ -n ${import[$name]:-} ]]; then
		out=$(${import[$name]} 2>&1) || {
			rc=$?
			fail "$name" "${import[$name]}" "$rc" "$out"
			continue
		}
	fi
	# Check once, with the output kept: hyperfine would only say "non-zero exit code".
	out=$(${cmd[$name]} 2>&1 </dev/null) || {
		rc=$?
		fail "$name" "${cmd[$name]}" "$rc" "$out"
		continue
	}
	echo "bench: measuring $name"
	if ! hyperfine -N --style none --warmup "$warmup" --runs "$runs" \
		--command-name "$name" --export-json "$work/hf/$name.json" -- "${cmd[$name]}" \
		>"$work/hf/$name.log" 2>&1; then
		# A failure that the first check did not show: catch one with its output.
		out="$(cat "$work/hf/$name.log")"
		rc=1
		for _ in $(seq 20); do
			if ! o=$(${cmd[$name]} 2>&1 </dev/null); then
				rc=$?
				out="$out"$'\n'"$o"
				break
			fi
		done
		fail "$name" "${cmd[$name]}" "$rc" "intermittent failure during timing: $out"
		rm -f "$work/hf/$name.json"
		continue
	fi
	measured+=("$name")
done

# --rm must leave nothing behind, or later runs would measure a growing store.
if has_row nook && [[ " ${measured[*]} " == *" nook "* ]]; then
	left=$("$nook" ps -a -q 2>/dev/null | wc -l) || true
	if [[ ${left:-0} -ne 0 ]]; then
		echo "bench: warning: $left containers left in the store after 'run --rm'" >&2
	fi
fi

# Assemble latest.json: each row's hyperfine figures in ms and its ratios to the references.
failed_json=$(
	for f in "$work"/failed/*.cmd; do
		[[ -e $f ]] || continue
		n=$(basename "$f" .cmd)
		jq -n --arg name "$n" --rawfile command "$f" --rawfile rc "$work/failed/$n.rc" \
			--rawfile error "$work/failed/$n.err" \
			'{name: $name, command: ($command | rtrimstr("\n")), exit_code: ($rc | tonumber), error: $error}'
	done | jq -s .
)
jq -n \
	--slurpfile hf <(for n in "${measured[@]}"; do
		jq -c --arg cmd "${cmd[$n]}" '.results[0] + {full_command: $cmd}' "$work/hf/$n.json"
	done) \
	--argjson failed "$failed_json" \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg kernel "$(uname -r)" \
	--arg cpus "$(nproc)" \
	--arg load "$load_before $(cut -d' ' -f1 /proc/loadavg)" \
	--arg hyperfine "$(hyperfine --version | awk '{ print $2 }')" \
	--arg user "$(id -un)" \
	--arg auto_mode "$auto_mode" \
	--arg runs "$runs" --arg warmup "$warmup" \
	-f "$bench_dir/summary.jq" >"$work/latest.json"

bash "$bench_dir/table.sh" "$work/latest.json"

[[ $(jq '.failed | length' "$work/latest.json") -eq 0 ]]
