package main

import (
	"os/exec"
	"strings"
	"testing"
)

// nook-runtime is on the start path of every container: it must stay small and start fast.
// This guards the package boundary, as go-containerregistry's depcheck does for crane.
func TestLeanDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{"github.com/nook-containers/nook/", "golang.org/x/sys/", "github.com/opencontainers/runtime-spec/"}
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
			t.Errorf("nook-runtime must not depend on %s", dep)
		}
		for _, heavy := range []string{"github.com/nook-containers/nook/engine", "github.com/nook-containers/nook/spec"} {
			if dep == heavy {
				t.Errorf("nook-runtime must not depend on %s", dep)
			}
		}
	}
}
