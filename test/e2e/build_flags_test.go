package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ---- nook build: Docker's --label, --iidfile, --pull, --add-host, --output, --secret --------

// --label sets labels on the final image only, over the Dockerfile's; another label reuses
// every step from the cache.
func TestBuildLabel(t *testing.T) {
	s := newStore(t, "build-label", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nLABEL a=from-file b=keep\nRUN echo x > /f\n"})
	r := s.mustBuild(t, ctx, "--label", "a=flag", "--label", "c=3", "--label", "empty", "-t", "lab:1")
	assertEqual(t, "steps from the cache, first build", usingCache(r), 0)
	labels := func(image string) string {
		cfg, _ := inspectConfig(t, s, image)["Config"].(map[string]any)
		return jsonOf(cfg["Labels"])
	}
	assertEqual(t, "labels with --label", labels("lab:1"), `{"a":"flag","b":"keep","c":"3","empty":""}`)

	r = s.mustBuild(t, ctx, "--label", "a=other", "-t", "lab:2")
	assertEqual(t, "steps from the cache with another --label", usingCache(r), 2)
	assertEqual(t, "labels with another --label", labels("lab:2"), `{"a":"other","b":"keep"}`)
	r = s.mustBuild(t, ctx, "-t", "lab:3")
	assertEqual(t, "steps from the cache without --label", usingCache(r), 2)
	assertEqual(t, "labels without --label", labels("lab:3"), `{"a":"from-file","b":"keep"}`)
	if lab1, lab3 := imageIDOf(t, s, "lab:1"), imageIDOf(t, s, "lab:3"); lab1 == lab3 {
		t.Errorf("lab:1 and lab:3 are the same image %s", lab1)
	}
	// The step the labelled images were made on is an intermediate image, listed only with -a.
	rows := strings.Fields(s.mustNook(t, "images", "--format", "{{.Repository}}:{{.Tag}}").Stdout)
	slices.Sort(rows)
	assertEqual(t, "images listed", strings.Join(rows, " "), "demo:latest lab:1 lab:2 lab:3")

	r = s.build(t, ctx, "--label", "=x")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--label", "=x")
}

// --iidfile gets the image's full ID, as `nook images -q --no-trunc` shows it.
func TestBuildIIDFile(t *testing.T) {
	s := newStore(t, "build-iid", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo x > /f\n"})
	p := filepath.Join(t.TempDir(), "iid")
	if err := os.WriteFile(p, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustBuild(t, ctx, "--iidfile", p, "-t", "iid:1")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ids := s.mustNook(t, "images", "-q", "--no-trunc", "--filter", "reference=iid:1").Stdout
	assertMatch(t, "--iidfile", string(b), `^sha256:[0-9a-f]{64}$`)
	assertEqual(t, "--iidfile against nook images -q --no-trunc", string(b), strings.TrimSpace(ids))

	// A failed build leaves no ID behind; a file in a missing directory is a flag error.
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN false\n"})
	r := s.build(t, bad, "--iidfile", p)
	assertExit(t, r, 125)
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("a failed build left %s: %v", p, err)
	}
	r = s.build(t, ctx, "--iidfile", "/nonexistent/dir/iid")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--iidfile", "/nonexistent/dir")
}

// --pull pulls FROM's image again even when it is present: a base changed in the registry is
// used.
func TestBuildPull(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "build-pull", storeOptions{}, false)
	base := reg.addr + "/team/pullbase:1"
	baseCtx := func(version string) string {
		return writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo " + version + " > /base-version\n"})
	}
	s.mustBuild(t, baseCtx("one"), "-t", base)
	assertExit(t, s.nook(t, "push", base), 0)
	one := imageIDOf(t, s, base)
	app := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN cp /base-version /seen\n"})
	seen := func() string {
		return strings.TrimSpace(s.mustNook(t, "run", "--rm", "app:1", "cat", "/seen").Stdout)
	}
	s.mustBuild(t, app, "-t", "app:1")
	assertEqual(t, "the base first", seen(), "one")

	// The registry's copy changes (pushed from elsewhere); the local one stays.
	other := newStore(t, "build-pull-other", storeOptions{}, false)
	other.mustBuild(t, baseCtx("two"), "-t", base)
	assertExit(t, other.nook(t, "push", base), 0)
	s.mustBuild(t, app, "-t", "app:1")
	assertEqual(t, "the base without --pull", seen(), "one")
	r := s.mustBuild(t, app, "--pull", "-t", "app:1")
	assertEqual(t, "steps from the cache with --pull after a change", usingCache(r), 0)
	assertEqual(t, "the base with --pull", seen(), "two")
	if imageIDOf(t, s, base) == one {
		t.Errorf("--pull left %s on the old image", base)
	}
	// Nothing changed since: the base pulled again is the same image, and the step is cached.
	r = s.mustBuild(t, app, "--pull", "-t", "app:1")
	assertEqual(t, "steps from the cache with --pull, nothing changed", usingCache(r), 1)

	// A base the registry does not have is an error even when present locally.
	s.mustNook(t, "tag", "demo", reg.addr+"/team/localonly:1")
	local := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.addr + "/team/localonly:1\nRUN true\n"})
	r = s.build(t, local, "--pull")
	assertExit(t, r, 125)
	assertContains(t, "--pull of a local-only base", r.Stderr, "FROM "+reg.addr+"/team/localonly:1")
}

