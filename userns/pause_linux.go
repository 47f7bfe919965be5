package userns

// The pause process (docs/decisions.md, "The pause process"): one long-lived process per run
// root and ID mapping that holds a user and mount namespace, so that a command's engine joins
// them (bin/nook-pause join: one setns and an exec) instead of making new ones (a clone, then
// newuidmap and newgidmap: about 9 ms, and the teardown of a mount namespace at its exit).
//
//	nook CLI                                          nook-pause pause LINGER
//	────────                                          ───────────────────────
//	flock RUNROOT/pause-PLAN.lock (only to start one)
//	clone(NEWUSER|NEWNS, setsid) ────────────────────► read(fd 3) ... blocks
//	plan.Apply(pid); write(fd 3, "mapped\n") ────────► exists; every few seconds: is any other
//	RUNROOT/pause-PLAN.json: pid, start time,          process in my mount namespace? none
//	  user and mount namespace inodes                  for LINGER seconds: exit
//	   ...
//	pidfd_open(pid), check the record ─┐
//	nook-pause join (fd 3 pidfd) ──────┴─► setns(pidfd, NEWUSER|NEWNS), chdir, execveat(fd 4):
//	                                       the engine, uid 0 of the pause's namespace
//
// PLAN is a hash of the mapping, so a command with another mapping (no subordinate range any
// more, say) never joins a namespace mapped differently. A pause that is gone, or a record whose
// pid now names another process, is noticed by the pidfd, the start time and the namespace
// inodes; the command then starts a new pause. Any failure to join falls back to a namespace
// of the command's own, the way every command ran before the pause existed.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/idmap"
	"github.com/nook-containers/nook/internal/proc"
)

const (
	// PauseLingerEnv is how long a pause process outlives the last other process in its
	// namespaces (a Go duration or seconds); 0 turns the pause off.
	PauseLingerEnv = "NOOK_PAUSE_LINGER"
	// DefaultPauseLinger is PauseLingerEnv's default.
	DefaultPauseLinger = 10 * time.Minute

	// maxPauseLinger keeps the milliseconds nook-pause is given within what it parses.
	maxPauseLinger = 240 * time.Hour
)

// PausePath finds bin/nook-pause as RuntimePath finds nook-runtime ($NOOK_PAUSE overrides).
func PausePath() (string, error) { return helperPath("nook-pause", "NOOK_PAUSE") }

// PauseLinger reads PauseLingerEnv: 0 when the pause is off.
func PauseLinger() (time.Duration, error) {
	v := os.Getenv(PauseLingerEnv)
	if v == "" {
		return DefaultPauseLinger, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= int(maxPauseLinger/time.Second) {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxPauseLinger {
		return 0, fmt.Errorf("%s=%q is not a duration from 0 to 240h: give one such as 10m or 30s, or 0 to turn the pause process off", PauseLingerEnv, v)
	}
	return d, nil
}

// PauseRecord is what RUNROOT/pause-PLAN.json says of a running pause.
type PauseRecord struct {
	Pid    int    `json:"pid"`
	Start  string `json:"start"` // /proc/PID/stat's start time, against pid reuse
	UserNS uint64 `json:"userns"`
	MntNS  uint64 `json:"mntns"`
}

// PauseFiles are the record and lock file of the pause for plan in the run root dir.
func PauseFiles(dir string, plan *idmap.Plan) (record, lock string) {
	sum := sha256.Sum256([]byte(PlanSummary(plan)))
	base := filepath.Join(dir, "pause-"+hex.EncodeToString(sum[:6]))
	return base + ".json", base + ".lock"
}

func nsInode(pid int, ns string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, ns), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// ReadPause returns the record at path when it names a live pause, with a pidfd that keeps
// naming that very process; nil when there is none.
func ReadPause(path string) (*PauseRecord, *os.File) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	var r PauseRecord
	if json.Unmarshal(b, &r) != nil || r.Pid <= 0 {
		return nil, nil
	}
	fd, err := unix.PidfdOpen(r.Pid, 0)
	if err != nil {
		return nil, nil
	}
	pidfd := os.NewFile(uintptr(fd), "pause-pidfd")
	// Checked after the pidfd exists: if the pid is still the recorded process now, the pidfd
	// names it for good.
	u, uerr := nsInode(r.Pid, "user")
	m, merr := nsInode(r.Pid, "mnt")
	if !proc.Alive(r.Pid, r.Start) || uerr != nil || merr != nil || u != r.UserNS || m != r.MntNS {
		pidfd.Close()
		return nil, nil
	}
	return &r, pidfd
}

// Pause returns the record of the pause process for plan in the run root dir and a pidfd of
// it, starting one if none runs. linger is how long it outlives the last process in its
// namespaces.
func Pause(dir string, plan *idmap.Plan, linger time.Duration) (*PauseRecord, *os.File, error) {
	record, lockPath := PauseFiles(dir, plan)
	if r, pidfd := ReadPause(record); pidfd != nil {
		return r, pidfd, nil
	}
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, nil, err
	}
	// Another nook may have started one while this one waited for the lock.
	if r, pidfd := ReadPause(record); pidfd != nil {
		return r, pidfd, nil
	}
	r, err := startPause(plan, linger)
	if err != nil {
		return nil, nil, err
	}
	b, _ := json.Marshal(r)
	tmp := record + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.Rename(tmp, record); err != nil {
		os.Remove(tmp)
		return nil, nil, err
	}
	r, pidfd := ReadPause(record)
	if pidfd == nil {
		return nil, nil, errors.New("the new pause process ended at once")
	}
	return r, pidfd, nil
}

// pauseEnv tells the engine the pause process whose namespaces it runs in, for `nook info`.
const pauseEnv = "_NOOK_PAUSE"

// JoinedPause is the pid of the pause process whose namespaces this engine runs in, or 0.
func JoinedPause() int {
	n, _ := strconv.Atoi(os.Getenv(pauseEnv))
	return n
}

// startPause starts nook-pause in a new user and mount namespace mapped by plan. It is this
// process's child but outlives it: killOrphans spares it, and it has no parent-death signal.
func startPause(plan *idmap.Plan, linger time.Duration) (*PauseRecord, error) {
	bin, err := PausePath()
	if err != nil {
		return nil, err
	}
	ms := int64((linger + time.Millisecond - 1) / time.Millisecond)
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer syncW.Close()
	cmd := exec.Command(bin, "pause", strconv.FormatInt(ms, 10))
	cmd.Args[0] = "nook-pause"
	cmd.ExtraFiles = []*os.File{syncR}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Setsid:     true,
	}
	err = cmd.Start()
	syncR.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	fail := func(err error) (*PauseRecord, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	if err := plan.Apply(pid); err != nil {
		return fail(fmt.Errorf("map user namespace: %w", err))
	}
	if _, err := syncW.Write([]byte(MsgMapped)); err != nil {
		return fail(err)
	}
	KeepChild(pid)
	r := &PauseRecord{Pid: pid}
	var uerr, merr error
	r.Start, _, err = proc.Start(pid)
	r.UserNS, uerr = nsInode(pid, "user")
	r.MntNS, merr = nsInode(pid, "mnt")
	if err = errors.Join(err, uerr, merr); err != nil {
		return fail(err)
	}
	return r, nil
}
