package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ---- nook build: COPY --exclude, COPY --parents, bind mounts and .dockerignore ----

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// --exclude takes .dockerignore's patterns, matched below each source (a file by its name),
// on COPY from the context and from a stage, and on ADD; what it leaves out is not part of
// the step's cache key.
func TestBuildCopyExclude(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	df := "FROM demo AS src\nCOPY data /data\n" +
		"FROM demo\n" +
		"COPY --from=src --exclude=*.log --exclude=logs /data /from-stage/\n" +
		"COPY --exclude=*.md --exclude=logs --exclude=**/*.tmp app /app/\n" +
		"COPY --exclude=*.txt hom* /home-files/\n" +
		"ADD --exclude=skip.txt app/sub /added/\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": df,
		"data/keep.txt": "keep\n", "data/drop.log": "drop\n", "data/sub/s.txt": "s\n", "data/logs/l.txt": "l\n", "data/sub/t.tmp": "t\n",
		"app/main.go": "main\n", "app/README.md": "readme\n", "app/sub/notes.md": "notes\n", "app/sub/x.go": "x\n",
		"app/logs/a.log": "a\n", "app/sub/cache.tmp": "c\n", "app/sub/skip.txt": "skip\n",
		"home.go": "go\n", "home.txt": "txt\n"})
	files := func() string {
		r := s.mustNook(t, "run", "--rm", "exclude:1", "sh", "-c", "find /from-stage /app /home-files /added -type f | sort")
		return strings.Join(strings.Fields(r.Stdout), " ")
	}
	s.mustBuild(t, ctx, "-t", "exclude:1")
	assertEqual(t, "files copied", files(), strings.Join([]string{
		"/added/cache.tmp", "/added/notes.md", "/added/x.go",
		"/app/main.go", "/app/sub/notes.md", "/app/sub/skip.txt", "/app/sub/x.go",
		"/from-stage/keep.txt", "/from-stage/sub/s.txt", "/from-stage/sub/t.tmp",
		"/home-files/home.go"}, " "))

	for _, c := range []struct {
		change string
		cached int
	}{
		{"", 5},
		{"data/drop.log", 4},     // the stage's COPY runs again; COPY --from does not copy the file
		{"data/logs/l.txt", 4},   // an excluded directory, from a stage
		{"app/README.md", 5},     // excluded from the context
		{"app/logs/a.log", 5},    // an excluded directory
		{"app/sub/cache.tmp", 4}, // excluded by COPY app, but ADD app/sub copies it
		{"home.txt", 5},          // a file matched by hom* and excluded by its name
		{"app/main.go", 2},       // copied: that COPY and the steps after it run again
		{"data/keep.txt", 0},     // copied from the stage
	} {
		if c.change != "" {
			writeFile(t, filepath.Join(ctx, c.change), "changed "+c.change+"\n")
		}
		r := s.mustBuild(t, ctx, "-t", "exclude:1")
		assertEqual(t, "steps from the cache after changing "+c.change, usingCache(r), c.cached)
	}
	r := s.mustNook(t, "run", "--rm", "exclude:1", "cat", "/app/main.go", "/from-stage/keep.txt", "/added/cache.tmp")
	assertEqual(t, "copied files after the changes", strings.TrimSpace(r.Stdout),
		"changed app/main.go\nchanged data/keep.txt\nchanged app/sub/cache.tmp")
}

