package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// ---- nook build --------------------------------------------------------------

// writeContext makes a build context: files maps a path to its content; a trailing
// "->target" content makes a symlink.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// build runs `nook build` with args, then the context directory.
func (s *store) build(t *testing.T, ctxDir string, args ...string) result {
	t.Helper()
	return s.nook(t, append(append([]string{"build"}, args...), ctxDir)...)
}

func (s *store) mustBuild(t *testing.T, ctxDir string, args ...string) result {
	t.Helper()
	r := s.build(t, ctxDir, args...)
	if r.Code != 0 {
		t.Fatalf("nook build %v: exit %d\n%s", args, r.Code, r)
	}
	return r
}

var builtRE = regexp.MustCompile(`(?m)^Successfully built ([0-9a-f]{12})$`)

func builtID(t *testing.T, r result) string {
	t.Helper()
	m := builtRE.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no 'Successfully built <id>' line in:\n%s", r.Stdout)
	}
	return m[1]
}

func usingCache(r result) int { return strings.Count(r.Stdout, " ---> Using cache\n") }

// inspectConfig reads an image's configuration through `nook inspect`.
func inspectConfig(t *testing.T, s *store, image string) map[string]any {
	t.Helper()
	r := s.mustNook(t, "inspect", "--type", "image", image)
	var docs []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("nook inspect %s: %v\n%s", image, err, r.Stdout)
	}
	return docs[0]
}

