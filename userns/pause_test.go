package userns

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nook-containers/nook/idmap"
	"github.com/nook-containers/nook/internal/proc"
)

func TestPauseLinger(t *testing.T) {
	for _, c := range []struct {
		v    string
		want time.Duration
		bad  bool
	}{
		{"", DefaultPauseLinger, false},
		{"0", 0, false},
		{"30", 30 * time.Second, false},
		{"300ms", 300 * time.Millisecond, false},
		{"10m", 10 * time.Minute, false},
		{"240h", 240 * time.Hour, false},
		{"241h", 0, true},
		{"999999999", 0, true},
		{"-1s", 0, true},
		{"-1", 0, true},
		{"soon", 0, true},
	} {
		t.Setenv(PauseLingerEnv, c.v)
		got, err := PauseLinger()
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%s=%q: got %v, %v; want %v, error %v", PauseLingerEnv, c.v, got, err, c.want, c.bad)
		}
		if err != nil && !strings.Contains(err.Error(), PauseLingerEnv) {
			t.Errorf("%q: the error does not name the variable: %v", c.v, err)
		}
	}
}

// Each mapping has a pause of its own: the file names differ with the mapping, never with
// anything else.
func TestPauseFilesByMapping(t *testing.T) {
	sub := &idmap.Plan{Mode: "subordinate", UIDMap: []idmap.Mapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}}
	single := &idmap.Plan{Mode: "single-id", UIDMap: []idmap.Mapping{{ContainerID: 0, HostID: 1000, Size: 1}}}
	r1, l1 := PauseFiles("/run/x", sub)
	r2, _ := PauseFiles("/run/x", single)
	r3, _ := PauseFiles("/run/x", &idmap.Plan{Mode: sub.Mode, UIDMap: sub.UIDMap})
	if r1 == r2 {
		t.Errorf("two mappings share the pause record %s", r1)
	}
	if r1 != r3 {
		t.Errorf("one mapping has two records: %s and %s", r1, r3)
	}
	if filepath.Dir(r1) != "/run/x" || !strings.HasSuffix(r1, ".json") || strings.TrimSuffix(r1, ".json") != strings.TrimSuffix(l1, ".lock") {
		t.Errorf("record %s and lock %s", r1, l1)
	}
}

// A record is trusted only when its pid is alive, started when recorded, and in the recorded
// namespaces.
func TestReadPauseRejects(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pause.json")
	write := func(v any) {
		b, _ := json.Marshal(v)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r, fd := ReadPause(path); r != nil || fd != nil {
		t.Fatal("a missing record was accepted")
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, fd := ReadPause(path); r != nil || fd != nil {
		t.Fatal("a broken record was accepted")
	}
	self := os.Getpid()
	user, err := nsInode(self, "user")
	if err != nil {
		t.Skipf("no /proc/self/ns: %v", err)
	}
	mnt, _ := nsInode(self, "mnt")
	write(PauseRecord{Pid: self, Start: proc.Self(), UserNS: user + 1, MntNS: mnt})
	if r, fd := ReadPause(path); r != nil || fd != nil {
		t.Fatal("a record with another user namespace was accepted")
	}
	write(PauseRecord{Pid: self, Start: "1", UserNS: user, MntNS: mnt})
	if r, fd := ReadPause(path); r != nil || fd != nil {
		t.Fatal("a record with another start time (a recycled pid) was accepted")
	}
	write(PauseRecord{Pid: self, Start: proc.Self(), UserNS: user, MntNS: mnt})
	r, fd := ReadPause(path)
	if r == nil || fd == nil {
		t.Fatal("a record that names this very process was refused")
	}
	fd.Close()
}
