// Package paths finds where nook keeps its data: the graph root and the run root.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/nook-containers/nook/userns"
)

// Paths are where nook keeps its data.
type Paths struct {
	GraphRoot string // images, layers, containers: survives reboots
	RunRoot   string // mounts, locks, per-run files: lost at reboot
}

// Default applies the defaults and checks the runtime directory. It runs in the CLI
// before the user namespace exists, so a bad environment fails early and clearly.
func Default(graphRoot, runRoot string) (Paths, error) {
	p := Paths{GraphRoot: graphRoot, RunRoot: runRoot}
	if p.GraphRoot == "" {
		data := os.Getenv("XDG_DATA_HOME")
		if data == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return p, fmt.Errorf("cannot find a place for nook's data: set HOME or XDG_DATA_HOME, or use --root")
			}
			data = filepath.Join(home, ".local", "share")
		}
		p.GraphRoot = filepath.Join(data, "nook")
	}
	if p.RunRoot == "" {
		rt := os.Getenv("XDG_RUNTIME_DIR")
		if rt != "" {
			if err := checkOwnDir(rt); err != nil {
				return p, fmt.Errorf("XDG_RUNTIME_DIR=%s %v: unset it or point it at a directory you own, or use --runroot", rt, err)
			}
			p.RunRoot = filepath.Join(rt, "nook")
		} else {
			// No runtime directory (as after `su`): a private one in /tmp, as Podman does.
			p.RunRoot = fmt.Sprintf("/tmp/nook-%d", hostUID())
			if err := os.Mkdir(p.RunRoot, 0o700); err != nil && !os.IsExist(err) {
				return p, fmt.Errorf("create runtime directory: %w", err)
			}
			if err := checkOwnDir(p.RunRoot); err != nil {
				return p, fmt.Errorf("%s %v: remove it or set XDG_RUNTIME_DIR, or use --runroot", p.RunRoot, err)
			}
		}
	}
	for _, d := range []string{p.GraphRoot, p.RunRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return p, fmt.Errorf("create %s: %w", d, err)
		}
	}
	return p, nil
}

// checkOwnDir says what is wrong with dir as a private directory of this user, or nil.
func checkOwnDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("is not usable (%v)", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("is not a directory")
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("is owned by uid %d, not by you (uid %d)", sys.Uid, hostUID())
	}
	return nil
}

// hostUID is the user's uid on the host, also inside nook's user namespace (where it is 0).
func hostUID() int {
	if s := os.Getenv("_CONTAINERS_ROOTLESS_UID"); s != "" && userns.InEngine() {
		if uid, err := strconv.Atoi(s); err == nil {
			return uid
		}
	}
	return os.Getuid()
}
