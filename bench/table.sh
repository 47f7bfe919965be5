#!/usr/bin/env bash
# Prints the table of a bench results file (default bench/results/latest.json): per row the
# median, mean ± standard deviation, and the median as a ratio of bubblewrap's and unshare's.
set -euo pipefail
export LC_ALL=C.UTF-8 # ${#s} then counts characters, so "±" and "×" keep the columns aligned
file=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/results/latest.json}

# row NAME MEDIAN MEAN±SD VS_BWRAP VS_UNSHARE: right-aligned columns, padded by characters.
row() {
	local w=(-22 10 18 9 10) i=0 s pad
	for s in "$@"; do
		pad=$((${w[i]#-} - ${#s}))
		((pad > 0)) || pad=0
		if ((w[i] < 0)); then printf '%s%*s' "$s" "$pad" ''; else printf ' %*s%s' "$pad" '' "$s"; fi
		i=$((i + 1))
	done
	printf '\n'
}
echo
jq -r '"start latency, \(.hyperfine.runs) runs each (+\(.hyperfine.warmup) warm-up), " +
	"\(.host.cpus) CPUs, kernel \(.host.kernel), as \(.host.user)" +
	(if .nook_auto_rootfs_mode then "; nook auto mode = \(.nook_auto_rootfs_mode)" else "" end)' "$file"
jq -r '.host.loadavg_1min as $l | if ($l.before > .host.cpus / 2) then
	"note: the machine was busy (1-minute load \($l.before) on \(.host.cpus) CPUs): figures are noisier" else empty end' "$file"
row tool "median ms" "mean ± σ ms" "×bwrap" "×unshare"
row "----" "---------" "-----------" "------" "--------"
jq -r '.rows[] | [.name, (.median_ms * 10 | round / 10 | tostring),
	"\(.mean_ms * 10 | round / 10) ± \(.stddev_ms * 10 | round / 10)",
	(.vs_bwrap // "-" | tostring), (.vs_unshare // "-" | tostring)] | @tsv' "$file" |
	while IFS=$'\t' read -r name median meansd vb vu; do
		row "$name" "$median" "$meansd" "$vb" "$vu"
	done
jq -r '.failed[] | "\(.name): FAILED (exit \(.exit_code)), see the error above or in .failed"' "$file"
echo
jq -r '.goal | if .value == null then "headline nook/bwrap: not measured"
	else "headline nook/bwrap = \(.value)× (goal ≤ \(.max)×: " +
		(if .met then "met" else "not met" end) + ")" end' "$file"