// --add-host reaches RUN steps' /etc/hosts (and not the image); --rm and --force-rm are
// accepted.
func TestBuildAddHostRm(t *testing.T) {
	s := newStore(t, "build-addhost", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN grep -w db.example /etc/hosts > /h\n"})
	s.mustBuild(t, ctx, "--add-host", "db.example:192.0.2.10", "--rm", "--force-rm", "-t", "hosts:1")
	out := s.mustNook(t, "run", "--rm", "hosts:1", "cat", "/h").Stdout
	assertEqual(t, "the RUN step's /etc/hosts line", strings.Join(strings.Fields(out), " "), "192.0.2.10 db.example")
	out = s.mustNook(t, "run", "--rm", "hosts:1", "cat", "/etc/hosts").Stdout
	assertNotContains(t, "a container's /etc/hosts", out, "db.example")
	s.mustBuild(t, ctx, "--rm=false", "--no-cache", "--add-host", "db.example=192.0.2.11", "-t", "hosts:1")
	assertEqual(t, "no container left", strings.TrimSpace(s.mustNook(t, "ps", "-a", "-q").Stdout), "")

	r := s.build(t, ctx, "--add-host", "db.example:not-an-ip")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--add-host", "not-an-ip")
}

// tarNames reads a tar's entries: name -> content of regular files ("" for others).
func tarNames(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not a valid tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = string(b)
	}
}

// -o exports the final stage's files, as BuildKit does, and stores no image (a -t is
// ignored); a later build without -o ending at the same step lists it.
func TestBuildOutput(t *testing.T) {
	s := newStore(t, "build-output", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo AS b\nRUN mkdir -p /out/sub && echo hi > /out/hello && echo deep > /out/sub/f && ln -s hello /out/link\n" +
		"FROM scratch\nCOPY --from=b /out /\n"})
	images := func() string { return s.mustNook(t, "images", "--no-trunc").Stdout }
	before := images()

	dir := filepath.Join(t.TempDir(), "out")
	r := s.mustBuild(t, ctx, "-o", "type=local,dest="+dir)
	assertContains(t, "build -o stdout", r.Stdout, "Successfully exported")
	assertFileContent(t, filepath.Join(dir, "hello"), "hi\n")
	assertFileContent(t, filepath.Join(dir, "sub", "f"), "deep\n")
	if l, err := os.Readlink(filepath.Join(dir, "link")); err != nil || l != "hello" {
		t.Errorf("link: %q %v", l, err)
	}
	assertDirEntries(t, dir, "hello", "link", "sub")
	assertEqual(t, "images after -o type=local", images(), before)

	short := filepath.Join(t.TempDir(), "short")
	r = s.build(t, ctx, "-o", short, "-t", "ignored:1")
	assertExit(t, r, 0)
	assertContains(t, "-o with -t", r.Stderr, "--tag is ignored")
	assertEqual(t, "steps from the cache with -o again", usingCache(r), 2)
	assertFileContent(t, filepath.Join(short, "sub", "f"), "deep\n")
	assertEqual(t, "images after -o DIR -t", images(), before)

	tarPath := filepath.Join(t.TempDir(), "out.tar")
	s.mustBuild(t, ctx, "--output", "type=tar,dest="+tarPath)
	data, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	files := tarNames(t, data)
	assertEqual(t, "hello in the tar", files["hello"], "hi\n")
	assertEqual(t, "sub/f in the tar", files["sub/f"], "deep\n")
	r = s.mustNook(t, "build", "-q", "-o", "-", ctx)
	assertEqual(t, "sub/f in the tar on standard output", tarNames(t, []byte(r.Stdout))["sub/f"], "deep\n")
	assertEqual(t, "images after -o tar", images(), before)

	// Stored as an image by a build without -o, tagged or not.
	r = s.mustBuild(t, ctx, "-t", "stored:1")
	assertEqual(t, "steps from the cache without -o", usingCache(r), 2)
	assertContains(t, "images after a build without -o", s.mustNook(t, "images").Stdout, "stored")
	s.mustNook(t, "rmi", "stored:1")
	r = s.mustBuild(t, ctx)
	assertContains(t, "images after an untagged build of the exported result", s.mustNook(t, "images", "-q").Stdout, builtID(t, r))

	for _, bad := range []string{"type=registry,dest=x", "type=local", "type=tar,foo=1", "type=local,dest=-"} {
		r = s.build(t, ctx, "-o", bad)
		assertExit(t, r, 125)
		assertErrorLine(t, r, "--output")
	}
}

