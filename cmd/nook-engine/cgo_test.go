package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// cgoDecided lists the packages linked into the engine that have cgo files, with what their
// form without cgo means for nook. The engine is built with CGO_ENABLED=0 (Makefile,
// docs/dependencies.md), so such a package builds anyway, in its pure-Go form or as a stub
// (go-sqlite3): nothing fails, something may quietly be lost. A package not listed here fails
// TestCgoPackagesDecided until someone has looked at what it loses and added it, with a line
// in docs/dependencies.md.
var cgoDecided = map[string]string{
	"runtime/cgo":                        "not linked without cgo",
	"os/user":                            "reads /etc/passwd and /etc/group only, no NSS; the engine's tar headers need no names (storage looks none up)",
	"net":                                "Go's own resolver: /etc/hosts and resolv.conf, no NSS modules (mdns, myhostname, LDAP)",
	"go.podman.io/storage/pkg/unshare":   "its C constructor acts only when storage re-executes itself into a namespace, which nook never asks for",
	"go.podman.io/storage/drivers/quota": "no project quotas for overlay size=; nook sets none, and a rootless store cannot have them",
	"github.com/miekg/pkcs11":            "not linked without cgo: ocicrypt's PKCS#11 keys, nook decrypts no images",
	"github.com/mattn/go-sqlite3":        "a stub: containers/image keeps its blob-info cache in memory for one command only",
}

func TestCgoPackagesDecided(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-tags", makeBuildTags(t),
		"-f", "{{if .CgoFiles}}{{.ImportPath}}{{end}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if _, ok := cgoDecided[p]; !ok {
			t.Errorf("%s has cgo files: the engine is built without cgo; see what %s loses without it, then add it to cgoDecided and docs/dependencies.md", p, p)
		}
	}
}
