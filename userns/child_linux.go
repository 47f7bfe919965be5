package userns

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Shim is the child side of the handshake, run by nook-runtime: it waits until the parent has
// written the maps, then executes the engine (fd exeFd) with the same arguments. It returns
// only on failure.
func Shim(args []string) error {
	if err := WaitMapped(os.NewFile(syncFd, "sync")); err != nil {
		return err
	}
	unix.CloseOnExec(exeFd)
	argv := append([]string{"nook"}, args...)
	// Executing the /proc/self/fd link is execveat(fd, "", AT_EMPTY_PATH) without cgo: the
	// kernel opens the file through the descriptor, whatever now sits at its old path.
	err := unix.Exec(fmt.Sprintf("/proc/self/fd/%d", exeFd), argv, os.Environ())
	return fmt.Errorf("execute the nook engine: %w", err)
}

// WaitMapped is the child's half of the handshake (handshake.go), for every process cloned into
// a new user namespace that must exec again once it is mapped (the shim, a network's keeper):
// it reads "mapped" from sync, for at most mapTimeout, and closes it.
func WaitMapped(sync *os.File) error {
	defer sync.Close()
	got := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(sync).ReadString('\n')
		if err == nil && line != MsgMapped {
			err = fmt.Errorf("unexpected message %q", line)
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			return fmt.Errorf("wait for the user namespace maps: %w", err)
		}
		return nil
	case <-time.After(mapTimeout):
		return fmt.Errorf("wait for the user namespace maps: timed out after %s", mapTimeout)
	}
}
