package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The lean engine (build tag nook_lean, bin/nook-engine-lean) exists to start without the
// package initialisation of containers/image's transports, copy, signatures and encryption,
// and of buildkit (docs/decisions.md, "The binaries"). It must not link them again, directly
// or through a package that grows an import.
func TestLeanEngineDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", makeBuildTags(t)+" nook_lean", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed only %d packages", len(deps))
	}
	heavy := regexp.MustCompile(`^(go\.podman\.io/image/v5/(copy|docker|docker/archive|signature|storage|manifest|oci/.*|tarball|pkg/sysregistriesv2|pkg/docker/config)|github\.com/moby/buildkit/.*|google\.golang\.org/(grpc|protobuf)(/.*)?|github\.com/distribution/reference|github\.com/docker/distribution(/.*)?|github\.com/containers/ocicrypt(/.*)?|github\.com/sigstore/.*|github\.com/ProtonMail/go-crypto(/.*)?)$`)
	for _, dep := range deps {
		if heavy.MatchString(dep) {
			t.Errorf("the lean engine must not depend on %s", dep)
		}
	}
}

// makeBuildTags are the build tags the Makefile builds the engine with (BUILDTAGS).
func makeBuildTags(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BUILDTAGS\s*\?=\s*(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no BUILDTAGS line in the Makefile")
	}
	return strings.TrimSpace(string(m[1]))
}
