// Package timing prints a timeline of one nook command across its processes (the CLI, the
// shim, the engine, the init, the monitor) when NOOK_TIMING is set, for bench/trace.sh and for
// anyone asking where a start spends its time. Off, Mark costs one branch.
//
// The first process that sees NOOK_TIMING=1 replaces the value with its start time in
// nanoseconds; every process started after it inherits that origin, so all marks share one
// clock. Marks go to stderr as "timing: PID STAGE MS", or are appended to the file named by
// NOOK_TIMING_LOG, which also catches the processes whose stderr is /dev/null (monitors).
package timing

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Env is the variable that turns the timeline on; LogEnv names a file for the marks.
const (
	Env    = "NOOK_TIMING"
	LogEnv = "NOOK_TIMING_LOG"
)

var origin int64

func init() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 1 {
		origin = n
		return
	}
	origin = time.Now().UnixNano()
	os.Setenv(Env, strconv.FormatInt(origin, 10))
}

// Enabled reports whether marks are printed.
func Enabled() bool { return origin != 0 }

// Mark prints how long after the command's start this process reached stage.
func Mark(stage string) {
	if origin == 0 {
		return
	}
	ms := float64(time.Now().UnixNano()-origin) / 1e6
	line := fmt.Sprintf("timing: %d %-24s %7.2f\n", os.Getpid(), stage, ms)
	if p := os.Getenv(LogEnv); p != "" {
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			_, _ = f.WriteString(line)
			f.Close()
			return
		}
	}
	_, _ = os.Stderr.WriteString(line)
}
