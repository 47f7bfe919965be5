package timing

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The origin is read at process start, so each case runs this test binary again.
func TestMain(m *testing.M) {
	if stage := os.Getenv("TIMING_TEST_MARK"); stage != "" {
		Mark(stage)
		if Enabled() {
			Mark("origin=" + os.Getenv(Env))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func mark(t *testing.T, env ...string) string {
	t.Helper()
	log := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{"TIMING_TEST_MARK=engine open", LogEnv + "=" + log}, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOffPrintsNothing(t *testing.T) {
	if got := mark(t); got != "" {
		t.Fatalf("marks without %s: %q", Env, got)
	}
}

func TestOnSetsOriginAndMarks(t *testing.T) {
	got := mark(t, Env+"=1")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "timing: ") || !strings.Contains(lines[0], " engine open ") {
		t.Fatalf("marks: %q", got)
	}
	origin := strings.Fields(lines[1])[2]
	n, err := strconv.ParseInt(strings.TrimPrefix(origin, "origin="), 10, 64)
	if err != nil || n <= 1 {
		t.Fatalf("the first process must replace %s=1 with its start time, got %q", Env, origin)
	}
}

func TestInheritedOriginIsKept(t *testing.T) {
	got := mark(t, Env+"=1234567")
	if !strings.Contains(got, "origin=1234567") {
		t.Fatalf("an inherited origin must be kept: %q", got)
	}
}
