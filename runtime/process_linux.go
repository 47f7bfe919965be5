package runtime

import (
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// PrepareProcess applies the parts of s that need no credential change:
// hostname and domain name (the UTS namespace must be new), the OOM score,
// the rlimits, and a new session (unless the caller already leads one, as
// after SetupConsole). Security settings are left to Exec.
func PrepareProcess(s *specs.Spec) error {
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("sethostname %q: %w", s.Hostname, err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("setdomainname %q: %w", s.Domainname, err)
		}
	}
	if p := s.Process; p != nil {
		if p.OOMScoreAdj != nil {
			v := strconv.Itoa(*p.OOMScoreAdj)
			if err := os.WriteFile("/proc/self/oom_score_adj", []byte(v), 0); err != nil {
				return fmt.Errorf("set oom_score_adj %s: %w", v, err)
			}
		}
		if err := SetRlimits(p.Rlimits); err != nil {
			return err
		}
	}
	return Setsid()
}

// rlimitNames are the OCI names of the rlimits (include/uapi/asm-generic/resource.h).
var rlimitNames = map[string]int{
	"RLIMIT_CPU":        0,
	"RLIMIT_FSIZE":      1,
	"RLIMIT_DATA":       2,
	"RLIMIT_STACK":      3,
	"RLIMIT_CORE":       4,
	"RLIMIT_RSS":        5,
	"RLIMIT_NPROC":      6,
	"RLIMIT_NOFILE":     7,
	"RLIMIT_MEMLOCK":    8,
	"RLIMIT_AS":         9,
	"RLIMIT_LOCKS":      10,
	"RLIMIT_SIGPENDING": 11,
	"RLIMIT_MSGQUEUE":   12,
	"RLIMIT_NICE":       13,
	"RLIMIT_RTPRIO":     14,
	"RLIMIT_RTTIME":     15,
}

// ParseRlimit returns the resource number of an OCI rlimit name.
func ParseRlimit(name string) (int, error) {
	r, ok := rlimitNames[name]
	if !ok {
		return -1, fmt.Errorf("unknown rlimit %q", name)
	}
	return r, nil
}

// SetRlimits sets each limit on the calling process. It goes through
// unix.Setrlimit (that is, syscall.Setrlimit) on purpose: since Go 1.21 the
// runtime raises its own soft RLIMIT_NOFILE at start and restores the
// original one in execve unless the program set the limit itself through
// the syscall package; a raw prlimit would be undone by the exec.
func SetRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		r, err := ParseRlimit(l.Type)
		if err != nil {
			return err
		}
		lim := unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		if err := unix.Setrlimit(r, &lim); err != nil {
			var cur unix.Rlimit
			if err == unix.EPERM && unix.Getrlimit(r, &cur) == nil && l.Hard > cur.Max {
				return fmt.Errorf("setrlimit %s (soft %d, hard %d): %w: the hard limit is %d and raising it needs CAP_SYS_RESOURCE on the host",
					l.Type, l.Soft, l.Hard, err, cur.Max)
			}
			return fmt.Errorf("setrlimit %s (soft %d, hard %d): %w", l.Type, l.Soft, l.Hard, err)
		}
	}
	return nil
}

// Setsid makes the caller the leader of a new session, unless it already
// is one (setsid fails with EPERM for a process group leader).
func Setsid() error {
	if sid, err := unix.Getsid(0); err == nil && sid == unix.Getpid() {
		return nil
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	return nil
}
