// Package proc reads what nook needs of a process from /proc: its start time, which with its pid
// names it against pid reuse (state files record both), and whether it still runs.
package proc

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// Start returns the start time of pid (field 22 of /proc/PID/stat, in clock ticks since boot)
// and its state letter (field 3).
func Start(pid int) (start, state string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", err
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may hold blanks and parentheses itself.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", errors.New("bad /proc stat line")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", "", errors.New("bad /proc stat line")
	}
	return f[19], f[0], nil
}

// Alive tells whether pid is still the process that started at start: not another process
// that got the same pid, and not a zombie.
func Alive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	got, state, err := Start(pid)
	return err == nil && got == start && state != "Z" && state != "X"
}

// Self is this process's start time.
func Self() string {
	start, _, _ := Start(os.Getpid())
	return start
}
