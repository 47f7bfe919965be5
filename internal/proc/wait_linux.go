package proc

import (
	"time"

	"golang.org/x/sys/unix"
)

// WaitGone waits until pid, the process that started at start, has ended (or is a zombie), for
// at most timeout (negative: for ever), and reports whether it has. It waits on a pidfd, so it
// wakes as the process ends rather than at the next tick of a poll; without pidfd_open (Linux
// before 5.3) it polls.
func WaitGone(pid int, start string, timeout time.Duration) bool {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		for Alive(pid, start) {
			if !deadline.IsZero() && time.Now().After(deadline) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		return true
	}
	defer unix.Close(fd)
	// The pidfd names whatever has pid now: it is the right process only if that still
	// started at start.
	if !Alive(pid, start) {
		return true
	}
	for {
		ms := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			ms = int(left/time.Millisecond) + 1
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return !Alive(pid, start)
		}
		if n > 0 {
			return true
		}
	}
}
