package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A registry is Debian's docker-registry serving from a temporary folder on 127.0.0.1. The
// suite starts two on first use (one open, one with htpasswd auth); they are killed when the
// suite's process ends (parent-death signal from a thread that lives as long as the process).
type registry struct {
	addr       string // host:port
	user, pass string // set for the one with auth
	log        string // its log file, with an access line per request
}

var (
	registriesOnce sync.Once
	openRegistry   *registry
	authRegistry   *registry
	registryErr    error
)

// needRegistries starts the registries if needed. Call it before useMain/newStore, so that
// the registry processes exist before the leak check's snapshot.
func needRegistries(t *testing.T) (open, auth *registry) {
	t.Helper()
	registriesOnce.Do(func() {
		bin, err := exec.LookPath("docker-registry")
		if err != nil {
			if _, err2 := os.Stat("/usr/bin/docker-registry"); err2 == nil {
				bin = "/usr/bin/docker-registry"
			} else {
				registryErr = fmt.Errorf("docker-registry is not installed (apt-get install docker-registry; test/run-e2e.sh does it as root)")
				return
			}
		}
		openRegistry, registryErr = startRegistry(bin, "127.0.0.1", "", "")
		if registryErr != nil {
			return
		}
		authRegistry, registryErr = startRegistry(bin, "127.0.0.1", "nookuser", "s3cret-pass")
	})
	if registryErr != nil {
		t.Fatalf("start the test registry: %v", registryErr)
	}
	return openRegistry, authRegistry
}

func registryPort() (int, error) { return freePortOn("127.0.0.1") }

