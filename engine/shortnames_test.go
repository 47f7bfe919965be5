//go:build !nook_lean

package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
)

func TestShortName(t *testing.T) {
	for _, c := range []struct {
		in        string
		short     bool
		repo, tag string
	}{
		{"busybox", true, "busybox", ""},
		{"team/app:1", true, "team/app", "1"},
		{"library/debian:bookworm", true, "library/debian", "bookworm"},
		{"quay.io/app", false, "", ""},
		{"localhost/app", false, "", ""},
		{"host:5000/app:1", false, "", ""},
		{"docker.io/busybox", false, "", ""},
		{"app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false, "", ""},
	} {
		short, repo, tag, _, err := shortName(c.in)
		if err != nil || short != c.short || repo != c.repo || tag != c.tag {
			t.Errorf("shortName(%q) = %v %q %q %v, want %v %q %q", c.in, short, repo, tag, err, c.short, c.repo, c.tag)
		}
	}
}

// resolvePull against a registries.conf given by CONTAINERS_REGISTRIES_CONF.
func TestResolvePull(t *testing.T) {
	conf := func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "registries.conf")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("CONTAINERS_REGISTRIES_CONF", p)
		sysregistriesv2.InvalidateCache()
	}
	e := &Engine{}
	names := func(r *resolution) string {
		var s []string
		for _, c := range r.candidates {
			s = append(s, c.String())
		}
		return strings.Join(s, " ")
	}
	conf(t, "")
	r, err := e.resolvePull("busybox")
	if err != nil || names(r) != "docker.io/library/busybox:latest" || r.description != "" {
		t.Errorf("no configuration: %v %v", r, err)
	}
	conf(t, `unqualified-search-registries = ["a.example", "b.example:5000"]
[aliases]
"app" = "reg.example/team/app"
`)
	if r, err = e.resolvePull("team/x:2"); err != nil || names(r) != "a.example/team/x:2 b.example:5000/team/x:2" || !r.searched {
		t.Errorf("search registries: %q %v", names(r), err)
	}
	if r, err = e.resolvePull("app:3"); err != nil || names(r) != "reg.example/team/app:3" || r.searched {
		t.Errorf("alias: %q %v", names(r), err)
	}
	if r, err = e.resolvePull("quay.io/x"); err != nil || names(r) != "quay.io/x:latest" {
		t.Errorf("qualified: %q %v", names(r), err)
	}
	got := e.lookupCandidates("app")
	if len(got) != 5 || got[0].String() != "docker.io/library/app:latest" || got[1].String() != "reg.example/team/app:latest" || got[2].String() != "localhost/app:latest" {
		t.Errorf("lookupCandidates(app) = %v", got)
	}
	conf(t, "short-name-mode = \"enforcing\"\nunqualified-search-registries = [\"a.example\", \"b.example\"]\n")
	if _, err = e.resolvePull("x"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("enforcing: %v", err)
	}
}

func TestClassifyStorageError(t *testing.T) {
	err := errors.New(`writing blob: adding layer with blob "sha256:e212b3c60dd5c4236c2c756d703dd8469402d7d49721089463f1bf17dc2eee86"/""/"sha256:e212b3c60dd5c4236c2c756d703dd8469402d7d49721089463f1bf17dc2eee86": unpacking failed (error: exit status 1; output: no such file or directory)`)
	what, todo := classifyStorageError(err)
	if !strings.Contains(what, "layer e212b3c60dd5") || !strings.Contains(what, "hard link") || todo == "" {
		t.Errorf("classifyStorageError: %q, %q", what, todo)
	}
	if _, todo := classifyStorageError(errors.New("something else")); todo != "" {
		t.Errorf("an unknown error was classified")
	}
	e := explainStoreError("load x.tar", err)
	if strings.Contains(e.Error(), "\n") || !strings.HasPrefix(e.Error(), "load x.tar: layer e212b3c60dd5") {
		t.Errorf("explainStoreError: %q", e)
	}
}
