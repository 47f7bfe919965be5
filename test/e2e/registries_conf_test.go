package e2e

// registries.conf: short-name aliases, unqualified-search registries, [[registry]] entries
// (insecure, blocked, mirrors), each from an isolated configuration given to nook through
// the environment (XDG_CONFIG_HOME or CONTAINERS_REGISTRIES_CONF), which the engine inside
// the user namespace must see too.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// userRegistriesConf writes $XDG_CONFIG_HOME/containers/registries.conf (and, if dropIn is
// not empty, a file of registries.conf.d) in a new folder and returns the environment that
// points nook at it.
func userRegistriesConf(t *testing.T, conf, dropIn string) []string {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, "containers")
	if err := os.MkdirAll(filepath.Join(dir, "registries.conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "registries.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if dropIn != "" {
		if err := os.WriteFile(filepath.Join(dir, "registries.conf.d", "50-nook-test.conf"), []byte(dropIn), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"XDG_CONFIG_HOME=" + home}
}

// onlyRegistriesConf writes a registries.conf and returns the environment that makes it the
// only one read (CONTAINERS_REGISTRIES_CONF: no drop-ins, not the system's).
func onlyRegistriesConf(t *testing.T, conf string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"CONTAINERS_REGISTRIES_CONF=" + p}
}

// A short-name alias (in a registries.conf.d drop-in) points a short name at the test
// registry: pull, run and rmi by the short name; run pulls by it in an empty store.
func TestRegistriesConfAlias(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "regconf-alias", storeOptions{}, false)
	full := reg.addr + "/aliased/bb"
	s.mustNook(t, "push", "-q", "demo", full+":1")
	s.mustNook(t, "push", "-q", "demo", full+":latest")
	env := userRegistriesConf(t, "", fmt.Sprintf("[aliases]\n\"nookalias\" = %q\n", full))

	r := s.nookEnv(t, env, "", "pull", "nookalias:1")
	assertExit(t, r, 0)
	assertContains(t, "pull stderr", r.Stderr, `Resolved "nookalias" as an alias`)
	assertContains(t, "pull stdout", r.Stdout, "Status: Downloaded newer image for "+full+":1")
	assertEqual(t, "the last line names what was pulled", r.Lines()[len(r.Lines())-1], full+":1")
	assertEqual(t, "image ID", imageIDOf(t, s, full+":1"), imageIDOf(t, s, "demo"))
	// Local look-ups follow the alias too.
	r = s.nookEnv(t, env, "", "run", "--rm", "nookalias:1", "echo", "via alias")
	assertExit(t, r, 0)
	assertEqual(t, "run by alias", r.Stdout, "via alias\n")
	assertEqual(t, "run by alias: no pull", r.Stderr, "")
	r = s.nookEnv(t, env, "", "rmi", "nookalias:1")
	assertExit(t, r, 0)
	assertEqual(t, "rmi by alias", r.Stdout, "Untagged: "+full+":1\n")
	// Without the configuration the short name is Docker's (docker.io/library/nookalias).
	r = s.nook(t, "image", "inspect", "nookalias:1")
	assertExit(t, r, 125)

	// An empty store: run pulls through the alias, :latest by default.
	s2 := newStore(t, "regconf-alias-run", storeOptions{}, true)
	r = s2.nookEnv(t, env, "", "run", "--rm", "nookalias", "echo", "pulled by alias")
	assertExit(t, r, 0)
	assertEqual(t, "run output", r.Stdout, "pulled by alias\n")
	assertContains(t, "run stderr", r.Stderr, "Unable to find image 'nookalias:latest' locally")
	rows := s2.mustNook(t, "images", "--format", "{{.Repository}}:{{.Tag}}").Lines()
	assertEqual(t, "images after run by alias", strings.Join(rows, ","), full+":latest")
	assertNoOrphanLayers(t, s2)
}

