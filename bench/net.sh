#!/usr/bin/env bash
# Network throughput (issue 3): a TCP stream for BENCH_NET_SECONDS (default 5) container→host and
# host→published port, for each of nook's backends (slirp4netns with nook's port forwarder,
# slirp4netns' own forwarder, pasta, slirp4netns:bypass4netns=true: connect and bind on the host),
# member to member on a user network, against plain host
# loopback and, with BENCH_PODMAN=1, rootless Podman's slirp4netns (its default here, with
# rootlessport for published ports) and pasta. Both ends are the same static Go program (built here with
# CGO_ENABLED=0 and bind-mounted into the container), so every row measures the network path,
# not the tool. Prints Gbit/s and the ratio to host loopback; writes bench/results/net.json.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
# shellcheck source-path=SCRIPTDIR source=../test/lib.sh
. "$repo/test/lib.sh"

secs=${BENCH_NET_SECONDS:-5}
podman=${BENCH_PODMAN:-0}
deps="slirp4netns passt jq"
[[ $podman == 1 ]] && deps="$deps podman runc"
# shellcheck disable=SC2086
nook_install_deps $deps
nook_require_go

if [[ $(id -u) -eq 0 ]]; then
	user=$(nook_setup_user "$NOOK_TEST_USER")
	# shellcheck disable=SC2034
	NOOK_TEST_USER=$user
	chmod 0666 /dev/net/tun 2>/dev/null || true
else
	user=$(id -un)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nook-benchnet.XXXXXX")
chmod 0755 "$work"
# shellcheck disable=SC2317
cleanup() {
	rm -rf "$work" 2>/dev/null || unshare --map-root-user --map-auto rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$work/tool" "$work/src"
cat >"$work/src/main.go" <<'EOF'
// tput: "tput server ADDR" discards what each connection sends; "tput client ADDR SECONDS"
// sends for SECONDS and prints the rate in Gbit/s.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	switch os.Args[1] {
	case "server":
		l, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	case "client":
		secs, _ := strconv.Atoi(os.Args[3])
		var c net.Conn
		var err error
		for i := 0; i < 100; i++ { // the server may still be starting
			if c, err = net.Dial("tcp", os.Args[2]); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 128<<10)
		var n int64
		start := time.Now()
		end := start.Add(time.Duration(secs) * time.Second)
		for time.Now().Before(end) {
			m, err := c.Write(buf)
			n += int64(m)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		c.Close()
		fmt.Printf("%.2f\n", float64(n)*8/time.Since(start).Seconds()/1e9)
	}
}
EOF
(cd "$work/src" && CGO_ENABLED=0 GO111MODULE=off GOFLAGS= go build -o "$work/tool/tput" main.go)
nook_busybox_tar "$work/busybox.tar" >/dev/null
chmod -R a+rX "$work"
[[ $(id -u) -eq 0 ]] && chown -R "$user:" "$work"

cat >"$work/inner.sh" <<'EOF'
set -euo pipefail
work=$1 secs=$2 podman=$3 nook=$4
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 0700 "$XDG_RUNTIME_DIR"
tool=$work/tool/tput
"$nook" import "$work/busybox.tar" demo >/dev/null
hostip=$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
gw=$(ip -4 -o route show default | awk '{print $3; exit}')
port() { python3 -c 'import socket;s=socket.socket();s.bind(("",0));print(s.getsockname()[1])'; }
row() { printf '%s\t%s\t%s\n' "$1" "$2" "${3:-failed}" >>"$work/rows.tsv"; printf '%-44s %-14s %s\n' "$1" "$2" "${3:-failed}"; }

# host loopback
p=$(port); "$tool" server "127.0.0.1:$p" & srv=$!
row "host loopback" both "$("$tool" client "127.0.0.1:$p" "$secs" || true)"
kill $srv

# container -> host, per backend: a server on the host, the client in the container
for nw in slirp4netns slirp4netns:bypass4netns=true pasta:allow_host_loopback=true; do
	case $nw in
	slirp4netns*) dst=$hostip ;;        # slirp4netns reaches the host's own addresses
	pasta*) dst=$gw ;;                  # pasta maps the gateway to the host's loopback
	esac
	p=$(port); bind=0.0.0.0; [[ $nw == pasta* ]] && bind=127.0.0.1
	"$tool" server "$bind:$p" & srv=$!
	r=$("$nook" run --rm --network "$nw" -v "$work/tool:/t:ro" demo /t/tput client "$dst:$p" "$secs" 2>/dev/null || true)
	row "nook $nw" container-host "$r"
	kill $srv
done

# host -> published port, per backend: the server in the container, the client on the host
for nw in slirp4netns slirp4netns:port_handler=slirp4netns slirp4netns:bypass4netns=true pasta; do
	p=$(port)
	"$nook" run -d --name tput-srv --network "$nw" -v "$work/tool:/t:ro" -p "$p:5201" demo /t/tput server 0.0.0.0:5201 >/dev/null
	sleep 0.5
	# With bypass4netns the host port listens only once the server has bound and listened.
	hex=$(printf ':%04X' "$p")
	for _ in $(seq 50); do
		awk -v h="$hex" '$2 ~ h"$" && $4 == "0A" {f = 1} END {exit !f}' /proc/net/tcp /proc/net/tcp6 && break
		sleep 0.1
	done
	row "nook $nw" published "$("$tool" client "127.0.0.1:$p" "$secs" || true)"
	"$nook" rm -f tput-srv >/dev/null
