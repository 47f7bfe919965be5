package idmap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// applyTimeout bounds the helpers in Apply; they do a few syscalls and exit, so anything
// near this long is a hang (a stuck NSS lookup in newuidmap) that must not hang nook.
const applyTimeout = 10 * time.Second

// HelperError is a newuidmap/newgidmap run that failed.
type HelperError struct {
	Helper string // path of the helper
	Stderr string // its stderr, collapsed to one line
	Err    error  // from os/exec
}

func (e *HelperError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("run %s: %v", e.Helper, e.Err)
	}
	return fmt.Sprintf("run %s: %v: %s", e.Helper, e.Err, e.Stderr)
}

func (e *HelperError) Unwrap() error { return e.Err }

// Apply writes the maps for the process pid (a child just cloned into a new user namespace):
// subordinate mode: runs NewUIDMap and NewGIDMap with HelperArgs (both at once is fine);
// on failure the error contains the helper's stderr trimmed to one line.
// single-id mode: writes /proc/PID/setgroups "deny", then /proc/PID/gid_map "0 GID 1", and
// /proc/PID/uid_map "0 UID 1" directly.
//
// The helpers are given 10 seconds; ApplyContext takes the caller's deadline instead.
func (p *Plan) Apply(pid int) error {
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	return p.ApplyContext(ctx, pid)
}

// ApplyContext is Apply with the caller's context bounding the helpers.
func (p *Plan) ApplyContext(ctx context.Context, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("apply id maps: invalid pid %d", pid)
	}
	if len(p.UIDMap) == 0 || len(p.GIDMap) == 0 {
		return errors.New("apply id maps: empty map")
	}
	switch p.Mode {
	case ModeSingleID:
		return writeMaps(pid, p.UIDMap, p.GIDMap)
	case ModeSubordinate:
		if p.NewUIDMap == "" || p.NewGIDMap == "" {
			return errors.New("apply id maps: subordinate mode without newuidmap/newgidmap")
		}
		// The two maps are independent files, so the helpers run side by side to save one
		// fork+exec latency on the start path.
		gerrc := make(chan error, 1)
		go func() { gerrc <- runHelper(ctx, p.NewGIDMap, HelperArgs(pid, p.GIDMap)) }()
		uerr := runHelper(ctx, p.NewUIDMap, HelperArgs(pid, p.UIDMap))
		gerr := <-gerrc
		switch {
		case uerr != nil && gerr != nil:
			// One line, not errors.Join's two: the caller prints errors as "Error: ...".
			return fmt.Errorf("%w; %w", uerr, gerr)
		case uerr != nil:
			return uerr
		default:
			return gerr
		}
	default:
		return fmt.Errorf("apply id maps: unknown mode %q", p.Mode)
	}
}

// runHelper runs a setuid map helper. No Pdeathsig: the kernel clears it when a setuid program
// starts, so the context's deadline is what stops a stuck helper.
func runHelper(ctx context.Context, path string, args []string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = time.Second
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return &HelperError{Helper: path, Stderr: oneLine(stderr.b), Err: err}
	}
	return nil
}

// limitedBuffer keeps the first helperStderrMax bytes written to it and drops the rest, so a
// helper that floods stderr cannot grow nook's memory.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := helperStderrMax - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// writeMaps writes a single-ID mapping the way an unprivileged parent may: setgroups must be
// "deny" before an unprivileged gid_map write is allowed (user_namespaces(7), since Linux 3.19,
// CVE-2014-8989), and each map file takes the whole map in one write(2).
func writeMaps(pid int, uidMap, gidMap []Mapping) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	// Kernels before 3.19 have no setgroups file and need no deny.
	if err := writeProcFile(dir+"setgroups", "deny"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deny setgroups: %w", err)
	}
	if err := writeProcFile(dir+"gid_map", procMap(gidMap)); err != nil {
		return fmt.Errorf("write gid map: %w", err)
	}
	if err := writeProcFile(dir+"uid_map", procMap(uidMap)); err != nil {
		return fmt.Errorf("write uid map: %w", err)
	}
	return nil
}

func writeProcFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// helperStderrMax bounds what is kept of a helper's stderr for the error message.
const helperStderrMax = 4096

// oneLine collapses a helper's stderr into one short line for an error message.
func oneLine(b []byte) string {
	var parts []string
	for _, l := range strings.Split(string(bytes.TrimSpace(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return truncate(strings.Join(parts, "; "), 300)
}
