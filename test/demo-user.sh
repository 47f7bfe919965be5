#!/usr/bin/env bash
# The part of test/demo.sh that runs as the unprivileged user: $1 is the directory holding
# nook, nook-engine, nook-engine-lean, nook-runtime and nook-idle, $2 is test/lib.sh.
set -euo pipefail
dir=$1
. "$2"
export PATH=$dir:$PATH
show() { printf "\n$ %s\n" "$*"; "$@"; }
work=$(mktemp -d)
trap 'nook rm -f nook-demo-web >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
nook_busybox_tar "$work/busybox.tar"
# The base image: a busybox root filesystem, imported (no registry, no internet).
show nook import "$work/busybox.tar" busybox
# An image nook builds itself, from a Dockerfile like the lab text's.
mkdir "$work/web"
cat > "$work/web/Dockerfile" <<'DOCKERFILE'
FROM busybox
LABEL maintainer="nook demo"
RUN mkdir -p /www && echo "<h1>Hello from a rootless nook container</h1>" > /www/index.html
EXPOSE 80
CMD httpd -f -p 80 -h /www
DOCKERFILE
show nook build -t nook-demo-web "$work/web"
show nook images
# Its isolation: root inside is you outside; its own PID 1, host name, mounts and processes.
show nook run --rm nook-demo-web sh -c 'echo "uid inside: $(id -u), pid: $$, host: $(hostname)"; cat /proc/self/uid_map; ps'
echo "uid outside: $(id -u)"
# The lab text's web server: detached, with a published port.
port=$((20000 + RANDOM % 20000))
if show nook run -d --name nook-demo-web -p "$port:80" nook-demo-web; then
	page="(no answer)"
	for _ in $(seq 50); do
		if out=$(busybox wget -qO- "http://127.0.0.1:$port/" 2>/dev/null); then
			page=$out
			break
		fi
		sleep 0.1
	done
	printf '\n$ busybox wget -qO- http://127.0.0.1:%s/\n%s\n' "$port" "$page"
	show nook ps
	show nook stop nook-demo-web
	show nook rm nook-demo-web
else
	echo "(the detached web server needs a network: see nook info)"
fi
show nook info
