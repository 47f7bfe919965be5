package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ---- nook build: RUN --mount, here-documents, steps without changes ----------

// diffIDs is the number of layers of an image, from its configuration as `nook save` writes it.
func diffIDs(t *testing.T, s *store, image string) int {
	t.Helper()
	rootfs, _ := savedConfig(t, s, image)["rootfs"].(map[string]any)
	ids, _ := rootfs["diff_ids"].([]any)
	return len(ids)
}

// A cache mount keeps its content between builds, under the graph root, and never in the
// image; its uid, gid and mode apply when it is made.
func TestBuildRunMountCache(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo\n" +
		"RUN --mount=type=cache,target=/var/cache/app,id=app-cache sh -c 'echo run >> /var/cache/app/log; wc -l < /var/cache/app/log > /count'\n" +
		"RUN --mount=type=cache,target=/home/u/.cache,uid=1000,gid=1001,mode=0700,sharing=locked stat -c '%u %g %a' /home/u/.cache > /owner\n"})
	for _, want := range []string{"1", "2"} {
		s.mustBuild(t, ctx, "--no-cache", "-t", "cached:1")
		r := s.mustNook(t, "run", "--rm", "cached:1", "cat", "/count", "/owner")
		assertEqual(t, "build "+want+": lines in the cache, and its owner and mode", strings.Join(strings.Fields(r.Stdout), " "), want+" 1000 1001 700")
	}
	// Not in the image: neither the content nor the mount points the init made.
	r := s.nook(t, "run", "--rm", "cached:1", "ls", "-d", "/var/cache/app", "/var/cache", "/home/u")
	assertExit(t, r, 1)
	assertContains(t, "ls of the cache targets", r.Stderr, "No such file or directory")
	dir := filepath.Join(s.dataHome, "nook", "build-cache")
	ids, err := filepath.Glob(filepath.Join(dir, "*.id"))
	if err != nil || len(ids) != 2 {
		t.Fatalf("cache directories under %s: %v %v", dir, ids, err)
	}
	found := false
	for _, p := range ids {
		b, _ := os.ReadFile(p)
		if strings.TrimSpace(string(b)) == "app-cache" {
			found = true
			log, err := os.ReadFile(filepath.Join(strings.TrimSuffix(p, ".id"), "log"))
			assertEqual(t, "the cache's content, read on the host", string(log), "run\nrun\n")
			if err != nil {
				t.Error(err)
			}
		}
	}
	if !found {
		t.Errorf("no cache directory has the id app-cache")
	}
}

// A bind mount shows the context (or a path of it) or a stage, read-only; what it reads is part
// of the step's cache key; a tmpfs is a tmpfs; none of them leaves anything in the image.
func TestBuildRunMountBindTmpfs(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	df := "FROM demo AS tools\nRUN mkdir -p /opt/tool && echo from-stage > /opt/tool/v\n" +
		"FROM demo\n" +
		"RUN --mount=type=bind,source=src,target=/mnt/src sh -c 'cat /mnt/src/a.txt > /from-context; touch /mnt/src/w 2>/dev/null && echo writable > /rw || echo read-only > /rw'\n" +
		"RUN --mount=target=/ctx cat /ctx/src/a.txt > /whole-context\n" +
		"RUN --mount=type=bind,from=tools,source=/opt/tool,target=/t cat /t/v > /from-stage\n" +
		"RUN --mount=type=tmpfs,target=/scratch,size=2m sh -c 'echo x > /scratch/f; grep \" /scratch \" /proc/mounts | cut -d\" \" -f3 > /tmpfs-type'\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": df, "src/a.txt": "one\n"})
	s.mustBuild(t, ctx, "-t", "binds:1")
	r := s.mustNook(t, "run", "--rm", "binds:1", "cat", "/from-context", "/rw", "/whole-context", "/from-stage", "/tmpfs-type")
	assertEqual(t, "what the mounts showed", strings.Join(strings.Fields(r.Stdout), " "), "one read-only one from-stage tmpfs")
	r = s.nook(t, "run", "--rm", "binds:1", "ls", "-d", "/mnt", "/ctx", "/t", "/scratch")
	assertExit(t, r, 1)
	if _, err := os.Stat(filepath.Join(ctx, "src", "w")); err == nil {
		t.Errorf("the build wrote into the context")
	}

	// Unchanged context: every step from the cache. A changed bound file: the steps that bind
	// it run again.
	r = s.mustBuild(t, ctx, "-t", "binds:1")
	assertEqual(t, "steps from the cache", usingCache(r), 5)
	if err := os.WriteFile(filepath.Join(ctx, "src", "a.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = s.mustBuild(t, ctx, "-t", "binds:1")
	assertEqual(t, "steps from the cache after a change", usingCache(r), 1)
	r = s.mustNook(t, "run", "--rm", "binds:1", "cat", "/from-context", "/whole-context")
	assertEqual(t, "what the mounts showed after a change", strings.Join(strings.Fields(r.Stdout), " "), "two two")
}

// Here-documents in RUN (a script, a document the command reads, a #! script) and in COPY,
// with variables expanded unless the delimiter is quoted.
func TestBuildHeredoc(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	df := "FROM demo\nARG WHO=world\n" +
		"RUN <<EOF\necho one > /one\necho \"two $WHO\" > /two\nEOF\n" +
		"RUN cat <<EOF > /three\nthree $WHO\nEOF\n" +
		"RUN <<EOF\n#!/bin/sh -e\necho \"script $0\" > /four\nEOF\n" +
		"RUN <<-EOF\n\techo chomped > /five\n\tEOF\n" +
		"COPY <<EOF /etc/greeting\nhello ${WHO} \"quoted\"\nEOF\n" +
		"COPY --chmod=0600 <<'EOF' <<EOT /docs/\nraw ${WHO}\nEOF\nexpanded ${WHO}\nEOT\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": df})
	s.mustBuild(t, ctx, "-t", "heredoc:1")
	r := s.mustNook(t, "run", "--rm", "heredoc:1", "sh", "-c",
		"cat /one /two /three /four /five /etc/greeting /docs/EOF /docs/EOT; stat -c %a /docs/EOF /etc/greeting; test -e /dev/pipes || echo no /dev/pipes")
	assertEqual(t, "files written by here-documents", strings.TrimSpace(r.Stdout), strings.Join([]string{
		"one", "two world", "three world", "script /dev/pipes/EOF", "chomped", `hello world "quoted"`, "raw ${WHO}", "expanded world",
		"600", "644", "no /dev/pipes"}, "\n"))
	r = s.mustBuild(t, ctx, "-t", "heredoc:1")
	assertEqual(t, "steps from the cache", usingCache(r), 6)
}