// savedConfig reads an image's configuration blob as `nook save` writes it, with Docker's
// extensions (Healthcheck, OnBuild, Shell) that `inspect` does not show.
func savedConfig(t *testing.T, s *store, image string) map[string]any {
	t.Helper()
	out := filepath.Join(t.TempDir(), "img.tar")
	assertExit(t, s.nook(t, "save", "-o", out, image), 0)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, ".json") {
			files[h.Name], _ = io.ReadAll(tr)
		}
	}
	var mf []struct{ Config string }
	if err := json.Unmarshal(files["manifest.json"], &mf); err != nil || len(mf) != 1 {
		t.Fatalf("saved archive has no usable manifest.json: %v", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(files[mf[0].Config], &cfg); err != nil {
		t.Fatalf("config %s: %v", mf[0].Config, err)
	}
	return cfg
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// Every instruction, on the busybox image: the output has Docker's classic shape, the image
// runs with `nook run` and its configuration is what the Dockerfile says.
func TestBuildEveryInstruction(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `# syntax=docker/dockerfile:1
ARG BASE=demo
FROM ${BASE}
MAINTAINER Kto To Wie
ARG GREETING=hello
ENV APP_HOME=/srv/app PATH=/srv/app/bin:/bin:/usr/bin
LABEL org.example.title="build test" version=$GREETING
WORKDIR $APP_HOME
COPY --chmod=0755 bin/ bin/
COPY --chown=user:user data.txt ./
ADD files.tar.gz /opt/
RUN echo "$GREETING from RUN" > greeting && ls -ln data.txt > owner && id -u > ran-as
RUN ["/bin/sh", "-c", "echo exec form > exec.txt"]
SHELL ["/bin/sh", "-e", "-c"]
RUN test "$0" = /bin/sh && echo shell-set > shell.txt
EXPOSE 8080 53/udp
VOLUME /srv/data
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s CMD wget -q -O- localhost:8080 || exit 1
ONBUILD RUN echo triggered > /tmp/onbuild.txt
USER user
ENTRYPOINT ["/srv/app/bin/hello"]
CMD ["world"]
`,
		"bin/hello": "#!/bin/sh\necho \"hello $*, I am $(id -u) in $(pwd)\"\n",
		"data.txt":  "data\n",
	})
	writeTarGz(t, filepath.Join(ctx, "files.tar.gz"), map[string]string{"unpacked/one.txt": "one\n"})

	r := s.mustBuild(t, ctx, "-t", "every:1", "-t", "every:latest", "--build-arg", "GREETING=hi")
	// 21 steps: every instruction after the global ARG.
	for i := 1; i <= 21; i++ {
		assertContains(t, "build output", r.Stdout, fmt.Sprintf("STEP %d/21: ", i))
	}
	assertContains(t, "build output", r.Stdout, "STEP 1/21: FROM ${BASE}\n")
	assertMatch(t, "build output", r.Stdout, `(?m)^ ---> [0-9a-f]{12} \([0-9.]+s\)$`)
	assertContains(t, "RUN output framing", r.Stdout, " ---> Running in ")
	assertContains(t, "build output", r.Stdout, "Successfully tagged every:1\nSuccessfully tagged every:latest\n")
	id := builtID(t, r)

	// The image runs: ENTRYPOINT + CMD, USER, WORKDIR.
	out := s.mustNook(t, "run", "--rm", "every:1").Stdout
	assertEqual(t, "default command output", out, fmt.Sprintf("hello world, I am 1000 in /srv/app\n"))
	out = s.mustNook(t, "run", "--rm", "every:1", "you").Stdout
	assertEqual(t, "CMD replaced", out, "hello you, I am 1000 in /srv/app\n")
	out = s.mustNook(t, "run", "--rm", "--entrypoint", "/bin/sh", "-u", "0", id, "-c",
		"cat greeting exec.txt shell.txt /opt/unpacked/one.txt ran-as; cat owner | awk '{print $3\":\"$4}'; stat -c %a bin/hello; echo $APP_HOME; test -e /tmp/onbuild.txt || echo no-trigger-here").Stdout
	assertEqual(t, "files made by the build", out, "hi from RUN\nexec form\nshell-set\none\n0\n1000:1000\n755\n/srv/app\nno-trigger-here\n")

	cfg := inspectConfig(t, s, "every:1")
	c := cfg["Config"].(map[string]any)
	assertEqual(t, "Author", cfg["Author"], any("Kto To Wie"))
	assertEqual(t, "User", c["User"], any("user"))
	assertEqual(t, "WorkingDir", c["WorkingDir"], any("/srv/app"))
	assertEqual(t, "StopSignal", c["StopSignal"], any("SIGQUIT"))
	assertEqual(t, "Entrypoint", jsonOf(c["Entrypoint"]), `["/srv/app/bin/hello"]`)
	assertEqual(t, "Cmd", jsonOf(c["Cmd"]), `["world"]`)
	assertEqual(t, "ExposedPorts", jsonOf(c["ExposedPorts"]), `{"53/udp":{},"8080/tcp":{}}`)
	assertEqual(t, "Volumes", jsonOf(c["Volumes"]), `{"/srv/data":{}}`)
	assertEqual(t, "Labels", jsonOf(c["Labels"]), `{"org.example.title":"build test","version":"hi"}`)
	assertContains(t, "Env", jsonOf(c["Env"]), `"APP_HOME=/srv/app"`)
	assertNotContains(t, "Env (ARG values stay out of the image)", jsonOf(c["Env"]), "GREETING")

	saved := savedConfig(t, s, "every:1")
	sc := saved["config"].(map[string]any)
	assertContains(t, "Healthcheck", jsonOf(sc["Healthcheck"]), `"Test":["CMD-SHELL","wget -q -O- localhost:8080 || exit 1"]`)
	assertContains(t, "Healthcheck", jsonOf(sc["Healthcheck"]), `"Interval":30000000000`)
	assertEqual(t, "OnBuild", jsonOf(sc["OnBuild"]), `["RUN echo triggered \u003e /tmp/onbuild.txt"]`)
	assertEqual(t, "Shell", jsonOf(sc["Shell"]), `["/bin/sh","-e","-c"]`)
	hist, _ := saved["history"].([]any)
	if len(hist) < 20 {
		t.Errorf("history has %d entries, want one per step plus the base's: %s", len(hist), jsonOf(hist))
	}
	assertContains(t, "history", jsonOf(hist), `"created_by":"COPY --chown=user:user data.txt ./"`)

	// ONBUILD: a child build runs the trigger (right after FROM, so as the base's USER), and
	// the child does not inherit it.
	child := writeContext(t, map[string]string{"Dockerfile": "FROM every:1\nUSER 0\nRUN cat /tmp/onbuild.txt\n"})
	r = s.mustBuild(t, child, "-t", "child")
	assertContains(t, "child build", r.Stdout, "# Executing 1 build trigger")
	assertContains(t, "child build", r.Stdout, "triggered\n")
	assertEqual(t, "child OnBuild", jsonOf(savedConfig(t, s, "child")["config"].(map[string]any)["OnBuild"]), "null")
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Uid: 1000, Gid: 1000, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(content))
	}
	_ = tw.Close()
	_ = gz.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Multi-stage: COPY --from a stage (by name and index) and from an image; --target stops early;
