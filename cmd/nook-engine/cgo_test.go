package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// cgoDecided lists the packages linked into the lean engine that have cgo files, with what
// their form without cgo means for nook. bin/nook-engine-lean is built with CGO_ENABLED=0
// (Makefile, docs/dependencies.md), so such a package builds anyway, in its pure-Go form or
// as a stub: nothing fails, something may quietly be lost. A package not listed here fails
// TestCgoPackagesDecided until someone has looked at what it loses and added it, with a line
// in docs/dependencies.md. (The full engine, bin/nook-engine, is built with cgo: it needs
// go-sqlite3 for containers/image's blob-info cache, which the lean build does not link.)
var cgoDecided = map[string]string{
	"runtime/cgo":                        "not linked without cgo",
	"os/user":                            "reads /etc/passwd and /etc/group only, no NSS; the lean engine looks no host names up",
	"net":                                "Go's own resolver: /etc/hosts and resolv.conf, no NSS modules; the lean engine resolves no registry names",
	"go.podman.io/storage/pkg/unshare":   "its C constructor acts only when storage re-executes itself into a namespace, which nook never asks for",
	"go.podman.io/storage/drivers/quota": "no project quotas for overlay size=; nook sets none, and a rootless store cannot have them",
}

func TestCgoPackagesDecided(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-tags", makeBuildTags(t)+" nook_lean",
		"-f", "{{if .CgoFiles}}{{.ImportPath}}{{end}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if _, ok := cgoDecided[p]; !ok {
			t.Errorf("%s has cgo files: the lean engine is built without cgo; see what %s loses without it, then add it to cgoDecided and docs/dependencies.md", p, p)
		}
	}
}