// A RUN step that changes no file adds no layer (as BuildKit), and the mount points the
// container's init makes (/etc/hosts in an image without one) are not changes.
func TestBuildRunWithoutChanges(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN true\nRUN cat /etc/hosts > /dev/null\nRUN echo x > /x\n"})
	base := diffIDs(t, s, "demo")
	s.mustBuild(t, ctx, "-t", "nochange:1")
	assertEqual(t, "layers: the base's and the one step that wrote a file", diffIDs(t, s, "nochange:1"), base+1)
	r := s.mustNook(t, "history", "nochange:1")
	assertMatch(t, "history", r.Stdout, `RUN true\s+0B`)
}

// `nook image prune` treats build steps as Docker does: the intermediate images of a tagged
// build are its cache and stay; a build result that lost its tag is dangling and goes, with
// the intermediates only it was built on; -a takes every image no container uses.
func TestBuildImagePrune(t *testing.T) {
	s := newStore(t, "build-prune", storeOptions{}, false)
	ids := func(args ...string) string {
		return strings.Join(strings.Fields(s.mustNook(t, append([]string{"images", "-q", "--no-trunc"}, args...)...).Stdout), " ")
	}
	first := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo one > /one\nENV X=1\nRUN echo two > /two\n"})
	s.mustBuild(t, first, "-t", "app:1")
	withAll := ids("-a")
	s.mustNook(t, "image", "prune", "-f")
	assertEqual(t, "images after prune: a tagged build keeps its intermediates", ids("-a"), withAll)
	assertEqual(t, "a rebuild after prune", usingCache(s.mustBuild(t, first, "-t", "app:1")), 3)

	// The same tag on a new build: the old result and the step only it had are dangling.
	second := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nRUN echo one > /one\nENV X=1\nRUN echo three > /three\n"})
	s.mustBuild(t, second, "-t", "app:1")
	r := s.mustNook(t, "images")
	assertContains(t, "images with a dangling build result", r.Stdout, "<none>")
	r = s.mustNook(t, "image", "prune", "-f")
	assertEqual(t, "images removed by prune (the old result)", strings.Count(r.Stdout, "deleted: sha256:")+strings.Count(r.Stdout, "Deleted: sha256:"), 1)
	assertNotContains(t, "images after prune", s.mustNook(t, "images").Stdout, "<none>")
	assertEqual(t, "a rebuild of the tagged image after prune", usingCache(s.mustBuild(t, second, "-t", "app:1")), 3)

	s.mustNook(t, "image", "prune", "-a", "-f")
	assertEqual(t, "images after prune -a", ids("-a"), "")
}