// FROM a stage; FROM scratch.
func TestBuildMultiStage(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM demo AS builder
RUN mkdir -p /out && echo built > /out/artifact && ln -s artifact /out/link
FROM builder AS tester
RUN test -f /out/artifact && echo tested > /out/tested
FROM scratch AS final
COPY --from=builder /out/artifact /artifact
COPY --from=0 /out/link /link-target
COPY --from=demo /bin/busybox /bin/busybox
COPY --from=tester /out/ /out/
ENTRYPOINT ["/bin/busybox"]
CMD ["cat", "/artifact", "/link-target", "/out/tested"]
`})
	r := s.mustBuild(t, ctx, "-t", "multi")
	assertContains(t, "build output", r.Stdout, "STEP 11/11: CMD")
	out := s.mustNook(t, "run", "--rm", "multi").Stdout
	assertEqual(t, "multi-stage result", out, "built\nbuilt\ntested\n")
	// Beyond what was copied, only the mount points `nook run` makes at start (dev, etc, proc, sys).
	out = s.mustNook(t, "run", "--rm", "multi", "ls", "/").Stdout
	assertEqual(t, "scratch image holds only what was copied", strings.Join(strings.Fields(out), " "), "artifact bin dev etc link-target out proc sys")
	out = s.mustNook(t, "run", "--rm", "multi", "ls", "/etc").Stdout
	assertEqual(t, "files in /etc of the scratch image (mount points only)", strings.Join(strings.Fields(out), " "), "hostname hosts resolv.conf")

	r = s.mustBuild(t, ctx, "--target", "builder", "-t", "onlybuilder")
	assertContains(t, "--target output", r.Stdout, "STEP 2/2: RUN")
	assertNotContains(t, "--target output", r.Stdout, "STEP 3/")
	out = s.mustNook(t, "run", "--rm", "onlybuilder", "cat", "/out/artifact").Stdout
	assertEqual(t, "target stage image", out, "built\n")
	if usingCache(r) != 1 {
		t.Errorf("the builder stage was built already: want 1 'Using cache', got %d", usingCache(r))
	}
}

// The layer cache: nothing changed does no work; touching a file keeps the cache; changing a
// file a COPY reads rebuilds from that COPY on; a changed --build-arg reruns the RUNs that see
// it; --no-cache rebuilds everything; -q prints only the ID.
func TestBuildCache(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `FROM demo
ARG V=1
RUN echo "run one $V" && date +%s%N > /stamp1
COPY a.txt /a.txt
RUN echo run two && date +%s%N > /stamp2
COPY b.txt /b.txt
CMD ["cat", "/a.txt", "/b.txt"]
`,
		"a.txt": "a1\n", "b.txt": "b1\n",
	})
	first := s.mustBuild(t, ctx, "-t", "cached")
	id1 := builtID(t, first)
	if usingCache(first) != 0 {
		t.Errorf("a first build used the cache %d times", usingCache(first))
	}
	assertContains(t, "first build", first.Stdout, "run one 1\n")

	start := time.Now()
	again := s.mustBuild(t, ctx, "-t", "cached")
	t.Logf("fully cached rebuild: %v", time.Since(start))
	// ARG makes no image: 2 RUN, 2 COPY and CMD come from the cache.
	assertEqual(t, "steps from the cache", usingCache(again), 5)
	assertNotContains(t, "cached rebuild", again.Stdout, "Running in")
	assertEqual(t, "image ID of an unchanged rebuild", builtID(t, again), id1)

	future := time.Now().Add(time.Hour)
	_ = os.Chtimes(filepath.Join(ctx, "a.txt"), future, future)
	touched := s.mustBuild(t, ctx)
	assertEqual(t, "steps from the cache after touch", usingCache(touched), 5)

	if err := os.WriteFile(filepath.Join(ctx, "a.txt"), []byte("a2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := s.mustBuild(t, ctx, "-t", "cached")
	assertEqual(t, "steps from the cache after a.txt changed", usingCache(changed), 1)
	assertNotContains(t, "rebuild after a.txt changed", changed.Stdout, "run one 1\n")
	assertContains(t, "rebuild after a.txt changed", changed.Stdout, "run two\n")
	assertEqual(t, "new content", s.mustNook(t, "run", "--rm", "cached").Stdout, "a2\nb1\n")

	arg := s.mustBuild(t, ctx, "--build-arg", "V=2")
	assertEqual(t, "steps from the cache with another --build-arg", usingCache(arg), 0)
	assertContains(t, "rebuild with V=2", arg.Stdout, "run one 2\n")

	none := s.mustBuild(t, ctx, "--no-cache", "-t", "cached")
	assertEqual(t, "steps from the cache with --no-cache", usingCache(none), 0)
	assertContains(t, "--no-cache", none.Stdout, "run one 1\n")
	if builtID(t, none) == builtID(t, changed) {
		t.Error("--no-cache produced the cached image")
	}

	q := s.mustBuild(t, ctx, "-q")
	assertMatch(t, "-q output", q.Stdout, `^sha256:[0-9a-f]{64}\n$`)

	// The Dockerfile from standard input.
	r := s.nookEnv(t, nil, "FROM demo\nRUN echo from stdin\n", "build", "-f", "-", "-t", "stdin", ctx)
	assertExit(t, r, 0)
	assertContains(t, "build -f -", r.Stdout, "from stdin\n")

	// Every RUN step's changes went through the driver's staging area: nothing stays there.
	staging, err := os.ReadDir(filepath.Join(s.graphRoot(), "overlay", "staging"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if len(staging) > 0 {
		t.Errorf("%d entries left in the store's overlay/staging after the builds", len(staging))
	}
}

// .dockerignore keeps files out of COPY and out of the cache key.
func TestBuildDockerignore(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{
		"Dockerfile":    "FROM demo\nCOPY . /ctx/\nRUN find /ctx -type f | sort\n",
		".dockerignore": "*.log\nsecret/\n!keep.log\n",
		"app.txt":       "app", "debug.log": "d", "keep.log": "k", "secret/key": "s", "sub/x.txt": "x",
	})
	s.mustBuild(t, ctx, "-t", "ign")
	out := s.mustNook(t, "run", "--rm", "ign", "find", "/ctx", "-type", "f").Stdout
	for _, want := range []string{"/ctx/app.txt", "/ctx/keep.log", "/ctx/sub/x.txt", "/ctx/Dockerfile"} {
		assertContains(t, "copied files", out, want)
	}
	for _, not := range []string{"debug.log", "secret"} {
		assertNotContains(t, "copied files", out, not)
	}
	if err := os.WriteFile(filepath.Join(ctx, "debug.log"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := s.mustBuild(t, ctx)
	assertEqual(t, "cache hits after an ignored file changed", usingCache(again), 2)
	// -f with a path of its own.
	assertExit(t, s.build(t, ctx, "-f", filepath.Join(ctx, "Dockerfile")), 0)
	// COPY of an ignored file is a missing file.
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nCOPY debug.log /\n", ".dockerignore": "*.log\n", "debug.log": "x"})
	r := s.build(t, bad)
	assertExit(t, r, 125)
	assertContains(t, "COPY of an ignored file", r.Stderr, "Dockerfile:2:")
}

// COPY and ADD details: globs, a file to a new name, --chown by name and number, ADD of a
// URL (with its mode 0600 and --checksum), a symlink inside the context.
func TestBuildCopyAdd(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/dl/remote.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "remote content\n")
	}))
	defer srv.Close()
	sum := "sha256:" + fmt.Sprintf("%x", sha256Sum([]byte("remote content\n")))
	ctx := writeContext(t, map[string]string{
		"Dockerfile": fmt.Sprintf(`FROM demo
COPY *.txt /globbed/
COPY one.txt /renamed
COPY --chown=1000:65534 one.txt /owned-num
COPY --chown=nobody one.txt /owned-name
COPY link-to-one /via-link
COPY dir /copied-dir
ADD %s/dl/remote.txt /downloads/
ADD --checksum=%s %s/dl/remote.txt /checked.txt
`, srv.URL, sum, srv.URL),
		"one.txt": "1\n", "two.txt": "2\n", "link-to-one": "->one.txt",
		"dir/inner/f": "f\n", "dir/l": "->inner/f",
	})
	s.mustBuild(t, ctx, "-t", "copies")
	out := s.mustNook(t, "run", "--rm", "copies", "sh", "-c", `ls /globbed; cat /renamed /via-link; stat -c '%u:%g' /owned-num /owned-name; `+
		`cat /downloads/remote.txt; stat -c %a /downloads/remote.txt; cat /checked.txt; cat /copied-dir/inner/f; readlink /copied-dir/l; ls -d /copied-dir/dir 2>&1 | grep -c 'No such'`).Stdout
	assertEqual(t, "copied files", out, "one.txt\ntwo.txt\n1\n1\n1000:65534\n65534:65534\nremote content\n600\nremote content\nf\ninner/f\n1\n")

	wrong := writeContext(t, map[string]string{"Dockerfile": fmt.Sprintf("FROM demo\nADD --checksum=sha256:%s %s/dl/remote.txt /x\n", strings.Repeat("0", 64), srv.URL)})
	r := s.build(t, wrong)
	assertExit(t, r, 125)
	assertContains(t, "wrong checksum", r.Stderr, "Dockerfile:2:")
	assertContains(t, "wrong checksum", r.Stderr, "does not match")
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// Bad input: a clear error naming the Dockerfile and line, exit 125, no image tagged.
func TestBuildBadInput(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dockerfile string
		extra            map[string]string
		args             []string
		want             []string
	}{
		{"unknown instruction", "FROM demo\nRUN true\nFOO bar\n", nil, nil, []string{"Dockerfile:3:", "unknown instruction: FOO"}},
		{"syntax error", "FROM demo\nCOPY onlyone\n", nil, nil, []string{"Dockerfile:2:", "COPY requires at least two arguments"}},
		{"path outside the context", "FROM demo\nRUN true\nCOPY ../secret /x\n", nil, nil, []string{"Dockerfile:3:", "outside", "build context"}},
		{"symlink leaving the context", "FROM demo\nCOPY link /x\n", map[string]string{"link": "->" + filepath.Join(outside, "secret")}, nil, []string{"Dockerfile:2:", "symlink", "build context"}},
		{"relative symlink leaving the context", "FROM demo\nCOPY sub/link /x\n", map[string]string{"sub/link": "->../../../../../../../etc/passwd"}, nil, []string{"Dockerfile:2:", "build context"}},
		{"missing file", "FROM demo\nWORKDIR /w\nCOPY nope.txt .\n", nil, nil, []string{"Dockerfile:3:", "nope.txt", "no such file"}},
		{"unknown target", "FROM demo AS a\nRUN true\n", nil, []string{"--target", "b"}, []string{"Dockerfile", `target stage "b" not found`}},
		{"unknown FROM image", "FROM nosuch.invalid/img:1\n", nil, nil, []string{"Dockerfile:1:", "FROM nosuch.invalid/img:1"}},
		{"other platform", "FROM --platform=linux/s390x demo\n", nil, nil, []string{"Dockerfile:1:", "platform"}},
		{"bad --chown", "FROM demo\nCOPY --chown=nouser a /a\n", map[string]string{"a": "a"}, nil, []string{"Dockerfile:2:", "nouser"}},
		{"RUN --mount=type=secret not given", "FROM demo\nRUN true\nRUN --mount=type=secret,id=token,required cat /run/secrets/token\n", nil, nil, []string{"Dockerfile:3:", "id=token", "required", "--secret"}},
		{"RUN --mount=type=ssh", "FROM demo\nRUN --mount=type=ssh ssh-add -l\n", nil, nil, []string{"Dockerfile:2:", "RUN --mount=type=ssh is not supported"}},
		{"RUN --mount=type=bind,rw", "FROM demo\nRUN --mount=type=bind,target=/src,rw true\n", nil, nil, []string{"Dockerfile:2:", "type=bind,rw is not supported"}},
		{"RUN --mount bind source outside the context", "FROM demo\nRUN --mount=type=bind,source=../x,target=/x true\n", nil, nil, []string{"Dockerfile:2:", "inside the build context"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"Dockerfile": tc.dockerfile}
			for k, v := range tc.extra {
				files[k] = v
			}
			ctx := writeContext(t, files)
			before := s.mustNook(t, "images", "-q", "--no-trunc").Stdout
			r := s.build(t, ctx, append([]string{"-t", "bad:1"}, tc.args...)...)
			assertExit(t, r, 125)
			last := lastLine(r.Stderr)
			if !strings.HasPrefix(last, "Error: ") {
				t.Errorf("the last line of stderr is not the error: %q", r.Stderr)
			}
			for _, w := range tc.want {
				assertContains(t, "error", last, w)
			}
			assertNotContains(t, "images after a failed build", s.mustNook(t, "images").Stdout, "bad ")
			if tc.name == "unknown instruction" || tc.name == "syntax error" || tc.name == "unknown target" {
				assertEqual(t, "images after a parse error", s.mustNook(t, "images", "-q", "--no-trunc").Stdout, before)
			}
			assertEqual(t, "containers left", s.mustNook(t, "ps", "-a", "-q").Stdout, "")
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// A failing RUN: its exit status and last output lines are shown, nothing is tagged, and the
// cache keeps the steps before it.
func TestBuildFailingRun(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo step two > /two\nRUN echo line one; echo line two; exit 3\nCMD [\"true\"]\n"})
	for _, quiet := range []bool{true, false} {
		args := []string{"-t", "failing"}
		if quiet {
			args = append(args, "-q")
		}
		r := s.build(t, ctx, args...)
		assertExit(t, r, 125)
		assertContains(t, "error", lastLine(r.Stderr), "Dockerfile:3:")
		assertContains(t, "error", lastLine(r.Stderr), "exit status 3")
		assertContains(t, "last output lines on stderr", r.Stderr, "  | line one\n  | line two\n")
		if quiet {
			assertEqual(t, "stdout with -q", r.Stdout, "")
		} else {
			assertContains(t, "second attempt uses the cache for step 2", r.Stdout, "STEP 2/4: RUN echo step two > /two\n ---> Using cache\n")
		}
	}
	assertNotContains(t, "images", s.mustNook(t, "images").Stdout, "failing")
	assertEqual(t, "containers left", s.mustNook(t, "ps", "-a", "-q").Stdout, "")
}

// In single-ID mode a RUN that needs other users fails, and the error says why.
func TestBuildSingleID(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty-subid")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "build-single", storeOptions{env: []string{"NOOK_SUBUID_FILE=" + empty, "NOOK_SUBGID_FILE=" + empty}}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo root works\nRUN chown 1000:1000 /home\n"})
	r := s.build(t, ctx)
	assertExit(t, r, 125)
	assertContains(t, "RUN as root in single-ID mode", r.Stdout, "root works\n")
	assertContains(t, "error", lastLine(r.Stderr), "Dockerfile:3:")
	assertContains(t, "error", lastLine(r.Stderr), "single-ID mode")
	assertContains(t, "error", lastLine(r.Stderr), "apt-get")
}

// The lab text's example, on a Debian base made with mmdebstrap: FROM, MAINTAINER, RUN with
// apt-get update && apt-get install, EXPOSE, CMD in shell form.
func TestBuildDebianApt(t *testing.T) {
	requireSubIDs(t)
	requireSlirp(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		skipf(t, "mmdebstrap is not installed (apt-get install mmdebstrap)")
	}
	tarball, err := debianBase(t)
	if err != nil {
		skipf(t, "no Debian base image: %v", err)
	}
	s := newStore(t, "build-debian", storeOptions{}, true)
	s.mustNook(t, "import", tarball, "debian:bookworm")
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM debian:bookworm
# O ile chcemy, aby proces działał w środowisku Debian 12
MAINTAINER Kto To Wie

RUN apt-get update && apt-get install -y --no-install-recommends lighttpd

EXPOSE 80

CMD lighttpd -D -f /etc/lighttpd/lighttpd.conf
`})
	ctxTimeout, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r := s.exec(ctxTimeout, nil, "", "build", "-t", "web:1", ctx)
	t.Logf("%s", truncate(r.String(), 6000))
	if r.Code != 0 {
		if strings.Contains(r.Stdout+r.Stderr, "Could not resolve") || strings.Contains(r.Stdout+r.Stderr, "Temporary failure resolving") {
			skipf(t, "the Debian mirror is not reachable from a container: %s", lastLine(r.Stderr))
		}
		t.Fatalf("nook build of the lab's Dockerfile: exit %d", r.Code)
	}
	out := s.mustNook(t, "run", "--rm", "web:1", "sh", "-c", "dpkg -s lighttpd | grep Status; stat -c %U /var/cache/lighttpd; command -v lighttpd").Stdout
	assertEqual(t, "installed package", out, "Status: install ok installed\nwww-data\n/usr/sbin/lighttpd\n")
	cfg := inspectConfig(t, s, "web:1")
	assertEqual(t, "Author", cfg["Author"], any("Kto To Wie"))
	c := cfg["Config"].(map[string]any)
	assertEqual(t, "ExposedPorts", jsonOf(c["ExposedPorts"]), `{"80/tcp":{}}`)
	assertEqual(t, "Cmd", jsonOf(c["Cmd"]), `["/bin/sh","-c","lighttpd -D -f /etc/lighttpd/lighttpd.conf"]`)
	again := s.mustBuild(t, ctx, "-t", "web:1")
	assertEqual(t, "cached steps of the lab's Dockerfile (MAINTAINER, RUN, EXPOSE, CMD)", usingCache(again), 4)
}

