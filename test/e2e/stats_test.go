package e2e

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statsField runs `nook stats --no-stream --format TEMPLATE NAME` and returns its one line.
func statsField(t *testing.T, s *store, name, format string) string {
	t.Helper()
	lines := s.mustNook(t, "stats", "--no-stream", "--format", format, name).Lines()
	if len(lines) != 1 {
		t.Fatalf("stats of %s: %q, want one line", name, lines)
	}
	return lines[0]
}

// sizeOf reads a size as Docker's stats columns print it ("1.5MiB", "120kB", "0B").
func sizeOf(t *testing.T, s string) float64 {
	t.Helper()
	units := map[string]float64{"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		t.Fatalf("size %q has no number", s)
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	u, ok := units[s[i:]]
	if err != nil || !ok {
		t.Fatalf("size %q: not a number and a unit", s)
	}
	return n * u
}

// `nook stats` on every host: from the container's cgroup where the host delegates one, else
// from /proc (this suite's machines have none), with Docker's columns, flags and streaming.
func TestStats(t *testing.T) {
	s := useMain(t)
	t.Cleanup(func() { s.nook(t, "rm", "-f", "st-busy", "st-idle", "st-mem", "st-done") })
	s.mustNook(t, "run", "-d", "--name", "st-busy", "--network", "none", "demo", "sh", "-c", "while :; do :; done")
	// 30 MB held in a shell variable; two more processes; 4 MB written and synced.
	s.mustNook(t, "run", "-d", "--name", "st-mem", "--network", "none", "demo", "sh", "-c",
		`x=$(head -c 30000000 /dev/zero | tr '\0' a); dd if=/dev/zero of=/blk bs=1M count=4 conv=fsync 2>/dev/null; sleep 1000 & sleep 1000 & echo ready; wait`)
	s.mustNook(t, "run", "-d", "--name", "st-idle", "--network", "none", "demo", "sleep", "1000")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(s.mustNook(t, "logs", "st-mem").Stdout, "ready"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("st-mem never got ready")
		}
	}

	// The table: Docker's header, a row per running container.
	lines := s.mustNook(t, "stats", "--no-stream").Lines()
	assertMatch(t, "stats header", lines[0], `^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS$`)
	rows := strings.Join(lines[1:], "\n")
	for _, n := range []string{"st-busy", "st-mem", "st-idle"} {
		assertMatch(t, "stats row of "+n, rows, `(?m)^[0-9a-f]{12}\s+`+n+`\s+\d+\.\d\d%\s+\S+ / \S+\s+\d+\.\d\d%\s+\S+ / \S+\s+\S+ / \S+\s+\d+$`)
	}

	// CPU: a busy loop uses a good part of a CPU; sleep none.
	busy, _ := strconv.ParseFloat(strings.TrimSuffix(statsField(t, s, "st-busy", "{{.CPUPerc}}"), "%"), 64)
	idle, _ := strconv.ParseFloat(strings.TrimSuffix(statsField(t, s, "st-idle", "{{.CPUPerc}}"), "%"), 64)
	if busy < 10 || idle > 5 {
		t.Errorf("CPU %%: busy loop %.2f, sleep %.2f; want the loop above 10 and sleep under 5", busy, idle)
	}
	// Memory: the 30 MB variable, against the idle container's few hundred kB; a limit.
	mem := strings.Split(statsField(t, s, "st-mem", "{{.MemUsage}}"), " / ")
	idleMem := strings.Split(statsField(t, s, "st-idle", "{{.MemUsage}}"), " / ")
	if got := sizeOf(t, mem[0]); got < 25e6 || sizeOf(t, idleMem[0]) > 10e6 || sizeOf(t, mem[1]) < 100e6 {
		t.Errorf("MEM USAGE / LIMIT: %q with 30 MB held, %q for sleep: want over 25 MB, under 10 MB, and a limit (the machine's memory, or the cgroup's)", mem, idleMem)
	}
	// PIDs: sh and its two sleeps.
	assertEqual(t, "PIDs of sh with two sleeps", statsField(t, s, "st-mem", "{{.PIDs}}"), "3")
	// Block I/O: the 4 MB that dd wrote and synced.
	if w := strings.Split(statsField(t, s, "st-mem", "{{.BlockIO}}"), " / "); sizeOf(t, w[1]) < 4e6 {
		t.Errorf("BLOCK I/O %q: want at least 4 MB written", w)
	}
	// Network: none has only lo, which is left out.
	assertEqual(t, "NET I/O with --network none", statsField(t, s, "st-idle", "{{.NetIO}}"), "0B / 0B")
	// .Container is the name as given; --no-trunc gives the whole ID.
	assertEqual(t, ".Container", statsField(t, s, "st-idle", "{{.Container}} {{.Name}}"), "st-idle st-idle")
	assertMatch(t, "short ID", statsField(t, s, "st-idle", "{{.ID}}"), `^[0-9a-f]{12}$`)
	lines = s.mustNook(t, "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", "st-idle").Lines()
	assertMatch(t, "--no-trunc ID", lines[0], `^[0-9a-f]{64}$`)

	// A stopped container: only with -a (or named), with zeros.
	s.mustNook(t, "run", "--name", "st-done", "--network", "none", "demo", "true")
	assertNotContains(t, "stats without -a", s.mustNook(t, "stats", "--no-stream", "--format", "{{.Name}}").Stdout, "st-done")
	r := s.mustNook(t, "stats", "--no-stream", "-a", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}")
	assertContains(t, "stats -a", r.Stdout, "st-done 0.00% 0B / 0B 0\n")
	r = s.nook(t, "stats", "--no-stream", "no-such-container")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "no such container")

	// Without --no-stream it goes on: a new sample every half second, until it is stopped.
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := s.command(ctx, nil, "stats", "--format", "{{.Name}}", "st-idle")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	n := 0
	for n < 3 && sc.Scan() {
		if strings.Contains(sc.Text(), "\033[") {
			t.Errorf("stats to a pipe wrote terminal codes: %q", sc.Text())
		}
		if sc.Text() == "st-idle" {
			n++
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if n < 3 {
		t.Errorf("a streaming stats printed %d samples before it ended, want it to go on", n)
	}
}

// NET I/O counts the container's own interfaces: 20 pings of 1000 bytes out through
// slirp4netns's tap0 (sent whether or not an answer comes).
func TestStatsNetwork(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	t.Cleanup(func() { s.nook(t, "rm", "-f", "st-net") })
	s.mustNook(t, "run", "-d", "--name", "st-net", "--network", "slirp4netns", "demo", "sh", "-c",
		`ping -c 20 -i 0.05 -s 1000 -W 1 10.0.2.2 >/dev/null; echo sent; sleep 1000`)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(s.mustNook(t, "logs", "st-net").Stdout, "sent"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("st-net never sent")
		}
	}
	io := strings.Split(statsField(t, s, "st-net", "{{.NetIO}}"), " / ")
	if len(io) != 2 || sizeOf(t, io[1]) < 20000 {
		t.Errorf("NET I/O %q after 20 pings of 1000 bytes: want at least 20 kB sent", io)
	}
}
