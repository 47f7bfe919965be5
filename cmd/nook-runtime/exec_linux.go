package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/cptar"
	"github.com/nook-containers/nook/runtime"
)

// execFd carries the process to run (a JSON OCI spec with Process and, when the container has
// one, Linux.Seccomp) into `nook-runtime exec-init`.
const execFd = 4

// UserAnnotation carries `nook exec -u`, resolved here against the container's /etc/passwd.
const userAnnotation = "nook.exec.user"

// execInit runs inside every namespace of a running container (nsenter put it there, see
// nsexec): it applies the container's security settings to itself and executes the command.
func execInit() int {
	goruntime.LockOSThread()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return runtime.ExitCode(err)
	}
	b, err := io.ReadAll(os.NewFile(execFd, "process"))
	if err != nil {
		return fail(fmt.Errorf("read process: %w", err))
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil || s.Process == nil {
		return fail(fmt.Errorf("parse process: %v", err))
	}
	if err := runtime.Setsid(); err != nil {
		return fail(err)
	}
	if s.Process.Terminal {
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return fail(fmt.Errorf("set controlling terminal: %w", err))
		}
	}
	if u := s.Annotations[userAnnotation]; u != "" {
		uid, gid, home, err := lookupUser(u)
		if err != nil {
			return fail(err)
		}
		s.Process.User = specs.User{UID: uid, GID: gid}
		if !hasEnv(s.Process.Env, "HOME") || home != "" {
			s.Process.Env = setEnv(s.Process.Env, "HOME="+home)
		}
	}
	return fail(runtime.Exec(&s))
}

func hasEnv(env []string, k string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			return true
		}
	}
	return false
}

func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// lookupUser resolves UID[:GID] or NAME[:GROUP] against the container's /etc/passwd and
// /etc/group, as `docker exec -u` does.
func lookupUser(spec string) (uid, gid uint32, home string, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	home = "/"
	found := false
	if n, err := strconv.ParseUint(u, 10, 32); err == nil {
		uid = uint32(n)
		readColon("/etc/passwd", func(f []string) {
			if len(f) >= 6 && f[2] == u && !found {
				found = true
				if n, err := strconv.ParseUint(f[3], 10, 32); err == nil {
					gid = uint32(n)
				}
				home = f[5]
			}
		})
	} else {
		readColon("/etc/passwd", func(f []string) {
			if len(f) >= 6 && f[0] == u && !found {
				found = true
				n, _ := strconv.ParseUint(f[2], 10, 32)
				uid = uint32(n)
				n, _ = strconv.ParseUint(f[3], 10, 32)
				gid = uint32(n)
				home = f[5]
			}
		})
		if !found {
			return 0, 0, "", fmt.Errorf("unable to find user %s: no matching entries in passwd file", u)
		}
	}
	if hasGroup {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			gid = uint32(n)
		} else {
			ok := false
			readColon("/etc/group", func(f []string) {
				if len(f) >= 3 && f[0] == g && !ok {
					n, _ := strconv.ParseUint(f[2], 10, 32)
					gid, ok = uint32(n), true
				}
			})
			if !ok {
				return 0, 0, "", fmt.Errorf("unable to find group %s: no matching entries in group file", g)
			}
		}
	}
	return uid, gid, home, nil
}

func readColon(path string, fn func([]string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
}

// copyOut writes path (inside the container) as a tar stream on stdout. Its symlinks are
// resolved as the container sees them; the last one only with -L (or a trailing "/").
func copyOut(p string, follow bool) int {
	root, err := os.OpenRoot("/")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 125
	}
	follow = follow || strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	src, err := cptar.Resolve(root, p, follow)
	if err == nil {
		_, err = cptar.Write(os.Stdout, root, src, cptar.Options{Name: path.Base(path.Clean("/" + p))})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 125
	}
	return 0
}

// copyIn extracts a tar stream from stdin at path (inside the container): what it creates
// belongs to the container's root, or with -a to the archive's ids; with -d (an archive from
// `nook cp -`) path must be an existing directory.
func copyIn(p string, archive, into bool) int {
	root, err := os.OpenRoot("/")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 125
	}
	o := cptar.Options{Owners: cptar.OwnRoot, Into: into}
	if archive {
		o.Owners = cptar.OwnArchive
	}
	dst, err := cptar.Resolve(root, p, true)
	if err == nil {
		err = cptar.Extract(os.Stdin, root, dst, o)
	}
	if err != nil {
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		}
		return 125
	}
	return 0
}