// --parents keeps each source's path below the context (or below the pivot `/./`), with
// globs, `**`, --from a stage and --exclude; the directories it makes keep their modes.
func TestBuildCopyParents(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	df := "FROM demo AS src\nCOPY a /srv/a\n" +
		"FROM demo\n" +
		"COPY --parents ./a/*/x.txt /dst/\n" +
		"COPY --parents a/**/x.txt top.txt /all\n" +
		"COPY --parents p/./q/r/s.txt /pivot/\n" +
		"COPY --parents --from=src /srv/a/c /from/\n" +
		"COPY --parents --exclude=**/y.txt a/c /ex/\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": df,
		"a/b/x.txt": "b\n", "a/c/x.txt": "c\n", "a/c/y.txt": "y\n", "a/d/e/x.txt": "e\n", "a/z.txt": "z\n",
		"p/q/r/s.txt": "s\n", "top.txt": "top\n"})
	if err := os.Chmod(filepath.Join(ctx, "a", "c"), 0o750); err != nil {
		t.Fatal(err)
	}
	s.mustBuild(t, ctx, "-t", "parents:1")
	r := s.mustNook(t, "run", "--rm", "parents:1", "sh", "-c", "find /dst /all /pivot /from /ex -type f | sort; stat -c %a /dst/a/c /dst/a/b")
	assertEqual(t, "files copied, and the modes of the directories made", strings.Join(strings.Fields(r.Stdout), " "), strings.Join([]string{
		"/all/a/b/x.txt", "/all/a/c/x.txt", "/all/a/d/e/x.txt", "/all/top.txt",
		"/dst/a/b/x.txt", "/dst/a/c/x.txt",
		"/ex/a/c/x.txt",
		"/from/srv/a/c/x.txt", "/from/srv/a/c/y.txt",
		"/pivot/q/r/s.txt",
		"750", "755"}, " "))

	r = s.mustBuild(t, ctx, "-t", "parents:1")
	assertEqual(t, "steps from the cache", usingCache(r), 6)
	// a/z.txt is copied by the stage only: the stage's COPY runs again, and no COPY after it
	// (COPY --from takes /srv/a/c only).
	writeFile(t, filepath.Join(ctx, "a", "z.txt"), "z2\n")
	r = s.mustBuild(t, ctx, "-t", "parents:1")
	assertEqual(t, "steps from the cache after a change no --parents source selects", usingCache(r), 5)
	// a/c/y.txt: the globs of x.txt do not select it; COPY --from does.
	writeFile(t, filepath.Join(ctx, "a", "c", "y.txt"), "y2\n")
	r = s.mustBuild(t, ctx, "-t", "parents:1")
	assertEqual(t, "steps from the cache after a change COPY --from selects", usingCache(r), 3)
	r = s.mustNook(t, "run", "--rm", "parents:1", "cat", "/from/srv/a/c/y.txt")
	assertEqual(t, "the changed file", r.Stdout, "y2\n")

	// A path without wildcards must exist: the error names the file and line.
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nCOPY --parents a/nope.txt /dst/\n", "a/x": "x"})
	r = s.build(t, bad, "-t", "bad:1")
	assertExit(t, r, 125)
	assertContains(t, "COPY --parents of a missing file", r.Stderr, "Dockerfile:2:")
	assertContains(t, "COPY --parents of a missing file", r.Stderr, "a/nope.txt")
}

// A bind mount of the context shows what .dockerignore lets through, as BuildKit's (whose
// context never holds the ignored files); an ignored file is not part of the step's key.
func TestBuildRunMountBindDockerignore(t *testing.T) {
	s := newStore(t, "build", storeOptions{}, false)
	df := "FROM demo\n" +
		"RUN --mount=type=bind,source=src,target=/mnt/src sh -c 'find /mnt/src | sort > /seen; cat /mnt/src/a.txt > /a'\n" +
		"RUN --mount=target=/ctx sh -c 'find /ctx -name \"*.key\" -o -name \"*.log\" | wc -l > /ignored-seen'\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": df, ".dockerignore": "src/secret.key\n**/*.log\n",
		"src/a.txt": "a\n", "src/secret.key": "secret\n", "src/deep/b.log": "b\n", "src/deep/c.txt": "c\n"})
	s.mustBuild(t, ctx, "-t", "bindignore:1")
	r := s.mustNook(t, "run", "--rm", "bindignore:1", "cat", "/seen", "/a", "/ignored-seen")
	assertEqual(t, "what the bind mounts showed", strings.Join(strings.Fields(r.Stdout), " "),
		"/mnt/src /mnt/src/a.txt /mnt/src/deep /mnt/src/deep/c.txt a 0")
	if b, err := os.ReadFile(filepath.Join(ctx, "src", "secret.key")); err != nil || string(b) != "secret\n" {
		t.Errorf("the context's ignored file: %q %v", b, err)
	}
	writeFile(t, filepath.Join(ctx, "src", "secret.key"), "other\n")
	r = s.mustBuild(t, ctx, "-t", "bindignore:1")
	assertEqual(t, "steps from the cache after changing an ignored file", usingCache(r), 2)
	writeFile(t, filepath.Join(ctx, "src", "deep", "c.txt"), "c2\n")
	r = s.mustBuild(t, ctx, "-t", "bindignore:1")
	assertEqual(t, "steps from the cache after changing a file the mounts show", usingCache(r), 0)
}
