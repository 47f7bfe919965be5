package userns

// The control pipe: the engine's few words to the CLI that started it (fd 5 in the engine).
//
//	nook CLI (host)                                   nook engine (in the user namespace)
//	───────────────                                   ───────────────────────────────────
//	pipe ──────────── fd 5 (via the shim) ──────────► ClaimControl: close-on-exec, so no
//	                                                  helper or monitor holds it
//	                          ◄──────────────────────── "detach\n": a monitor now outlives me
//	                          ◄──────────────────────── "host {json}\n": run this on the host
//	                          ◄──────────────────────── "network NAME\n": run me again in user
//	                                                    network NAME's user namespace
//	wait(engine); read to EOF
//	"detach": skip killOrphans (the monitor, and a fuse-overlayfs serving its rootfs, are
//	          the CLI's orphans by then and must live on)
//	"host":   nsexec runs the request (nsenter into a running container), its status is nook's
//
// Why the CLI reads after the engine has exited, not before: the words are written before the
// engine exits and wait in the pipe, so there is no window in which the CLI could kill what
// the engine left running on purpose.

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	ctlFd  = 5
	ctlEnv = "_NOOK_CONTROL"
)

var ctl *os.File

// ClaimControl takes the control pipe inherited from the CLI, once, in the engine: it becomes
// close-on-exec and its variable leaves the environment that helpers inherit.
func ClaimControl() {
	if ctl != nil || os.Getenv(ctlEnv) != "5" || !InEngine() {
		return
	}
	os.Unsetenv(ctlEnv)
	var st unix.Stat_t
	if unix.Fstat(ctlFd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return
	}
	unix.CloseOnExec(ctlFd)
	ctl = os.NewFile(ctlFd, "nook-control")
}

// Detach tells the CLI that a process started by this engine (a container's monitor) must
// outlive it.
func Detach() {
	ClaimControl()
	if ctl != nil {
		_, _ = ctl.Write([]byte("detach\n"))
	}
}

// HostRequest is work the engine hands back to the CLI, to be done on the host after the
// engine has exited: joining a running container's namespaces needs a process outside nook's
// user namespace (see nsexec).
type HostRequest struct {
	Op      string          `json:"op"` // "exec", "cp-in", "cp-out"
	Pid     int             `json:"pid"`
	Process json.RawMessage `json:"process,omitempty"` // exec: the OCI process to run
	TTY     bool            `json:"tty,omitempty"`
	Stdin   bool            `json:"stdin,omitempty"`
	Detach  bool            `json:"detach,omitempty"`
	Cgroup  string          `json:"cgroup,omitempty"` // exec: the container's cgroup, where it has one
	Src     string          `json:"src,omitempty"`    // cp: source path (host or container)
	Dst     string          `json:"dst,omitempty"`    // cp: destination path
}

// RequestHost hands r to the CLI.
func RequestHost(r *HostRequest) error {
	ClaimControl()
	if ctl == nil {
		return os.ErrClosed
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = ctl.Write(append(append([]byte("host "), b...), '\n'))
	return err
}

// RequestNetwork tells the CLI to run this command again in user network name's keeper's user
// namespace (EnterControlJoin): `nook start` of a container on that network, which only the
// engine can tell, once it has read the container's record. The engine then exits without
// having done anything.
func RequestNetwork(name string) error {
	ClaimControl()
	if ctl == nil {
		return os.ErrClosed
	}
	_, err := ctl.Write([]byte("network " + name + "\n"))
	return err
}

// Control is what the engine said on the control pipe.
type Control struct {
	Detached bool
	Host     *HostRequest
	Network  string // RequestNetwork's network
}

func readControl(r *os.File) Control {
	var c Control
	_ = r.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "detach":
			c.Detached = true
		case strings.HasPrefix(line, "network "):
			c.Network = line[len("network "):]
		case strings.HasPrefix(line, "host "):
			var h HostRequest
			if json.Unmarshal([]byte(line[5:]), &h) == nil {
				c.Host = &h
			}
		}
	}
	return c
}