// unqualified-search-registries are tried in order: an unreachable one first, then the test
// registry. A name none has gives one line naming each; "enforcing" refuses an ambiguous one.
func TestRegistriesConfSearch(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "regconf-search", storeOptions{}, false)
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/searched/bb:1")
	closed, err := registryPort()
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", closed)
	conf := fmt.Sprintf("unqualified-search-registries = [%q, %q]\n", dead, reg.addr)
	env := userRegistriesConf(t, conf, "")

	r := s.nookEnv(t, env, "", "pull", "searched/bb:1")
	assertExit(t, r, 0)
	assertContains(t, "pull stderr", r.Stderr, "using unqualified-search registries")
	assertContains(t, "pull stderr", r.Stderr, "Trying to pull "+dead+"/searched/bb:1")
	assertContains(t, "pull stderr", r.Stderr, "Trying to pull "+reg.addr+"/searched/bb:1")
	assertEqual(t, "pulled name", r.Lines()[len(r.Lines())-1], reg.addr+"/searched/bb:1")
	r = s.nookEnv(t, env, "", "run", "--rm", "searched/bb:1", "echo", "found")
	assertExit(t, r, 0)
	assertEqual(t, "run by the short name", r.Stdout, "found\n")

	r = s.nookEnv(t, env, "", "pull", "-q", "searched/nothing:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "no unqualified-search registry has it", dead, "connection refused", reg.addr+"/searched/nothing:1", "not found", "registries.conf")

	// The same search list with short-name-mode = "enforcing": ambiguous, refused.
	enforcing := userRegistriesConf(t, "short-name-mode = \"enforcing\"\n"+conf, "")
	r = s.nookEnv(t, enforcing, "", "pull", "searched/bb:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "ambiguous", "enforcing", "full name")

	// A registries.conf with no search registry and no alias: Docker's docker.io. (This
	// host may have no network: the error names docker.io either way.)
	none := onlyRegistriesConf(t, "")
	r = s.nookEnv(t, none, "", "pull", "nook-no-such-image-anywhere")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "docker.io")

	// A broken registries.conf: one line naming the file.
	broken := onlyRegistriesConf(t, "unqualified-search-registries = [\n")
	r = s.nookEnv(t, broken, "", "pull", "searched/bb:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "registries.conf", "fix it")
}

// A mirror: a name at a registry that does not exist, served by its mirror.
func TestRegistriesConfMirror(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "regconf-mirror", storeOptions{}, false)
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/mirrored/bb:1")
	// The mirror is on the loopback interface but the name is not: it needs insecure = true.
	conf := fmt.Sprintf("[[registry]]\nlocation = \"nook-origin.invalid/team\"\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", reg.addr+"/mirrored")
	env := onlyRegistriesConf(t, conf)
	r := s.nookEnv(t, env, "", "pull", "-q", "nook-origin.invalid/team/bb:1")
	assertExit(t, r, 0)
	assertEqual(t, "pulled through the mirror", imageIDOf(t, s, "nook-origin.invalid/team/bb:1"), imageIDOf(t, s, "demo"))
	// Without the configuration the origin is looked up, and does not exist.
	s.mustNook(t, "rmi", "nook-origin.invalid/team/bb:1")
	r = s.nook(t, "pull", "-q", "nook-origin.invalid/team/bb:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "nook-origin.invalid")
}

// blocked = true: a clear refusal for pull and push, for that prefix only.
func TestRegistriesConfBlocked(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "regconf-blocked", storeOptions{}, false)
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/blocked/bb:1")
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/open/bb:1")
	env := userRegistriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\nblocked = true\n", reg.addr+"/blocked"), "")
	before := graphEntries(s)
	r := s.nookEnv(t, env, "", "pull", reg.addr+"/blocked/bb:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "blocked in registries.conf", reg.addr)
	assertNoNewGraphEntries(t, s, before, "a blocked pull")
	r = s.nookEnv(t, env, "", "push", "demo", reg.addr+"/blocked/bb:2")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "blocked in registries.conf")
	// Another repository of the same registry is not blocked.
	r = s.nookEnv(t, env, "", "pull", "-q", reg.addr+"/open/bb:1")
	assertExit(t, r, 0)
}

var (
	remoteRegistryOnce sync.Once
	remoteRegistry     *registry
	remoteRegistryErr  error
)

// hostAddress is an IPv4 address of this machine that is not on the loopback interface.
func hostAddress() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return ""
}

// insecure = true lets nook use a plain-HTTP registry that is not on the loopback interface
// (which Docker's rules alone trust) without --tls-verify=false.
func TestRegistriesConfInsecure(t *testing.T) {
	needRegistries(t)
	addr := hostAddress()
	if addr == "" {
		skipf(t, "this host has no non-loopback IPv4 address to serve a registry on")
	}
	remoteRegistryOnce.Do(func() {
		bin, err := exec.LookPath("docker-registry")
		if err != nil {
			bin = "/usr/bin/docker-registry"
		}
		remoteRegistry, remoteRegistryErr = startRegistry(bin, addr, "", "")
	})
	if remoteRegistryErr != nil {
		t.Fatalf("start a registry on %s: %v", addr, remoteRegistryErr)
	}
	reg := remoteRegistry
	s := newStore(t, "regconf-insecure", storeOptions{}, false)
	name := reg.addr + "/insecure/bb:1"

	// Without a word from registries.conf: HTTPS is required, and the error says what to do.
	none := onlyRegistriesConf(t, "")
	r := s.nookEnv(t, none, "", "push", "-q", "demo", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "plain HTTP", "--tls-verify=false", "insecure = true")

	env := userRegistriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg.addr), "")
	r = s.nookEnv(t, env, "", "push", "-q", "demo", name)
	assertExit(t, r, 0)
	s.mustNook(t, "rmi", "demo")
	r = s.nookEnv(t, env, "", "pull", "-q", name)
	assertExit(t, r, 0)
	assertEqual(t, "run the image pulled over plain HTTP", s.mustNook(t, "run", "--rm", name, "echo", "insecure ok").Stdout, "insecure ok\n")
	// --tls-verify=true still wins over registries.conf.
	r = s.nookEnv(t, env, "", "pull", "--tls-verify=true", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "plain HTTP")
	assertNoOrphanLayers(t, s)
}
