package bypass

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/nook-containers/nook/runtime"
)

// Handler is a running `nook-runtime bypass4netns`.
type Handler struct {
	cmd  *exec.Cmd
	ctl  *os.File // closing it ends the handler
	done chan struct{}
	once sync.Once
}

// Start runs the handler (nook-runtime at path runtimePath) for one run of a container; it
// waits for the container's listener (Serve). reserved are the host sockets of c.Published
// (Reserve), in order: the handler has them, the caller may close its copies. It ends with Close, with the container (its
// listener hangs up), and with the caller: SIGKILL is its parent-death signal, which the kernel
// sends when the thread that forked it ends, so the caller keeps its OS thread for as long as
// the container lives, as it does for slirp4netns.
func Start(runtimePath string, c Config, reserved []*os.File) (*Handler, error) {
	if len(reserved) != len(c.Published) {
		return nil, fmt.Errorf("bypass4netns handler: %d published ports and %d reserved sockets", len(c.Published), len(reserved))
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	mine, theirs, err := runtime.SocketPair()
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	cmd := exec.Command(runtimePath, "bypass4netns", string(b))
	cmd.Args[0] = "nook-bypass4netns"
	cmd.Env = []string{}
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = append([]*os.File{theirs}, reserved...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		mine.Close()
		return nil, fmt.Errorf("start bypass4netns handler: %w", err)
	}
	h := &Handler{cmd: cmd, ctl: mine, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(h.done) }()
	return h, nil
}

// Serve hands the container's seccomp listener to the handler.
func (h *Handler) Serve(listener *os.File) error {
	if err := runtime.Send(h.ctl, runtime.Message{Type: runtime.MsgListener}, listener); err != nil {
		return fmt.Errorf("bypass4netns handler: %w", err)
	}
	return nil
}

// Close ends the handler and waits for it (SIGKILL after 2 s).
func (h *Handler) Close() {
	h.once.Do(func() {
		h.ctl.Close()
		select {
		case <-h.done:
		case <-time.After(2 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	})
}
