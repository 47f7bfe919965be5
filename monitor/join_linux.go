package monitor

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Namespaces say, per kind, where a container's init goes: "" a new namespace, "host" the
// caller's, or the path of one to join (another container's, /proc/PID/ns/KIND: --network,
// --pid, --ipc container:NAME).
type Namespaces struct {
	Network string `json:"network,omitempty"`
	PID     string `json:"pid,omitempty"`
	IPC     string `json:"ipc,omitempty"`
	UTS     string `json:"uts,omitempty"`
}

// kinds pairs each namespace with its clone flag and its file in /proc/thread-self/ns.
func (n Namespaces) kinds() []struct {
	where string
	flag  int
	file  string
} {
	return []struct {
		where string
		flag  int
		file  string
	}{
		{n.Network, unix.CLONE_NEWNET, "net"},
		{n.PID, unix.CLONE_NEWPID, "pid_for_children"},
		{n.IPC, unix.CLONE_NEWIPC, "ipc"},
		{n.UTS, unix.CLONE_NEWUTS, "uts"},
	}
}

// cloneFlags are the new namespaces the init is cloned into (mount always, the others unless
// shared with the host or joined).
func (n Namespaces) cloneFlags() int {
	flags := unix.CLONE_NEWNS
	for _, k := range n.kinds() {
		if k.where == "" {
			flags |= k.flag
		}
	}
	return flags
}

// Joins says whether the init joins a namespace of another process (rather than getting a
// new one or sharing the caller's).
func (n Namespaces) Joins() bool {
	for _, k := range n.kinds() {
		if k.where != "" && k.where != "host" {
			return true
		}
	}
	return false
}

// join moves the calling thread into the namespaces to join, so that the init it clones next
// starts in them (a child inherits its creator thread's namespaces; for PID, setns sets the
// namespace of the thread's next children only). The network, PID, IPC and UTS namespaces are
// per thread, so a multithreaded Go process may join them on a locked thread; the Go runtime
// starts no new threads from a locked one (runtime.newm's template thread). There is no way
// back: the caller's own namespaces are the host's, which only the initial user namespace may
// enter, so the thread must stay locked and end with its goroutine.
func (n Namespaces) join() error {
	for _, k := range n.kinds() {
		if k.where == "" || k.where == "host" {
			continue
		}
		target, err := os.Open(k.where)
		if err != nil {
			return fmt.Errorf("open the namespace to join: %w", err)
		}
		err = unix.Setns(int(target.Fd()), k.flag)
		target.Close()
		if err != nil {
			return fmt.Errorf("join the namespace %s: %w", k.where, err)
		}
	}
	return nil
}