// debianBase returns a minbase bookworm tarball, made once with mmdebstrap and kept in
// /var/tmp/nook-test-cache between runs.
func debianBase(t *testing.T) (string, error) {
	dir := "/var/tmp/nook-test-cache"
	path := filepath.Join(dir, "debian-bookworm-minbase.tar")
	if st, err := os.Stat(path); err == nil && st.Size() > 1<<20 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// mmdebstrap picks the output format from the name: keep ".tar" at its end.
	tmp := filepath.Join(dir, fmt.Sprintf("debian-bookworm-minbase.%d.tmp.tar", os.Getpid()))
	defer removeAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mmdebstrap", "--mode=unshare", "--variant=minbase", "bookworm", tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mmdebstrap --mode=unshare --variant=minbase bookworm: %v: %s", err, truncate(string(out), 1500))
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// `nook images` hides the intermediate images of build steps, as Docker does; -a shows them.
// An untagged final result stays visible as <none>.
func TestBuildIntermediateImagesHidden(t *testing.T) {
	s := newStore(t, "build-images", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM demo\nRUN echo one > /one\nENV X=1\nRUN echo two > /two\n",
	})
	s.mustBuild(t, ctx, "-t", "layered")
	ids := func(args ...string) []string {
		return strings.Fields(s.mustNook(t, append([]string{"images", "-q", "--no-trunc"}, args...)...).Stdout)
	}
	visible, all := ids(), ids("-a")
	// demo and layered are visible; the RUN and ENV steps before the last only with -a.
	assertEqual(t, "images without -a", len(visible), 2)
	assertEqual(t, "images with -a", len(all), 4)

	untagged := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo three > /three\n"})
	id := builtID(t, s.mustBuild(t, untagged))
	if !slices.ContainsFunc(ids(), func(v string) bool { return strings.HasPrefix(strings.TrimPrefix(v, "sha256:"), id) }) {
		t.Errorf("an untagged build result %s is hidden from `nook images`: %v", id, ids())
	}
}
