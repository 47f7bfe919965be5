package proc

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux architecture
// nook builds for (the kernel fixes it for user space; sysconf(_SC_CLK_TCK) only reports it).
const ClockTicks = 100

// Usage is what `nook stats` counts of one process without a cgroup.
type Usage struct {
	CPUTicks   uint64 // utime+stime, and cutime+cstime: its children that it has reaped
	Threads    uint64
	Memory     uint64 // proportional set size (PSS) in bytes; resident size where smaps_rollup is unreadable
	ReadBytes  uint64 // storage I/O, from /proc/PID/io (0 when unreadable)
	WriteBytes uint64
}

// ReadUsage reads pid's Usage.
func ReadUsage(pid int) (Usage, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	b, err := os.ReadFile(dir + "stat")
	if err != nil {
		return Usage{}, err
	}
	u, err := ParseStatUsage(string(b))
	if err != nil {
		return Usage{}, err
	}
	if b, err := os.ReadFile(dir + "smaps_rollup"); err == nil {
		u.Memory = ParsePss(b)
	} else if b, err := os.ReadFile(dir + "statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			u.Memory = pages * uint64(os.Getpagesize())
		}
	}
	if b, err := os.ReadFile(dir + "io"); err == nil {
		u.ReadBytes, u.WriteBytes = ParseIO(b)
	}
	return u, nil
}

// ParseStatUsage reads the CPU times and thread count of a /proc/PID/stat line.
func ParseStatUsage(s string) (Usage, error) {
	// The command name (field 2) is in parentheses and may hold blanks and parentheses itself.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Usage{}, errors.New("bad /proc stat line")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 18 {
		return Usage{}, errors.New("bad /proc stat line")
	}
	// f[0] is field 3 (state): utime..cstime are fields 14-17, num_threads field 20.
	var u Usage
	for _, k := range []int{11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return Usage{}, errors.New("bad /proc stat line")
		}
		if v > 0 {
			u.CPUTicks += uint64(v)
		}
	}
	u.Threads, _ = strconv.ParseUint(f[17], 10, 64)
	return u, nil
}

// ParsePss returns the Pss line of /proc/PID/smaps_rollup, in bytes.
func ParsePss(b []byte) uint64 {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("Pss:")); ok {
			f := strings.Fields(string(rest))
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// ParseIO returns read_bytes and write_bytes of /proc/PID/io: what reached the storage layer.
func ParseIO(b []byte) (read, write uint64) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		switch string(k) {
		case "read_bytes":
			read = n
		case "write_bytes":
			write = n
		}
	}
	return read, write
}

// NetDev sums the received and sent bytes of the interfaces in pid's network namespace
// (/proc/PID/net/dev), but its loopback.
func NetDev(pid int) (rx, tx uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return 0, 0, err
	}
	rx, tx = ParseNetDev(b)
	return rx, tx, nil
}

// ParseNetDev sums /proc/net/dev's byte counters over every interface but lo.
func ParseNetDev(b []byte) (rx, tx uint64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue // the two header lines have no colon
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 == nil && err2 == nil {
			rx += r
			tx += t
		}
	}
	return rx, tx
}

// InPidNamespace lists the processes (host pids) that are in the same PID namespace as pid
// (pid itself first), as far as /proc lets this process see their namespace.
func InPidNamespace(pid int) ([]int, error) {
	ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return nil, err
	}
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := []int{pid}
	for _, n := range names {
		p, err := strconv.Atoi(n)
		if err != nil || p == pid {
			continue
		}
		if l, err := os.Readlink("/proc/" + n + "/ns/pid"); err == nil && l == ns {
			out = append(out, p)
		}
	}
	return out, nil
}

// Tree lists pid and its descendants (pid first), from each process's parent in /proc.
func Tree(pid int) ([]int, error) {
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		return nil, err
	}
	names, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, n := range names {
		p, err := strconv.Atoi(n.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + n.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 {
				if pp, err := strconv.Atoi(f[1]); err == nil {
					children[pp] = append(children[pp], p)
				}
			}
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

// MemTotal is the machine's memory in bytes (/proc/meminfo), 0 when unreadable.
func MemTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
