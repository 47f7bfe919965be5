# Shared by the bench scripts that measure as the unprivileged test user (build.sh, lifecycle.sh,
# pull.sh); sourced after test/lib.sh.

# bench_as_user NAME "DEPS" ARGS...: the outer half of bench/NAME.sh. It checks the binaries,
# installs DEPS (and podman with runc when BENCH_PODMAN=1), creates the test user when run as
# root, runs `bench/NAME.sh --measure RESULT ARGS...` as that user and keeps RESULT as
# bench/results/NAME.json. The knobs go as ARGS: nook_as_user starts the user with a clean
# environment. It exits with the measuring half's status.
bench_as_user() {
	local name=$1 deps=$2 b out rc=0
	shift 2
	for b in nook nook-engine nook-engine-lean nook-runtime nook-idle nook-pause nook-init; do
		[[ -x $repo/bin/$b ]] || { echo "bench: $repo/bin/$b is missing; run 'make build' first" >&2; exit 2; }
	done
	[[ ${BENCH_PODMAN:-0} == 1 ]] && deps="$deps podman runc"
	# shellcheck disable=SC2086
	nook_install_deps $deps
	if [[ $(id -u) -eq 0 ]]; then
		NOOK_TEST_USER=$(nook_setup_user "$NOOK_TEST_USER")
		export NOOK_TEST_USER
	fi
	out=$(mktemp "${TMPDIR:-/tmp}/nook-bench-$name.XXXXXX")
	chmod 0666 "$out"
	nook_as_user bash "$bench_dir/$name.sh" --measure "$out" "$@" || rc=$?
	if [[ -s $out ]]; then
		mkdir -p "$bench_dir/results"
		cp "$out" "$bench_dir/results/$name.json"
		echo "bench: $name results written to bench/results/$name.json"
	fi
	rm -f "$out"
	exit "$rc"
}