func freePortOn(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startRegistry(bin, host, user, pass string) (*registry, error) {
	dir, err := os.MkdirTemp(baseDir, "registry-")
	if err != nil {
		return nil, err
	}
	port, err := freePortOn(host)
	if err != nil {
		return nil, err
	}
	r := &registry{addr: net.JoinHostPort(host, fmt.Sprint(port)), user: user, pass: pass, log: filepath.Join(dir, "log")}
	auth := ""
	if user != "" {
		hp, err := exec.LookPath("htpasswd")
		if err != nil {
			return nil, fmt.Errorf("htpasswd is not installed (apt-get install apache2-utils)")
		}
		out, err := exec.Command(hp, "-Bbn", user, pass).Output()
		if err != nil {
			return nil, fmt.Errorf("htpasswd: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: nook-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), r.addr, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(r.log)
	if err != nil {
		return nil, err
	}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child ends: this one never does.
		runtime.LockOSThread()
		cmd := exec.Command(bin, "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		select {}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + r.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 401 {
				return r, nil
			}
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	return nil, fmt.Errorf("registry on %s did not answer within 20 s; its log:\n%s", r.addr, log)
}

// ---- store inspection ------------------------------------------------------------

type storeLayer struct {
	ID     string `json:"id"`
	Parent string `json:"parent"`
	Flags  map[string]any
}

type storeImage struct {
	ID    string   `json:"id"`
	Layer string   `json:"layer"`
	Names []string `json:"names"`
}

type storeContainer struct {
	Layer string `json:"layer"`
}

func readJSONGlob(t *testing.T, pattern string, v any) {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		return
	}
	b, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatalf("read %s: %v", m[0], err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parse %s: %v", m[0], err)
	}
}

// assertNoOrphanLayers checks the store's own records: every layer belongs to an image or a
// container (directly or as a parent), and nook's temporary folder is gone.
func assertNoOrphanLayers(t *testing.T, s *store) {
	t.Helper()
	var layers []storeLayer
	var images []storeImage
	var ctrs []storeContainer
	readJSONGlob(t, filepath.Join(s.graphRoot(), "*-layers", "layers.json"), &layers)
	readJSONGlob(t, filepath.Join(s.graphRoot(), "*-images", "images.json"), &images)
	readJSONGlob(t, filepath.Join(s.graphRoot(), "*-containers", "containers.json"), &ctrs)
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			id = parent[id]
		}
	}
	for _, i := range images {
		mark(i.Layer)
	}
	for _, c := range ctrs {
		mark(c.Layer)
	}
	for _, l := range layers {
		if !used[l.ID] {
			t.Errorf("orphaned layer %s in %s (no image or container uses it)", l.ID, s.graphRoot())
		}
	}
	if ents, err := os.ReadDir(filepath.Join(s.graphRoot(), "tmp")); err == nil && len(ents) > 0 {
		t.Errorf("temporary files left in %s/tmp: %d entries", s.graphRoot(), len(ents))
	}
}

func layerCount(s *store) int {
	var layers []storeLayer
	m, _ := filepath.Glob(filepath.Join(s.graphRoot(), "*-layers", "layers.json"))
	if len(m) == 0 {
		return 0
	}
	b, err := os.ReadFile(m[0])
	if err != nil || json.Unmarshal(b, &layers) != nil {
		return -1
	}
	return len(layers)
}

// imageIDOf is the full image ID of a local image.
func imageIDOf(t *testing.T, s *store, name string) string {
	t.Helper()
	return strings.TrimSpace(s.mustNook(t, "image", "inspect", "-f", "{{.Id}}", name).Stdout)
}

var digestRe = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// ---- tests ------------------------------------------------------------------------

// Push the busybox image, remove it locally, pull it back (by tag and by digest) and run it.
func TestRegistryPushPullRun(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "registry", storeOptions{}, false)
	name := reg.addr + "/team/busybox:1"

	r := s.nook(t, "push", "--tls-verify=false", "demo", name)
	assertExit(t, r, 0)
	m := regexp.MustCompile(`^1: digest: (sha256:[0-9a-f]{64}) size: \d+$`).FindStringSubmatch(strings.TrimSpace(r.Stdout))
	if m == nil {
		t.Fatalf("nook push: stdout %q, want \"1: digest: sha256:... size: N\"", r.Stdout)
	}
	pushed := m[1]
	// Not a terminal: progress is plain lines on standard error.
	assertContains(t, "push progress", r.Stderr, "Copying blob")

	demoID := imageIDOf(t, s, "demo")
	s.mustNook(t, "rmi", "demo")
	r = s.nook(t, "pull", "--tls-verify=false", name)
	assertExit(t, r, 0)
	assertContains(t, "pull stdout", r.Stdout, "Digest: "+pushed)
	assertContains(t, "pull stdout", r.Stdout, "Status: Downloaded newer image for "+name)
	assertContains(t, "pull progress", r.Stderr, "Copying blob")
	assertEqual(t, "image ID after push and pull", imageIDOf(t, s, name), demoID)
	assertEqual(t, "run the pulled image", s.mustNook(t, "run", "--rm", name, "echo", "pulled").Stdout, "pulled\n")

	// Pulling again changes nothing; -q prints the name only.
	r = s.mustNook(t, "pull", "-q", "--tls-verify=false", name)
	assertEqual(t, "pull -q", r.Stdout, name+"\n")
	r = s.nook(t, "pull", "--tls-verify=false", name)
	assertExit(t, r, 0)
	assertContains(t, "pull again", r.Stdout, "Image is up to date for "+name)

	// --digests shows the registry's digest; a pull by digest finds the same image.
	r = s.mustNook(t, "images", "--digests")
	assertContains(t, "images --digests", r.Stdout, pushed)
	r = s.mustNook(t, "images", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
	assertContains(t, "images --format with digest", r.Stdout, reg.addr+"/team/busybox 1 "+pushed)
	s.mustNook(t, "rmi", name)
	byDigest := reg.addr + "/team/busybox@" + pushed
	s.mustNook(t, "pull", "-q", byDigest)
	assertEqual(t, "image ID pulled by digest", imageIDOf(t, s, byDigest), demoID)
	assertEqual(t, "run by digest", s.mustNook(t, "run", "--rm", byDigest, "echo", "ok").Stdout, "ok\n")
	rows := s.mustNook(t, "images", "--format", "{{.Repository}}|{{.Tag}}|{{.Digest}}").Stdout
	assertContains(t, "images after a pull by digest", rows, reg.addr+"/team/busybox|<none>|"+pushed)
	s.mustNook(t, "rmi", byDigest)
	assertNoOrphanLayers(t, s)
}

// A second push of the same layers to another repository of the registry mounts them there
// instead of uploading them again: containers/image knows from its blob-info cache, kept
// across commands in the store user's XDG_DATA_HOME, which repository already has each blob (a
// full engine built without cgo has only a stub of that cache, in memory for one command).
func TestRegistryPushMountsAcrossRepositories(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "registry-mount", storeOptions{}, false)
	// The registry's access log: a mount is a POST .../blobs/uploads/?from=...&mount=... answered
	// 201; an upload ends with a PUT .../blobs/uploads/...?digest=... of its data.
	requests := func(repo string) (mounts, uploads int) {
		log, err := os.ReadFile(reg.log)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(log), "\n") {
			switch {
			case strings.Contains(l, `"POST /v2/`+repo+`/blobs/uploads/?from=mount-a%2Fbb&mount=`) && strings.Contains(l, `" 201 `):
				mounts++
			case strings.Contains(l, `"PUT /v2/`+repo+`/blobs/uploads/`):
				uploads++
			}
		}
		return mounts, uploads
	}
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/mount-a/bb:1")
	_, first := requests("mount-a/bb") // the layer and the config
	if first < 2 {
		t.Fatalf("the first push made %d uploads to mount-a/bb in the registry's log %s, want the layer's and the config's", first, reg.log)
	}
	cache := filepath.Join(s.dataHome, "containers", "cache", "blob-info-cache-v1.sqlite")
	if fi, err := os.Stat(cache); err != nil || fi.Size() == 0 {
		t.Fatalf("after a push, the blob-info cache %s: %v (want a non-empty file)", cache, err)
	}
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/mount-b/bb:1")
	mounts, up := requests("mount-b/bb")
	// The layer is mounted; the config is uploaded again (containers/image puts a config
	// without looking for it elsewhere).
	if mounts != first-1 || up != 1 {
		t.Errorf("push to a second repository: %d mounts from mount-a and %d uploads in the registry's log %s, want %d mounts (every layer) and 1 upload (the config)", mounts, up, reg.log, first-1)
	}
	// The mounted image is whole: another store pulls and runs it.
	s2 := newStore(t, "registry-mount-pull", storeOptions{}, true)
	s2.mustNook(t, "pull", "-q", reg.addr+"/mount-b/bb:1")
	assertEqual(t, "run of the mounted image", s2.mustNook(t, "run", "--rm", reg.addr+"/mount-b/bb:1", "echo", "ok").Stdout, "ok\n")
}

