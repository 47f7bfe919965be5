# shellcheck shell=bash
# Shell functions shared by the test harness, the demo and the benchmarks.
# Source it: `. test/lib.sh`. Every function fails loudly (non-zero status and a
# message on stderr); none of them exits the calling shell by itself.

# Debian packages the harness needs: the setuid ID-mapping helpers, the FUSE
# overlay fallback, the busybox the test image is made from, the network helper,
# and the usual tools (ps, runuser, tar, gzip).
NOOK_DEPS=(gcc libc6-dev uidmap fuse-overlayfs fuse3 busybox-static slirp4netns procps util-linux tar gzip docker-registry skopeo apache2-utils mmdebstrap)

# Subordinate range given to users the harness creates (start and size).
NOOK_SUBID_START=${NOOK_SUBID_START:-200000}
NOOK_SUBID_COUNT=${NOOK_SUBID_COUNT:-65536}

# The user that nook_setup_user made, used by nook_as_user.
NOOK_TEST_USER=${NOOK_TEST_USER:-nooktest}

nook_log() { printf '==> %s\n' "$*" >&2; }
nook_err() { printf 'error: %s\n' "$*" >&2; }

# nook_missing_pkgs PKG... prints the packages that are not installed.
nook_missing_pkgs() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || status=
		[ "$status" = installed ] || printf '%s\n' "$p"
	done
}

# nook_install_deps [EXTRA_PKG...]: as root, install what is missing; as another
# user, report what is missing and the command to run (and fail).
nook_install_deps() {
	local missing
	if ! command -v dpkg-query >/dev/null 2>&1; then
		nook_err "dpkg-query not found: this harness installs Debian packages; install these by hand: ${NOOK_DEPS[*]} $*"
		return 1
	fi
	mapfile -t missing < <(nook_missing_pkgs "${NOOK_DEPS[@]}" "$@")
	[ "${#missing[@]}" -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		nook_err "missing packages: ${missing[*]}"
		nook_err "run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
		return 1
	fi
	nook_log "installing ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >&2; then
		nook_err "apt-get update failed"
		return 1
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
		nook_err "apt-get install ${missing[*]} failed"
		return 1
	fi
	mapfile -t missing < <(nook_missing_pkgs "${missing[@]}")
	if [ "${#missing[@]}" -ne 0 ]; then
		nook_err "still missing after apt-get install: ${missing[*]}"
		return 1
	fi
}

# nook_go_version_ok GO: true when GO reports version 1.24 or newer.
nook_go_version_ok() {
	local v major minor
	v=$("$1" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	major=${v%%.*}
	minor=${v#*.}
	minor=${minor%%[!0-9]*}
	[[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
	[ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 24 ]; }
}

# nook_require_go: make a Go >= 1.24 the first `go` on PATH.
nook_require_go() {
	if [ -x /usr/local/go/bin/go ]; then
		case ":$PATH:" in
		*:/usr/local/go/bin:*) ;;
		*) PATH=/usr/local/go/bin:$PATH ;;
		esac
		export PATH
	fi
	local go
	go=$(command -v go) || {
		nook_err "Go not found: install Go 1.24 or newer (https://go.dev/dl/) into /usr/local/go"
		return 1
	}
	if ! nook_go_version_ok "$go"; then
		nook_err "$go is $("$go" env GOVERSION 2>/dev/null || echo 'unknown'); nook needs Go 1.24 or newer (https://go.dev/dl/)"
		return 1
	fi
}

# nook_free_subid_start FILE: the first multiple of 65536 at or above
# NOOK_SUBID_START that overlaps no range in FILE.
nook_free_subid_start() {
	local file=$1 start=$NOOK_SUBID_START count=$NOOK_SUBID_COUNT
	local s c clash
	while :; do
		clash=
		if [ -f "$file" ]; then
			while IFS=: read -r _ s c; do
				[[ $s =~ ^[0-9]+$ && $c =~ ^[0-9]+$ ]] || continue
				if [ "$start" -lt $((s + c)) ] && [ "$s" -lt $((start + count)) ]; then
					clash=1
					break
				fi
			done <"$file"
		fi
		[ -z "$clash" ] && break
		start=$((start + 65536))
	done
	echo "$start"
}

# nook_add_subids USER UID FILE: give USER a range in FILE unless it has one.
nook_add_subids() {
	local user=$1 uid=$2 file=$3 start
	touch "$file"
	if grep -qE "^(${user}|${uid}):[0-9]+:[0-9]+" "$file"; then
		return 0
	fi
	start=$(nook_free_subid_start "$file")
	printf '%s:%s:%s\n' "$user" "$start" "$NOOK_SUBID_COUNT" >>"$file"
}

# nook_setup_user [NAME]: as root, create (idempotently) an unprivileged user with
# a home, subordinate UIDs and GIDs, and a runtime directory. Prints the name.
nook_setup_user() {
	local user=${1:-$NOOK_TEST_USER} uid
	if [ "$(id -u)" -ne 0 ]; then
		nook_err "nook_setup_user needs root"
		return 1
	fi
	if ! id -u "$user" >/dev/null 2>&1; then
		# No automatic subordinate range from login.defs: nook_add_subids
		# gives one, at NOOK_SUBID_START or the next free block.
		useradd --create-home --shell /bin/bash --user-group -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user" || {
			nook_err "useradd $user failed"
			return 1
		}
	fi
	uid=$(id -u "$user")
	local home
	home=$(getent passwd "$user" | cut -d: -f6)
	if [ ! -d "$home" ]; then
		install -d -m 0755 -o "$user" -g "$(id -g "$user")" "$home" || return 1
	fi
	nook_add_subids "$user" "$uid" /etc/subuid || return 1
	nook_add_subids "$user" "$uid" /etc/subgid || return 1
	install -d -m 0700 -o "$uid" -g "$(id -g "$user")" "/run/user/$uid" || return 1
	chown "$uid:$(id -g "$user")" "/run/user/$uid" && chmod 0700 "/run/user/$uid" || return 1
	# A login session gets its runtime directory as a tmpfs (pam_systemd/logind does it); do
	# the same where no systemd runs, so the run root behaves as on a user's machine.
	if ! mountpoint -q "/run/user/$uid"; then
		mount -t tmpfs -o "mode=0700,uid=$uid,gid=$(id -g "$user"),size=10%,nosuid,nodev" tmpfs "/run/user/$uid" || return 1
	fi
	# Desktop distributions ship /dev/fuse and /dev/net/tun world-usable (0666),
	# which rootless fuse-overlayfs and slirp4netns rely on; some servers and
	# VMs leave them 0600. Set them the way a distribution does.
	local dev
	for dev in /dev/fuse /dev/net/tun; do
		if [ -e "$dev" ]; then
			chmod 0666 "$dev" || {
				nook_err "chmod 0666 $dev failed"
				return 1
			}
		else
			nook_log "warning: $dev does not exist; tests that need it will skip"
		fi
	done
	NOOK_TEST_USER=$user
	echo "$user"
}

# nook_as_user CMD...: as root, run CMD as NOOK_TEST_USER with a clean
# environment; as any other user, run CMD as is.
nook_as_user() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
		return
	fi
	local user=$NOOK_TEST_USER uid home
	uid=$(id -u "$user") || {
		nook_err "user $user does not exist (run nook_setup_user first)"
		return 1
	}
	home=$(getent passwd "$user" | cut -d: -f6)
	local -a env=(
		"HOME=$home" "USER=$user" "LOGNAME=$user"
		"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		"XDG_RUNTIME_DIR=/run/user/$uid"
		"LANG=${LANG:-C.UTF-8}"
	)
	[ -n "${TERM:-}" ] && env+=("TERM=$TERM")
	local var
	while IFS='=' read -r var _; do
		case $var in
		NOOK_TEST_USER | NOOK_SUBID_START | NOOK_SUBID_COUNT) ;;
		NOOK_* | GOFLAGS | GOTOOLCHAIN | GOPROXY | GONOSUMDB | GOPRIVATE | GOMAXPROCS | GOTRACEBACK | GODEBUG)
			env+=("$var=${!var}")
			;;
		esac
	done < <(env)
	runuser -u "$user" -- env -i "${env[@]}" "$@"
}

