package proc

import (
	"os"
	"slices"
	"testing"
)

func TestParseStatUsage(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime prio nice threads ...
	line := "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 4 0 12345 0 0"
	u, err := ParseStatUsage(line)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUTicks != 250+50+7+3 || u.Threads != 4 {
		t.Errorf("ParseStatUsage = %+v, want 310 ticks and 4 threads", u)
	}
	for _, bad := range []string{"", "42 no parens", "42 (x) S 1 2", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 u s 0 0 20 0 1 0"} {
		if _, err := ParseStatUsage(bad); err == nil {
			t.Errorf("ParseStatUsage(%q): no error", bad)
		}
	}
}

func TestParseSmapsIONetDev(t *testing.T) {
	rollup := []byte("55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:                2048 kB\nPss:                1234 kB\nPss_Anon:            800 kB\n")
	if got := ParsePss(rollup); got != 1234*1024 {
		t.Errorf("ParsePss = %d", got)
	}
	io := []byte("rchar: 100\nwchar: 200\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n")
	if r, w := ParseIO(io); r != 4096 || w != 8192 {
		t.Errorf("ParseIO = %d, %d", r, w)
	}
	dev := []byte(`Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999     100    0    0    0     0          0         0   999999     100    0    0    0     0       0          0
  tap0:    1500      10    0    0    0     0          0         0      700       5    0    0    0     0       0          0
  eth1:     500       1    0    0    0     0          0         0       30       1    0    0    0     0       0          0
`)
	if rx, tx := ParseNetDev(dev); rx != 2000 || tx != 730 {
		t.Errorf("ParseNetDev = %d, %d, want 2000, 730 (lo left out)", rx, tx)
	}
}

// This process's own usage and namespace: the real files parse.
func TestReadUsageSelf(t *testing.T) {
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.Threads == 0 || u.Memory == 0 {
		t.Errorf("ReadUsage(self) = %+v: no threads or no memory", u)
	}
	pids, err := InPidNamespace(os.Getpid())
	if err != nil || len(pids) == 0 || pids[0] != os.Getpid() {
		t.Errorf("InPidNamespace(self) = %v, %v", pids, err)
	}
	tree, err := Tree(os.Getppid())
	if err != nil || len(tree) < 2 || tree[0] != os.Getppid() || !slices.Contains(tree, os.Getpid()) {
		t.Errorf("Tree(parent) = %v, %v: want the parent first and this process in it", tree, err)
	}
	if MemTotal() == 0 {
		t.Error("MemTotal() = 0")
	}
}