// An image built here, pushed, then pulled back into the same store (or saved and loaded):
// the pull reuses the built layers, found by the chain ID containers/image looks them up by,
// instead of copying them and then failing on the image ID, which the built image holds with
// another top layer. An image built on it elsewhere and pulled here reuses them too.
func TestRegistryPullOfBuiltImage(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "registry-built", storeOptions{}, false)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo one > /one\nRUN echo two > /two\n"})
	s.mustBuild(t, dir, "-q", "-t", "built:1")
	id := imageIDOf(t, s, "built:1")
	name := reg.addr + "/built/img:1"
	s.mustNook(t, "push", "-q", "built:1", name)
	layers := layerCount(s)
	r := s.nook(t, "pull", "-q", name)
	assertExit(t, r, 0)
	assertEqual(t, "image ID of the pulled image", imageIDOf(t, s, name), id)
	assertEqual(t, "layers after pulling back an image built here", layerCount(s), layers)
	archive := filepath.Join(t.TempDir(), "built.tar")
	assertExit(t, s.nook(t, "save", "-o", archive, "built:1"), 0) // progress on stderr
	assertExit(t, s.nook(t, "load", "-q", "-i", archive), 0)
	assertEqual(t, "layers after loading it back", layerCount(s), layers)

	// A child built in another store from the pushed image, pushed, pulled here: one new layer.
	s2 := newStore(t, "registry-built-child", storeOptions{}, true)
	dir2 := writeContext(t, map[string]string{"Dockerfile": "FROM " + name + "\nRUN echo three > /three\n"})
	s2.mustBuild(t, dir2, "-q", "-t", reg.addr+"/built/child:1")
	s2.mustNook(t, "push", "-q", reg.addr+"/built/child:1")
	s.mustNook(t, "pull", "-q", reg.addr+"/built/child:1")
	assertEqual(t, "layers after pulling a child of the built image", layerCount(s), layers+1)
	assertEqual(t, "the child runs", s.mustNook(t, "run", "--rm", reg.addr+"/built/child:1", "cat", "/one", "/two", "/three").Stdout, "one\ntwo\nthree\n")
	s.mustNook(t, "rmi", reg.addr+"/built/child:1", name, "built:1")
	assertNoOrphanLayers(t, s)
}

