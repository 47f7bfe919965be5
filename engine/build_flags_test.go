//go:build !nook_lean

package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBuildOutput(t *testing.T) {
	for in, want := range map[string]buildOutput{
		"out":                  {local: true, dest: "out"},
		"-":                    {dest: "-"},
		"type=local,dest=/x":   {local: true, dest: "/x"},
		"type=tar,dest=/x.tar": {dest: "/x.tar"},
		"type=tar":             {dest: "-"},
		"dest=/x.tar,type=tar": {dest: "/x.tar"},
	} {
		got, err := parseBuildOutput(in)
		if err != nil || *got != want {
			t.Errorf("parseBuildOutput(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "type=registry", "type=local", "type=local,dest=-", "type=tar,x=1", "type=tar,dest"} {
		if _, err := parseBuildOutput(in); err == nil || !strings.Contains(err.Error(), `"--output"`) {
			t.Errorf("parseBuildOutput(%q): %v, want a --output flag error", in, err)
		}
	}
}

func TestParseBuildSecret(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "tok")
	if err := os.WriteFile(f, []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOOK_UNIT_SECRET", "x")
	for in, want := range map[string]struct {
		id  string
		sec buildSecret
	}{
		"id=a,src=" + f:                      {"a", buildSecret{file: f}},
		"src=" + f:                           {"tok", buildSecret{file: f}},
		"id=e,env=NOOK_UNIT_SECRET":          {"e", buildSecret{env: "NOOK_UNIT_SECRET"}},
		"id=e,type=env,src=NOOK_UNIT_SECRET": {"e", buildSecret{env: "NOOK_UNIT_SECRET"}},
		"id=NOOK_UNIT_SECRET":                {"NOOK_UNIT_SECRET", buildSecret{env: "NOOK_UNIT_SECRET"}},
	} {
		id, sec, err := parseBuildSecret(in)
		if err != nil || id != want.id || sec != want.sec {
			t.Errorf("parseBuildSecret(%q) = %q %+v %v; want %q %+v", in, id, sec, err, want.id, want.sec)
		}
	}
	for _, in := range []string{"id=a,src=" + dir, "id=a,src=/nonexistent", "id=a,env=NOOK_UNIT_UNSET", "id=a,type=ssh", "nokey", "id=a,foo=1"} {
		if _, _, err := parseBuildSecret(in); err == nil || !strings.Contains(err.Error(), `"--secret"`) {
			t.Errorf("parseBuildSecret(%q): %v, want a --secret flag error", in, err)
		}
	}
}
