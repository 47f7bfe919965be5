package idmap

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const wantUsermod = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "

// Looked up at package initialisation, before tests point PATH elsewhere.
var (
	truePath, _        = exec.LookPath("true")
	systemNewuidmap, _ = exec.LookPath("newuidmap")
)

// testUser is who the test process runs as, the way Resolve sees it.
func testUser() (name string, uid, gid uint32) {
	uid, gid = uint32(os.Getuid()), uint32(os.Getgid())
	return userName(uid), uid, gid
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is filtered by the umask
		t.Fatal(err)
	}
	return path
}

// copyBinary copies an executable that exits 0 to path with mode.
func copyBinary(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	if truePath == "" {
		t.Fatal("no true in PATH to copy")
	}
	in, err := os.Open(truePath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// usableHelper returns a helper path that helperProblem accepts: the system's newuidmap when
// it is installed setuid, else (as root) a setuid-root copy of true.
func usableHelper(t *testing.T, dir string) string {
	t.Helper()
	if systemNewuidmap != "" && helperProblem(systemNewuidmap) == "" {
		return systemNewuidmap
	}
	if os.Getuid() != 0 {
		t.Skip("needs a setuid newuidmap or root to make a setuid helper; neither here")
	}
	p := copyBinary(t, filepath.Join(dir, "setuid-helper"), 0o4755)
	if why := helperProblem(p); why != "" {
		t.Skipf("cannot make a usable setuid helper in the temp dir: %s", why)
	}
	return p
}

// isolate clears the knobs and points PATH at an empty directory, so the host's getsubids and
// helpers don't leak into a test.
func isolate(t *testing.T) string {
	t.Helper()
	for _, k := range []string{EnvSubUIDFile, EnvSubGIDFile, EnvNewUIDMap, EnvNewGIDMap} {
		t.Setenv(k, "")
	}
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	return bin
}

func assertOneWarning(t *testing.T, p *Plan) {
	t.Helper()
	if p.Mode != ModeSingleID {
		t.Errorf("Mode = %q, want %q", p.Mode, ModeSingleID)
	}
	if !strings.HasPrefix(p.Warning, "nook: warning: ") || strings.ContainsAny(p.Warning, "\r\n") {
		t.Errorf("Warning is not one line starting with \"nook: warning: \": %q", p.Warning)
	}
	_, uid, gid := testUser()
	if want := []Mapping{{0, uid, 1}}; !reflect.DeepEqual(p.UIDMap, want) {
		t.Errorf("UIDMap = %v, want %v", p.UIDMap, want)
	}
	if want := []Mapping{{0, gid, 1}}; !reflect.DeepEqual(p.GIDMap, want) {
		t.Errorf("GIDMap = %v, want %v", p.GIDMap, want)
	}
	if p.NewUIDMap != "" || p.NewGIDMap != "" {
		t.Errorf("single-id plan names helpers %q %q", p.NewUIDMap, p.NewGIDMap)
	}
}

func TestResolveOverrides(t *testing.T) {
	name, uid, gid := testUser()
	dir := t.TempDir()
	subuid := writeFile(t, filepath.Join(dir, "subuid"),
		"# test\nsomeoneelse:1:1\n"+name+":100000:65536\n"+strconv.Itoa(int(uid))+":300000:10\n", 0o644)
	subgid := writeFile(t, filepath.Join(dir, "subgid"), name+":200000:65536\n", 0o644)
	missing := filepath.Join(dir, "no-such-subuid")
	nonSetuid := copyBinary(t, filepath.Join(dir, "newuidmap-copy"), 0o755)

	t.Run("subordinate", func(t *testing.T) {
		isolate(t)
		helper := usableHelper(t, dir)
		t.Setenv(EnvSubUIDFile, subuid)
		t.Setenv(EnvSubGIDFile, subgid)
		t.Setenv(EnvNewUIDMap, helper)
		t.Setenv(EnvNewGIDMap, helper)
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		want := &Plan{
			Mode:      ModeSubordinate,
			UIDMap:    Build(uid, []Range{{100000, 65536}, {300000, 10}}),
			GIDMap:    Build(gid, []Range{{200000, 65536}}),
			UIDSource: subuid, GIDSource: subgid,
			NewUIDMap: helper, NewGIDMap: helper,
		}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("Resolve =\n  %+v\nwant\n  %+v", p, want)
		}
	})

	t.Run("non-setuid helper", func(t *testing.T) {
		isolate(t)
		t.Setenv(EnvSubUIDFile, subuid)
		t.Setenv(EnvSubGIDFile, subgid)
		t.Setenv(EnvNewUIDMap, nonSetuid)
		t.Setenv(EnvNewGIDMap, nonSetuid)
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		assertOneWarning(t, p)
		if !strings.Contains(p.Warning, nonSetuid+" is not setuid root") {
			t.Errorf("Warning does not name the helper %s: %q", nonSetuid, p.Warning)
		}
		if !strings.Contains(p.Warning, "uidmap package") || strings.Contains(p.Warning, "usermod") {
			t.Errorf("Warning should advise the uidmap package only: %q", p.Warning)
		}
		if p.UIDSource != subuid || p.GIDSource != subgid {
			t.Errorf("sources = %q %q, want %q %q", p.UIDSource, p.GIDSource, subuid, subgid)
		}
	})

	t.Run("helper missing", func(t *testing.T) {
		isolate(t)
		t.Setenv(EnvSubUIDFile, subuid)
		t.Setenv(EnvSubGIDFile, subgid)
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		assertOneWarning(t, p)
		if !strings.Contains(p.Warning, "newuidmap not found in PATH") ||
			!strings.Contains(p.Warning, "newgidmap not found in PATH") {
			t.Errorf("Warning does not say the helpers are missing: %q", p.Warning)
		}
	})

	t.Run("missing subuid file", func(t *testing.T) {
		isolate(t)
		helper := usableHelper(t, dir)
		t.Setenv(EnvSubUIDFile, missing)
		t.Setenv(EnvSubGIDFile, subgid)
		t.Setenv(EnvNewUIDMap, helper)
		t.Setenv(EnvNewGIDMap, helper)
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		assertOneWarning(t, p)
		want := "nook: warning: no subordinate UIDs for user " + name + " in " + missing +
			" (file not found); running with a single-ID mapping (only root in the container). Ask an administrator: " +
			wantUsermod + name
		if p.Warning != want {
			t.Errorf("Warning =\n  %q\nwant\n  %q", p.Warning, want)
		}
		if p.UIDSource != "" || p.GIDSource != subgid {
			t.Errorf("sources = %q %q, want \"\" %q", p.UIDSource, p.GIDSource, subgid)
		}
	})

	t.Run("no ranges at all and no helpers: one warning", func(t *testing.T) {
		isolate(t)
		empty := writeFile(t, filepath.Join(t.TempDir(), "empty"), "", 0o644)
		t.Setenv(EnvSubUIDFile, missing)
		t.Setenv(EnvSubGIDFile, empty)
		t.Setenv(EnvNewUIDMap, filepath.Join(dir, "no-such-helper"))
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		assertOneWarning(t, p)
		for _, s := range []string{"no subordinate UIDs or GIDs for user " + name, missing, empty,
			filepath.Join(dir, "no-such-helper") + " does not exist", "newgidmap not found in PATH",
			"uidmap package", wantUsermod + name} {
			if !strings.Contains(p.Warning, s) {
				t.Errorf("Warning lacks %q: %q", s, p.Warning)
			}
		}
		if p.UIDSource != "" || p.GIDSource != "" {
			t.Errorf("sources = %q %q, want empty", p.UIDSource, p.GIDSource)
		}
	})

	t.Run("unreadable file is an error", func(t *testing.T) {
		if os.Getuid() == 0 {
			t.Skip("root reads a mode 0000 file; the permission error can't be produced")
		}
		isolate(t)
		t.Setenv(EnvSubUIDFile, writeFile(t, filepath.Join(t.TempDir(), "locked"), "", 0))
		t.Setenv(EnvSubGIDFile, subgid)
		if _, err := Resolve(); err == nil || !strings.Contains(err.Error(), "read subordinate ids") {
			t.Errorf("Resolve error = %v, want a read error", err)
		}
	})
}

// fakeGetsubids installs a getsubids in bin that logs each call to the returned file and
// prints body's output.
func fakeGetsubids(t *testing.T, bin, body string) (log string) {
	t.Helper()
	log = filepath.Join(t.TempDir(), "calls")
	writeFile(t, filepath.Join(bin, "getsubids"),
		"#!/bin/sh\necho \"$*\" >> '"+log+"'\n"+body, 0o755)
	return log
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestResolveSkipsGetsubidsWithoutNSS(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no /bin/sh to run a fake getsubids")
	}
	nss := filepath.Join(t.TempDir(), "nsswitch.conf")
	if err := os.WriteFile(nss, []byte("passwd: files\n# subid: sss\nsubid: files\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := nsswitchConf
	nsswitchConf = nss
	t.Cleanup(func() { nsswitchConf = old })
	bin := isolate(t)
	log := fakeGetsubids(t, bin, `echo "0: $1 100000 65536"`)
	if _, err := Resolve(); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got := calls(t, log); len(got) != 0 {
		t.Fatalf("getsubids ran %q although nsswitch.conf routes subid to files only", got)
	}
}

func TestResolveGetsubids(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no /bin/sh to run a fake getsubids")
	}
	name, uid, gid := testUser()
	// getsubids is consulted only where NSS serves subordinate IDs.
	nss := filepath.Join(t.TempDir(), "nsswitch.conf")
	if err := os.WriteFile(nss, []byte("passwd: files\nsubid: sss\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := nsswitchConf
	nsswitchConf = nss
	t.Cleanup(func() { nsswitchConf = old })
	t.Run("used once per kind", func(t *testing.T) {
		bin := isolate(t)
		log := fakeGetsubids(t, bin, `if [ "$1" = -g ]; then echo "0: $2 200000 1000"; else printf '0: %s 100000 65536\n1: %s 300000 5\n' "$1" "$1"; fi`)
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		got := calls(t, log)
		slices.Sort(got) // the two kinds are looked up concurrently
		if want := []string{"-g " + name, name}; !reflect.DeepEqual(got, want) {
			t.Errorf("getsubids calls = %q, want %q", got, want)
		}
		if p.UIDSource != SourceGetsubids || p.GIDSource != SourceGetsubids {
			t.Errorf("sources = %q %q, want getsubids", p.UIDSource, p.GIDSource)
		}
		// No helpers in PATH: single-id, but the ranges were found, so no usermod advice.
		assertOneWarning(t, p)
		if strings.Contains(p.Warning, "usermod") {
			t.Errorf("Warning advises usermod although getsubids found ranges: %q", p.Warning)
		}
	})

	t.Run("subordinate from getsubids", func(t *testing.T) {
		bin := isolate(t)
		helper := usableHelper(t, t.TempDir())
		t.Setenv(EnvNewUIDMap, helper)
		t.Setenv(EnvNewGIDMap, helper)
		fakeGetsubids(t, bin, `if [ "$1" = -g ]; then echo "0: $2 200000 1000"; else echo "0: $1 100000 65536"; fi`)
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if p.Mode != ModeSubordinate || p.Warning != "" {
			t.Fatalf("Mode = %q, Warning = %q; want subordinate without warning", p.Mode, p.Warning)
		}
		if got, want := Format(p.UIDMap), "0:"+strconv.Itoa(int(uid))+":1,1:100000:65536"; got != want {
			t.Errorf("UIDMap = %s, want %s", got, want)
		}
		if got, want := Format(p.GIDMap), "0:"+strconv.Itoa(int(gid))+":1,1:200000:1000"; got != want {
			t.Errorf("GIDMap = %s, want %s", got, want)
		}
	})

	t.Run("failure falls back to the file", func(t *testing.T) {
		bin := isolate(t)
		log := fakeGetsubids(t, bin, "echo 'Error fetching ranges' >&2\nexit 1\n")
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if got := calls(t, log); len(got) != 2 {
			t.Errorf("getsubids calls = %q, want one per kind", got)
		}
		for _, s := range []struct{ got, file string }{{p.UIDSource, "/etc/subuid"}, {p.GIDSource, "/etc/subgid"}} {
			if s.got != "" && s.got != s.file {
				t.Errorf("source = %q, want %q or none", s.got, s.file)
			}
		}
	})

	t.Run("unparsable output falls back to the file", func(t *testing.T) {
		bin := isolate(t)
		fakeGetsubids(t, bin, "echo 'something new'\n")
		p, err := Resolve()
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if p.UIDSource == SourceGetsubids || p.GIDSource == SourceGetsubids {
			t.Errorf("sources = %q %q, want the files", p.UIDSource, p.GIDSource)
		}
	})

	t.Run("not run when override files are set", func(t *testing.T) {
		bin := isolate(t)
		log := fakeGetsubids(t, bin, `echo "0: $1 100000 65536"`)
		dir := t.TempDir()
		t.Setenv(EnvSubUIDFile, writeFile(t, filepath.Join(dir, "subuid"), name+":100000:65536\n", 0o644))
		t.Setenv(EnvSubGIDFile, filepath.Join(dir, "missing"))
		if _, err := Resolve(); err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if got := calls(t, log); got != nil {
			t.Errorf("getsubids ran with the override files set: %q", got)
		}
	})
}

func TestWarningText(t *testing.T) {
	have := []Range{{100000, 65536}}
	tests := []struct {
		name               string
		ul, gl             lookup
		uproblem, gproblem string
		want               string
	}{
		{name: "no subuid",
			ul:   lookup{where: "/etc/subuid"},
			gl:   lookup{ranges: have, where: "/etc/subgid"},
			want: "nook: warning: no subordinate UIDs for user alice in /etc/subuid; running with a single-ID mapping (only root in the container). Ask an administrator: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{name: "no subgid",
			ul:   lookup{ranges: have, where: "getsubids"},
			gl:   lookup{where: "/etc/subgid"},
			want: "nook: warning: no subordinate GIDs for user alice in /etc/subgid; running with a single-ID mapping (only root in the container). Ask an administrator: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{name: "neither",
			ul:   lookup{where: "/etc/subuid"},
			gl:   lookup{where: "/etc/subgid"},
			want: "nook: warning: no subordinate UIDs or GIDs for user alice in /etc/subuid and /etc/subgid; running with a single-ID mapping (only root in the container). Ask an administrator: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"},
		{name: "helper",
			ul: lookup{ranges: have}, gl: lookup{ranges: have},
			uproblem: "newuidmap not found in PATH",
			want:     "nook: warning: newuidmap not found in PATH; running with a single-ID mapping (only root in the container). Ask an administrator to install the uidmap package (setuid newuidmap, newgidmap)"},
		{name: "newline in a path stays one line",
			ul: lookup{ranges: have}, gl: lookup{ranges: have},
			gproblem: "/tmp/a\nb does not exist",
			want:     `nook: warning: /tmp/a\nb does not exist; running with a single-ID mapping (only root in the container). Ask an administrator to install the uidmap package (setuid newuidmap, newgidmap)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := warning("alice", tt.ul, tt.gl, tt.uproblem, tt.gproblem); got != tt.want {
				t.Errorf("warning =\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

func TestHelperProblem(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "does not exist"},
		{"directory", dir, "is not a regular file"},
		{"not executable", writeFile(t, filepath.Join(dir, "plain"), "x", 0o644), "is not executable"},
		{"not setuid", copyBinary(t, filepath.Join(dir, "copy"), 0o755), "is not setuid root and has no file capabilities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := helperProblem(tt.path); !strings.HasSuffix(got, tt.want) || !strings.HasPrefix(got, tt.path) {
				t.Errorf("helperProblem(%s) = %q, want %q", tt.path, got, tt.path+" "+tt.want)
			}
		})
	}
}