// Several tags of one image; `nook run` pulls a missing image like docker run.
func TestRegistryTagsAndRunPulls(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "registry-tags", storeOptions{}, false)
	s.mustNook(t, "tag", "demo", "demo:v2")
	s.mustNook(t, "tag", "demo", reg.addr+"/multi/bb:a")
	s.mustNook(t, "tag", "demo", reg.addr+"/multi/bb:b")
	ids := map[string]bool{}
	for _, n := range []string{"demo", "demo:v2", reg.addr + "/multi/bb:a", reg.addr + "/multi/bb:b"} {
		ids[imageIDOf(t, s, n)] = true
	}
	assertEqual(t, "distinct image IDs among the tags", len(ids), 1)
	// A registry on 127.0.0.1 needs no --tls-verify=false (Docker trusts loopback).
	s.mustNook(t, "push", "-q", reg.addr+"/multi/bb:a")
	s.mustNook(t, "push", "-q", reg.addr+"/multi/bb:b")
	r := s.mustNook(t, "rmi", "demo:v2")
	assertEqual(t, "rmi of one tag", r.Stdout, "Untagged: demo:v2\n")

	// Another store, empty: run pulls.
	s2 := newStore(t, "registry-runpull", storeOptions{}, true)
	r = s2.nook(t, "run", "--rm", reg.addr+"/multi/bb:b", "echo", "hello")
	assertExit(t, r, 0)
	assertEqual(t, "run output", r.Stdout, "hello\n")
	assertContains(t, "run stderr", r.Stderr, "Unable to find image '"+reg.addr+"/multi/bb:b' locally")
	// Now it is local: no pull, nothing on stderr.
	s2.mustNook(t, "run", "--rm", reg.addr+"/multi/bb:b", "true")
	s2.mustNook(t, "pull", "-q", reg.addr+"/multi/bb:a")
	rows := s2.mustNook(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").Lines()
	if len(rows) != 2 {
		t.Fatalf("images after pulling two tags: %q, want two rows", rows)
	}
	if strings.Fields(rows[0])[1] != strings.Fields(rows[1])[1] {
		t.Errorf("the two tags should share one image ID: %q", rows)
	}
	// A missing image in a registry: run fails like pull.
	r = s2.nook(t, "run", "--rm", reg.addr+"/multi/bb:nope", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "image not known", reg.addr+"/multi/bb:nope", "pulling it failed", "not found")
}

