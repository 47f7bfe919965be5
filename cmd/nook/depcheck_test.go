package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The lean CLI starts on every command: it must not link the engine's libraries (cobra,
// containers/storage, containers/image, buildkit), whose package initialisation alone takes
// several milliseconds. cmd/nook-runtime has the same guard.
func TestLeanDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{"github.com/nook-containers/nook/", "golang.org/x/sys/", "golang.org/x/term", "github.com/opencontainers/runtime-spec/"}
	for _, dep := range strings.Fields(string(out)) {
		if !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") {
			continue // standard library
		}
		ok := false
		for _, a := range allowed {
			if strings.HasPrefix(dep, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the lean nook CLI must not depend on %s", dep)
		}
		for _, heavy := range []string{"github.com/nook-containers/nook/engine", "github.com/nook-containers/nook/spec", "github.com/nook-containers/nook/build"} {
			if dep == heavy {
				t.Errorf("the lean nook CLI must not depend on %s", dep)
			}
		}
	}
}
