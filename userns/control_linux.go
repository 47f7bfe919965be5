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
//	                          ◄──────────────────────── "exit N\n": my work and output are done,
//	                                                    my status is N; the process's teardown
//	                                                    (2-3 ms: threads, address space) follows
//	read; on "exit N" or wait(engine): done
//	"detach": skip killOrphans (the monitor, and a fuse-overlayfs serving its rootfs, are
//	          the CLI's orphans by then and must live on)
//	"host":   nsexec runs the request (nsenter into a running container), its status is nook's
//
// The words before "exit" are written before the engine's last step, so the CLI, which acts
// on them only once the engine said "exit" or ended, never kills what the engine left running
// on purpose. On "exit N" the CLI returns N without waiting for the engine's teardown, and
// leaves the engine, its child, to end (its parent-death signal is SIGKILL); it sweeps adopted
// orphans first only when the engine ran in a namespace of its own (fuse-overlayfs's daemon).
// The engine says "exit" only when no child of its own is left but a detached monitor
// (Exiting). An engine killed before it said "exit" is waited for and swept after, as always.

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"

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
		detached = true
	}
}

var detached bool

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
	Dst     string          `json:"dst,omitempty"`    // cp: destination path; "-": standard input or output
	// cp's flags: -a (keep the source's owners going in), -L (follow a link at the source),
	// and whether to print the "Successfully copied" line.
	Archive    bool   `json:"archive,omitempty"`
	FollowLink bool   `json:"followLink,omitempty"`
	Progress   bool   `json:"progress,omitempty"`
	Shown      string `json:"shown,omitempty"` // cp: the destination as the user gave it, for the progress line
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

// Exiting tells the CLI that this engine is about to exit with code: its output is written and
// nothing else of its work remains. It says nothing when a child of this engine is still there
// that it did not detach on purpose: the CLI then waits for the engine's end and sweeps what
// it left behind, as it does when an engine dies.
func Exiting(code int) {
	ClaimControl()
	var si unix.Siginfo
	orphans := unix.Waitid(unix.P_ALL, 0, &si, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil) != unix.ECHILD
	if ctl != nil && (detached || !orphans) {
		_, _ = ctl.Write([]byte("exit " + strconv.Itoa(code) + "\n"))
		// The write woke the CLI, most likely onto this CPU: let it run before this process's
		// teardown, which is not preempted.
		_, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	}
}

// Control is what the engine said on the control pipe.
type Control struct {
	Detached bool
	Host     *HostRequest
	Network  string // RequestNetwork's network
	Exit     int    // the status the engine said it exits with, when Exited
	Exited   bool
}

// readControl reads the control pipe until the engine says "exit" (then it sends true on
// exited) or the pipe ends or fails (false); after the engine has ended, at most for
// deadline. It sends exactly once.
func readControl(r *os.File, c *Control, exited chan<- bool) {
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
		case strings.HasPrefix(line, "exit "):
			if n, err := strconv.Atoi(line[len("exit "):]); err == nil {
				c.Exit, c.Exited = n, true
				exited <- true
				return
			}
		}
	}
	exited <- false
}