// Login, logout, and credentials from ~/.docker/config.json.
func TestRegistryAuth(t *testing.T) {
	_, areg := needRegistries(t)
	s := newStore(t, "registry-auth", storeOptions{}, false)
	name := areg.addr + "/private/bb:1"

	r := s.nook(t, "push", "-q", "demo", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "unauthorized", "nook login")

	r = s.nookEnv(t, nil, "wrong-pass\n", "login", "-u", areg.user, "--password-stdin", areg.addr)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "unauthorized")
	if _, err := os.Stat(filepath.Join(s.runtimeDir, "containers", "auth.json")); err == nil {
		b, _ := os.ReadFile(filepath.Join(s.runtimeDir, "containers", "auth.json"))
		assertNotContains(t, "auth.json after a failed login", string(b), areg.addr)
	}

	r = s.nookEnv(t, nil, areg.pass+"\n", "login", "-u", areg.user, "--password-stdin", areg.addr)
	assertExit(t, r, 0)
	assertEqual(t, "login output", r.Stdout, "Login Succeeded\n")
	b, err := os.ReadFile(filepath.Join(s.runtimeDir, "containers", "auth.json"))
	if err != nil {
		t.Fatalf("login should write $XDG_RUNTIME_DIR/containers/auth.json: %v", err)
	}
	assertContains(t, "auth.json", string(b), areg.addr)

	s.mustNook(t, "push", "-q", "demo", name)
	s.mustNook(t, "rmi", "demo")
	s.mustNook(t, "pull", "-q", name)
	assertEqual(t, "run after an authenticated pull", s.mustNook(t, "run", "--rm", name, "echo", "auth").Stdout, "auth\n")

	r = s.mustNook(t, "logout", areg.addr)
	assertEqual(t, "logout", r.Stdout, "Removing login credentials for "+areg.addr+"\n")
	r = s.mustNook(t, "logout", areg.addr)
	assertEqual(t, "second logout", r.Stdout, "Not logged in to "+areg.addr+"\n")
	s.mustNook(t, "rmi", name)
	r = s.nook(t, "pull", "-q", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "unauthorized")

	// Docker's config file is read too.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, areg.addr, base64.StdEncoding.EncodeToString([]byte(areg.user+":"+areg.pass)))
	if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.nookEnv(t, []string{"HOME=" + home}, "", "pull", "-q", name)
	assertExit(t, r, 0)
	s.mustNook(t, "rmi", name)

	// Wrong credentials in Docker's file: a clear refusal.
	cfg = fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, areg.addr, base64.StdEncoding.EncodeToString([]byte(areg.user+":nope")))
	if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.nookEnv(t, []string{"HOME=" + home}, "", "pull", "-q", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "unauthorized")
	assertNoOrphanLayers(t, s)
}

// Without XDG_RUNTIME_DIR, login (on the host) and pull (in the engine, root of the user
// namespace) use the same auth.json, $XDG_CONFIG_HOME/containers/auth.json; Docker's config
// file is read too.
func TestRegistryAuthWithoutRuntimeDir(t *testing.T) {
	_, areg := needRegistries(t)
	s := newStore(t, "registry-auth-nort", storeOptions{noRuntimeDir: true}, false)
	name := areg.addr + "/nort/bb:1"
	cfgHome := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + cfgHome}

	r := s.nookEnv(t, env, areg.pass+"\n", "login", "-u", areg.user, "--password-stdin", areg.addr)
	assertExit(t, r, 0)
	b, err := os.ReadFile(filepath.Join(cfgHome, "containers", "auth.json"))
	if err != nil {
		t.Fatalf("login without XDG_RUNTIME_DIR should write $XDG_CONFIG_HOME/containers/auth.json: %v", err)
	}
	assertContains(t, "auth.json", string(b), areg.addr)
	r = s.nookEnv(t, env, "", "push", "-q", "demo", name)
	assertExit(t, r, 0)
	s.mustNook(t, "rmi", "demo")
	r = s.nookEnv(t, env, "", "pull", "-q", name)
	assertExit(t, r, 0)
	assertEqual(t, "run after the pull", s.mustNook(t, "run", "--rm", name, "echo", "nort").Stdout, "nort\n")
	s.mustNook(t, "rmi", name)
	r = s.nookEnv(t, env, "", "logout", areg.addr)
	assertExit(t, r, 0)
	assertEqual(t, "logout", r.Stdout, "Removing login credentials for "+areg.addr+"\n")
	r = s.nookEnv(t, env, "", "pull", "-q", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "unauthorized")

	// ~/.docker/config.json, with no auth.json at all.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, areg.addr, base64.StdEncoding.EncodeToString([]byte(areg.user+":"+areg.pass)))
	if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.nookEnv(t, []string{"HOME=" + home}, "", "pull", "-q", name)
	assertExit(t, r, 0)
	assertEqual(t, "run after a pull with Docker's credentials", s.mustNook(t, "run", "--rm", name, "echo", "docker cfg").Stdout, "docker cfg\n")
	assertNoOrphanLayers(t, s)
}