done

# member -> member of a user network (nook network create): veth pairs on the keeper's bridge
"$nook" network create benchnet >/dev/null
"$nook" run -d --name tput-srv --network benchnet -v "$work/tool:/t:ro" demo /t/tput server 0.0.0.0:5201 >/dev/null
row "nook user network (bridge)" container-container "$("$nook" run --rm --network benchnet -v "$work/tool:/t:ro" demo /t/tput client tput-srv:5201 "$secs" 2>/dev/null || true)"
"$nook" rm -f tput-srv >/dev/null
"$nook" network rm benchnet >/dev/null

if [[ $podman == 1 ]] && command -v podman >/dev/null; then
	# Rootless Podman as bench/lifecycle.sh runs it: its own store and run root in the work
	# directory, cgroupfs (no systemd here), runc.
	podman_xdg=$work/podman/xdg
	mkdir -p "$podman_xdg" && chmod 0700 "$podman_xdg"
	podmanw() {
		XDG_RUNTIME_DIR=$podman_xdg podman --root "$work/podman/root" --runroot "$work/podman/run" \
			--cgroup-manager cgroupfs --events-backend file --runtime "$(command -v runc || echo runc)" "$@"
	}
	podman_done() {
		podmanw rm -f tput-srv >/dev/null 2>&1 || true
		# Rootless podman leaves a pause process holding its user namespace: stop the one it made.
		pid=$(cat "$podman_xdg/libpod/tmp/pause.pid" 2>/dev/null) || true
		if [[ $pid =~ ^[0-9]+$ ]]; then kill "$pid" 2>/dev/null || true; fi
	}
	trap podman_done EXIT
	podmanw import -q "$work/busybox.tar" benchnet >/dev/null
	for nw in slirp4netns pasta; do
		case $nw in
		slirp4netns) label="podman slirp4netns (default)" dst=$hostip bind=0.0.0.0 ;;
		pasta) label="podman pasta" dst=$hostip bind=0.0.0.0 ;; # Podman 4.4 and later; Debian 12 has 4.3
		esac
		p=$(port); "$tool" server "$bind:$p" & srv=$!
		row "$label" container-host "$(podmanw run --rm --network "$nw" -v "$work/tool:/t:ro" benchnet /t/tput client "$dst:$p" "$secs" 2>"$work/podman-$nw.err" || true)"
		kill $srv
		[[ -s $work/podman-$nw.err ]] && echo "  podman $nw: $(head -c 300 "$work/podman-$nw.err")" >&2
		p=$(port)
		case $nw in
		slirp4netns) label="podman slirp4netns + rootlessport (default)" ;;
		pasta) label="podman pasta (its forwarder)" ;;
		esac
		if podmanw run -d --name tput-srv --network "$nw" -v "$work/tool:/t:ro" -p "$p:5201" benchnet /t/tput server 0.0.0.0:5201 >/dev/null 2>"$work/podman-$nw.err"; then
			sleep 1
			row "$label" published "$("$tool" client "127.0.0.1:$p" "$secs" || true)"
		else
			row "$label" published ""
			echo "  podman $nw: $(head -c 300 "$work/podman-$nw.err")" >&2
		fi
		podmanw rm -f tput-srv >/dev/null 2>&1 || true
	done
fi
EOF
echo "bench/net: TCP stream for ${secs}s per row, as $user (Gbit/s)"
printf '%-44s %-14s %s\n' row direction Gbit/s
rc=0
nook_as_user bash "$work/inner.sh" "$work" "$secs" "$podman" "$repo/bin/nook" || rc=$?
if [[ -s $work/rows.tsv ]]; then
	base=$(awk -F'\t' '$1=="host loopback"{print $3}' "$work/rows.tsv")
	echo "ratios to host loopback ($base Gbit/s):"
	awk -F'\t' -v b="$base" '$1!="host loopback" && $3+0>0 {printf "  %-44s %-14s %.2f\n", $1, $2, $3/b}' "$work/rows.tsv"
	# nook against Podman's defaults on the same path (issue 3's goal: at least 2x).
	vs() { awk -F'\t' -v a="$1" -v b="$2" -v d="$3" '$1==a && $2==d {x=$3} $1==b && $2==d {y=$3}
		END {if (x+0>0 && y+0>0) printf "  %-44s %-14s %.2fx %s\n", a, d, x/y, b}' "$work/rows.tsv"; }
	if grep -q '^podman' "$work/rows.tsv"; then
		echo "nook against podman (same run):"
		vs "nook slirp4netns" "podman slirp4netns (default)" container-host
		vs "nook slirp4netns:bypass4netns=true" "podman slirp4netns (default)" container-host
		vs "nook slirp4netns" "podman slirp4netns + rootlessport (default)" published
		vs "nook slirp4netns:bypass4netns=true" "podman slirp4netns + rootlessport (default)" published
		vs "nook pasta" "podman pasta (its forwarder)" published
	fi
	mkdir -p "$bench_dir/results"
	jq -R -s --argjson secs "$secs" 'split("\n") | map(select(length>0) | split("\t") | {row: .[0], direction: .[1], gbits: (.[2] | tonumber? // null)}) | {seconds: $secs, rows: .}' \
		"$work/rows.tsv" >"$bench_dir/results/net.json"
	echo "bench/net: results written to bench/results/net.json"
else
	rc=1
fi
exit "$rc"