// A secret is readable in the RUN that mounts it, at /run/secrets/ID or its target or as a
// variable, and nowhere in the image; its content is not in the cache key.
func TestBuildSecret(t *testing.T) {
	s := newStore(t, "build-secret", storeOptions{}, false)
	const value = "s3cr3t-value"
	df := "FROM demo\n" +
		"RUN --mount=type=secret,id=tok sh -c 'sha256sum < /run/secrets/tok | cut -c1-16 > /secret-sum; stat -c %a /run/secrets/tok > /mode'\n" +
		"RUN --mount=type=secret,id=tok,target=/etc/tok.txt,mode=0444,uid=1000 sh -c 'wc -c < /etc/tok.txt > /len; stat -c %u /etc/tok.txt > /uid'\n" +
		"RUN --mount=type=secret,id=ev,env=MY_TOKEN sh -c 'echo ${#MY_TOKEN} > /envlen'\n" +
		"RUN --mount=type=secret,id=absent cat /run/secrets/absent > /absent 2>&1 || echo missing > /absent\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": df})
	src := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(src, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SECRET_FROM_ENV=env-secret-value"}
	args := []string{"build", "--secret", "id=tok,src=" + src, "--secret", "id=ev,env=SECRET_FROM_ENV", "-t", "sec:1", ctx}
	r := s.nookEnv(t, env, "", args...)
	assertExit(t, r, 0)
	r = s.mustNook(t, "run", "--rm", "sec:1", "cat", "/secret-sum", "/mode", "/len", "/uid", "/envlen", "/absent")
	sum := fmt.Sprintf("%x", sha256Sum([]byte(value)))[:16]
	assertEqual(t, "what the steps saw", strings.Join(strings.Fields(r.Stdout), " "), sum+" 400 12 1000 16 missing")

	// Nowhere in the image: no mount point left, no value in any layer or the configuration.
	r = s.nook(t, "run", "--rm", "sec:1", "ls", "-d", "/run/secrets", "/etc/tok.txt")
	assertExit(t, r, 1)
	out := filepath.Join(t.TempDir(), "sec.tar")
	assertExit(t, s.nook(t, "save", "-o", out, "sec:1"), 0)
	saved, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(saved, []byte(value)) || bytes.Contains(saved, []byte("env-secret-value")) {
		t.Errorf("the saved image holds a secret's value")
	}
	layers := 0
	for name, content := range tarNames(t, saved) {
		if _, err := tar.NewReader(strings.NewReader(content)).Next(); err != nil || strings.HasSuffix(name, ".json") {
			continue // not a layer
		}
		layers++
		for entry := range tarNames(t, []byte(content)) {
			if strings.Contains(entry, "secrets") || strings.Contains(entry, "tok") || strings.Contains(entry, "MY_TOKEN") {
				t.Errorf("layer %s of the saved image has an entry %s", name, entry)
			}
		}
	}
	assertEqual(t, "layers in the saved image", layers, 5)

	// Another value: every step from the cache, as BuildKit (the value is no input).
	if err := os.WriteFile(src, []byte("other-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = s.nookEnv(t, env, "", args...)
	assertExit(t, r, 0)
	assertEqual(t, "steps from the cache with another secret value", usingCache(r), 4)

	r = s.build(t, ctx, "--secret", "id=tok,src=/nonexistent/tok")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--secret", "/nonexistent/tok")
	r = s.build(t, ctx, "--secret", "id=ev,env=NOOK_TEST_UNSET_VARIABLE")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "NOOK_TEST_UNSET_VARIABLE")
	req := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN --mount=type=secret,id=needed,required cat /run/secrets/needed\n"})
	r = s.build(t, req)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "id=needed", "required", "--secret")
}