// Registry faults: each one line, exit 125, nothing left in the store.
func TestRegistryFaults(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "registry-faults", storeOptions{}, false)
	before := graphEntries(s)

	port, err := registryPort()
	if err != nil {
		t.Fatal(err)
	}
	r := s.nook(t, "pull", fmt.Sprintf("127.0.0.1:%d/nothing/here:1", port))
	assertExit(t, r, 125)
	assertErrorLine(t, r, "cannot reach", "registry")

	s.mustNook(t, "push", "-q", "demo", reg.addr+"/faults/bb:1")
	r = s.nook(t, "pull", reg.addr+"/faults/bb:nosuchtag")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "not found", "tag")
	r = s.nook(t, "pull", reg.addr+"/faults/nosuchrepo:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "not found")

	r = s.nook(t, "pull", "UPPER/case")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "invalid")

	// --tls-verify=true against a plain-HTTP registry.
	r = s.nook(t, "pull", "--tls-verify=true", reg.addr+"/faults/bb:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--tls-verify=false")
	assertNoNewGraphEntries(t, s, before, "failed pulls")
}

// A manifest list with only another architecture.
func TestRegistryOtherArchitecture(t *testing.T) {
	reg, _ := needRegistries(t)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (apt-get install skopeo; test/run-e2e.sh does it as root)")
	}
	s := newStore(t, "registry-arch", storeOptions{}, true)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	dir := filepath.Join(t.TempDir(), "layout")
	busybox, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOCILayout(dir, "", other, true, [][]byte{busybox}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(skopeo, "copy", "--all", "--dest-tls-verify=false", "oci:"+dir, "docker://"+reg.addr+"/arch/only:1").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy to the registry: %v\n%s", err, out)
	}
	// Every store of the graph root (images, containers, layers) has its folder before the
	// snapshot: prune opens them all.
	s.mustNook(t, "image", "prune", "-f")
	before := graphEntries(s)
	r := s.nook(t, "pull", reg.addr+"/arch/only:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "no variant for this machine", runtime.GOARCH)
	assertNoNewGraphEntries(t, s, before, "a pull for another architecture")
}

// Two pulls of one image at once both succeed, and give one image.
func TestRegistryConcurrentPulls(t *testing.T) {
	reg, _ := needRegistries(t)
	src := newStore(t, "registry-cc-src", storeOptions{}, false)
	name := reg.addr + "/cc/big:1"
	pushBig(t, src, name)
	s := newStore(t, "registry-cc", storeOptions{}, true)
	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.exec(context.Background(), nil, "", "pull", "-q", name)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("concurrent pull %d: %s", i, r)
		}
	}
	assertEqual(t, "images after concurrent pulls", len(s.mustNook(t, "images", "-q").Lines()), 1)
	assertEqual(t, "run", s.mustNook(t, "run", "--rm", name, "cat", "/marker").Stdout, "big\n")
	assertNoOrphanLayers(t, s)
}

