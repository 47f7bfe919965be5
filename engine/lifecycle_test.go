package engine

import (
	"syscall"
	"testing"
)

func TestParseRestart(t *testing.T) {
	for in, want := range map[string]struct {
		name string
		max  int
		ok   bool
	}{
		"": {"no", 0, true}, "no": {"no", 0, true}, "always": {"always", 0, true},
		"unless-stopped": {"unless-stopped", 0, true}, "on-failure": {"on-failure", 0, true},
		"on-failure:3": {"on-failure", 3, true}, "on-failure:x": {}, "on-failure:-1": {},
		"always:2": {}, "sometimes": {}, "no:1": {},
	} {
		name, max, err := ParseRestart(in)
		if (err == nil) != want.ok || (want.ok && (name != want.name || max != want.max)) {
			t.Errorf("ParseRestart(%q) = %q, %d, %v; want %q, %d, ok %v", in, name, max, err, want.name, want.max, want.ok)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"9": syscall.SIGKILL, "KILL": syscall.SIGKILL, "SIGTERM": syscall.SIGTERM, "usr1": syscall.SIGUSR1,
		"sighup": syscall.SIGHUP, "0": 0, "65": 0, "NOPE": 0,
	} {
		got, err := ParseSignal(in)
		if (err == nil) != (want != 0) || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestSplitCopyArg(t *testing.T) {
	for in, want := range map[string][3]string{
		"web:/etc/hosts": {"web", "/etc/hosts", "in"},
		"/tmp/a:b":       {"", "/tmp/a:b", ""},
		"./x:y":          {"", "./x:y", ""},
		"file":           {"", "file", ""},
		":x":             {"", ":x", ""},
	} {
		ref, p, in2 := splitCopyArg(in)
		inside := ""
		if in2 {
			inside = "in"
		}
		if ref != want[0] || p != want[1] || inside != want[2] {
			t.Errorf("splitCopyArg(%q) = %q %q %v", in, ref, p, in2)
		}
	}
}