# nook_stop_pauses DIR...: stop the pause processes (docs/decisions.md) whose records are in the
# run roots under DIR, before DIR is removed: they would otherwise outlive it by their linger.
nook_stop_pauses() {
	local f pid
	while IFS= read -r f; do
		pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$f")
		[[ -n $pid ]] || continue
		if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q '^nook-pause pause '; then
			kill "$pid" 2>/dev/null || true
		fi
	done < <(find "$@" -name 'pause-*.json' 2>/dev/null)
}

# nook_busybox_tar OUT.tar: a busybox root filesystem from busybox-static, with
# numeric ownership (all root except home/user, 1000:1000) and fixed times, so
# that the same busybox gives the same bytes.
nook_busybox_tar() {
	local out=$1 bb=/bin/busybox dir applet rc
	if [ -z "$out" ]; then
		nook_err "usage: nook_busybox_tar OUT.tar"
		return 1
	fi
	if [ ! -x "$bb" ] || ! file_is_static "$bb"; then
		nook_err "$bb (a static busybox) is missing: apt-get install busybox-static"
		return 1
	fi
	dir=$(mktemp -d) || return 1
	(
		set -e
		cd "$dir"
		mkdir -p rootfs
		cd rootfs
		mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home/user var/tmp run
		chmod 0755 . bin sbin usr usr/bin usr/sbin etc proc sys dev home home/user var run
		chmod 1777 tmp var/tmp
		chmod 0700 root
		cp "$bb" bin/busybox
		chmod 0755 bin/busybox
		for applet in $("$bb" --list); do
			[ "$applet" = busybox ] && continue
			ln -sf busybox "bin/$applet"
		done
		cat >etc/passwd <<-'EOF'
			root:x:0:0:root:/root:/bin/sh
			user:x:1000:1000:user:/home/user:/bin/sh
			nobody:x:65534:65534:nobody:/nonexistent:/bin/false
		EOF
		cat >etc/group <<-'EOF'
			root:x:0:
			user:x:1000:
			nogroup:x:65534:
		EOF
		chmod 0644 etc/passwd etc/group
		tar --create --file "$dir/rootfs.tar" --numeric-owner --owner=0 --group=0 \
			--sort=name --mtime=@0 --format=gnu --exclude=./home/user .
		tar --append --file "$dir/rootfs.tar" --numeric-owner --owner=1000 --group=1000 \
			--mtime=@0 --format=gnu --no-recursion ./home/user
	)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		mv "$dir/rootfs.tar" "$out" || rc=$?
	else
		nook_err "building the busybox rootfs failed"
	fi
	rm -rf "$dir"
	return "$rc"
}

# file_is_static FILE: true when FILE names no dynamic loader in its first
# kilobyte, where an ELF program interpreter (PT_INTERP) path would be.
file_is_static() {
	[ -s "$1" ] && ! head -c 1024 "$1" | grep -qa 'ld-linux\|ld-musl\|/ld\.so'
}