// A pull killed with SIGKILL halfway: the next pull succeeds and no layer is orphaned.
func TestRegistryPullKilled(t *testing.T) {
	reg, _ := needRegistries(t)
	src := newStore(t, "registry-kill-src", storeOptions{}, false)
	name := reg.addr + "/kill/big:1"
	pushBig(t, src, name)

	caught := false
	for attempt := 0; attempt < 3 && !caught; attempt++ {
		s := newStore(t, fmt.Sprintf("registry-kill-%d", attempt), storeOptions{}, true)
		ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
		cmd := s.command(ctx, nil, "pull", "-q", name)
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		// Kill once the first layer is committed and before the image is: then a complete
		// layer of an image that does not exist yet is in the store.
		start := layerCount(s)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		killed := false
	wait:
		for {
			select {
			case <-done:
				break wait
			default:
			}
			if layerCount(s) > start && layerCount(s) < 3 {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				killed = true
				<-done
				break wait
			}
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
		if !killed {
			t.Logf("attempt %d: the pull finished before it could be killed", attempt)
			continue
		}
		caught = true
		t.Logf("attempt %d: killed with %d layer(s) in the store", attempt, layerCount(s))
		assertEqual(t, "images after the killed pull", len(s.mustNook(t, "images", "-q").Lines()), 0)
		s.mustNook(t, "pull", "-q", name)
		assertEqual(t, "run after the second pull", s.mustNook(t, "run", "--rm", name, "cat", "/marker").Stdout, "big\n")
		assertNoOrphanLayers(t, s)
		// And a prune -a leaves an empty store.
		s.mustNook(t, "image", "prune", "-a", "-f")
		assertEqual(t, "layers after prune -a", layerCount(s), 0)
	}
	if !caught {
		t.Errorf("a pull was never caught halfway in 3 attempts: the kill test proved nothing")
	}
}

// pushBig pushes a three-layer image (busybox, then two layers of ~16 MB of random data) to
// name, built as a docker-archive and loaded.
func pushBig(t *testing.T, s *store, name string) {
	t.Helper()
	busybox, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := randomLayer("data/a", 16<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	l3, err := randomLayer("data/b", 16<<20, "big\n")
	if err != nil {
		t.Fatal(err)
	}
	arch := filepath.Join(t.TempDir(), "big.tar")
	if err := writeDockerArchive(arch, []string{"big:1"}, [][]byte{busybox, l2, l3}); err != nil {
		t.Fatal(err)
	}
	s.mustNook(t, "load", "-q", "-i", arch)
	s.mustNook(t, "push", "-q", "big:1", name)
}

// Progress: bars (drawn with terminal escapes) when nook runs on a terminal, plain lines when
// its output goes to pipes, nothing with -q.
func TestRegistryProgress(t *testing.T) {
	reg, _ := needRegistries(t)
	src := newStore(t, "registry-progress-src", storeOptions{}, false)
	name := reg.addr + "/progress/big:1"
	pushBig(t, src, name)

	s := newStore(t, "registry-progress-tty", storeOptions{}, true)
	master, slave := openPty(t)
	defer master.Close()
	setWinsize(t, master, 24, 100)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, "pull", name)
	out, readDone := startOnPty(t, cmd, master, slave)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nook pull on a terminal: %v\n--- terminal ---\n%q", err, out.String())
	}
	select {
	case <-readDone:
	case <-time.After(5 * time.Second):
	}
	o := out.String()
	t.Logf("terminal output: %q", truncate(o, 3000))
	assertContains(t, "pull on a terminal", o, "Copying blob")
	assertContains(t, "pull on a terminal: bars redrawn with cursor movements", o, "\x1b[")
	if !regexp.MustCompile(`\[[=>+-]*[-_ ]*\]|done|MiB`).MatchString(o) {
		t.Errorf("pull on a terminal: no progress bar drawn")
	}
	assertContains(t, "pull on a terminal", o, "Status: Downloaded newer image for "+name)

	s2 := newStore(t, "registry-progress-pipe", storeOptions{}, true)
	r := s2.nook(t, "pull", name)
	assertExit(t, r, 0)
	plain := regexp.MustCompile(`^(Getting image source signatures|Copying (blob|config) sha256:[0-9a-f]{64}|Copying blob sha256:[0-9a-f]{64} skipped: already exists|Writing manifest to image destination|Storing signatures)$`)
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) < 4 {
		t.Errorf("pull to a pipe: %d progress line(s), want one per blob and more:\n%s", len(lines), r.Stderr)
	}
	for _, l := range lines {
		if !plain.MatchString(l) {
			t.Errorf("pull to a pipe: progress line %q is not a plain line", l)
		}
	}
	assertNotContains(t, "pull to a pipe", r.Stderr, "\x1b")
	assertNotContains(t, "pull to a pipe", r.Stderr, "\r")

	s3 := newStore(t, "registry-progress-quiet", storeOptions{}, true)
	r = s3.nook(t, "pull", "-q", name)
	assertExit(t, r, 0)
	assertEqual(t, "pull -q: standard error", r.Stderr, "")
	assertEqual(t, "pull -q: standard output", r.Stdout, name+"\n")
}
