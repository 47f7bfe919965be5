package build

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tree writes files (name -> content; "->target" makes a symlink, a trailing / a directory)
// under a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(content[2:], p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func rels(srcs []Source) []string {
	var out []string
	for _, s := range srcs {
		out = append(out, s.Rel)
	}
	return out
}

func TestResolveContainment(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := tree(t, map[string]string{
		"a.txt":         "a",
		"dir/b.txt":     "b",
		"in-link":       "->dir/b.txt",
		"dir/up-link":   "->../a.txt",
		"abs-link":      "->" + filepath.Join(outside, "secret"),
		"escape-link":   "->../../../../../../etc/passwd",
		"dir/rel-out":   "->../../outside",
		"linkdir":       "->dir",
		"dangling-link": "->nothing",
	})
	ctx, err := OpenContext(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []struct{ src, rel string }{
		{"a.txt", "a.txt"}, {"/a.txt", "a.txt"}, {"./dir/../a.txt", "a.txt"},
		{"in-link", "dir/b.txt"}, {"dir/up-link", "a.txt"}, {"linkdir/b.txt", "dir/b.txt"}, {".", "."},
	} {
		got, err := ctx.Resolve(ok.src)
		if err != nil || len(got) != 1 || got[0].Rel != ok.rel {
			t.Errorf("Resolve(%q) = %v, %v; want %s", ok.src, rels(got), err, ok.rel)
		}
	}
	for _, bad := range []string{"../x", "dir/../../x", "abs-link", "escape-link", "dir/rel-out"} {
		_, err := ctx.Resolve(bad)
		if !errors.Is(err, ErrOutsideContext) {
			t.Errorf("Resolve(%q) = %v, want ErrOutsideContext", bad, err)
		}
	}
	for _, missing := range []string{"nope", "dangling-link", "a.txt/x"} {
		if _, err := ctx.Resolve(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Resolve(%q) = %v, want ErrNotExist", missing, err)
		}
	}
	// In an image's root filesystem an absolute link resolves inside it, as in a chroot.
	rootfs := tree(t, map[string]string{"etc/passwd": "root", "link": "->/etc/passwd", "up": "->../../etc/passwd"})
	for _, src := range []string{"link", "up", "/../etc/passwd"} {
		got, err := RootfsTree(rootfs).Resolve(src)
		if err != nil || got[0].Rel != "etc/passwd" {
			t.Errorf("rootfs Resolve(%q) = %v, %v", src, rels(got), err)
		}
	}
}

func TestResolveGlobs(t *testing.T) {
	root := tree(t, map[string]string{"a.txt": "", "b.txt": "", "c.md": "", "sub/d.txt": "", "sub/e.md": ""})
	ctx, _ := OpenContext(root)
	got, err := ctx.Resolve("*.txt")
	if err != nil || !slices.Equal(rels(got), []string{"a.txt", "b.txt"}) {
		t.Errorf("*.txt = %v, %v", rels(got), err)
	}
	got, err = ctx.Resolve("*/*.md")
	if err != nil || !slices.Equal(rels(got), []string{"sub/e.md"}) {
		t.Errorf("*/*.md = %v, %v", rels(got), err)
	}
	got, err = ctx.Resolve("[ab].txt")
	if err != nil || len(got) != 2 {
		t.Errorf("[ab].txt = %v, %v", rels(got), err)
	}
	if _, err := ctx.Resolve("*.none"); err == nil {
		t.Error("a glob matching nothing must fail")
	}
}

func TestDockerignore(t *testing.T) {
	root := tree(t, map[string]string{
		".dockerignore": "# comment\n*.log\nsecret/\n!keep.log\nbuild/**/tmp\n",
		"a.txt":         "a", "x.log": "x", "keep.log": "k", "secret/key": "k",
		"build/out": "o", "build/a/tmp/f": "t",
	})
	ctx, err := OpenContext(root)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{"a.txt": false, "x.log": true, "keep.log": false, "secret": true, "secret/key": true, "build/out": false, "build/a/tmp/f": true} {
		if got := ctx.Ignored(rel); got != want {
			t.Errorf("Ignored(%s) = %v, want %v", rel, got, want)
		}
	}
	if _, err := ctx.Resolve("x.log"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an ignored file must be missing for COPY: %v", err)
	}
	srcs, _ := ctx.Resolve(".")
	entries, err := ctx.Entries(srcs[0], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	for _, n := range []string{"x.log", "secret", "secret/key", "build/a/tmp/f"} {
		if slices.Contains(names, n) {
			t.Errorf("COPY . would copy the ignored %s: %v", n, names)
		}
	}
	for _, n := range []string{"a.txt", "keep.log", "build/out", ".dockerignore"} {
		if !slices.Contains(names, n) {
			t.Errorf("COPY . would miss %s: %v", n, names)
		}
	}
}

func digestOf(t *testing.T, root string) string {
	t.Helper()
	ctx, err := OpenContext(root)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := ctx.Resolve(".")
	if err != nil {
		t.Fatal(err)
	}
	es, err := ctx.Entries(srcs[0], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Digest(es)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDigest(t *testing.T) {
	root := tree(t, map[string]string{"a": "one", "d/b": "two", "l": "->a", ".dockerignore": "ignored\n", "ignored": "x"})
	base := digestOf(t, root)
	if digestOf(t, root) != base {
		t.Fatal("digest not stable")
	}
	future := time.Now().Add(time.Hour)
	_ = os.Chtimes(filepath.Join(root, "a"), future, future)
	if digestOf(t, root) != base {
		t.Error("a new modification time changed the digest (Docker's cache ignores it)")
	}
	_ = os.WriteFile(filepath.Join(root, "ignored"), []byte("changed"), 0o644)
	if digestOf(t, root) != base {
		t.Error("an ignored file changed the digest")
	}
	changes := []func(){
		func() { _ = os.WriteFile(filepath.Join(root, "a"), []byte("ONE"), 0o644) },
		func() { _ = os.Chmod(filepath.Join(root, "d/b"), 0o755) },
		func() { _ = os.Rename(filepath.Join(root, "d/b"), filepath.Join(root, "d/c")) },
		func() { _ = os.Remove(filepath.Join(root, "l")); _ = os.Symlink("d", filepath.Join(root, "l")) },
		func() { _ = os.WriteFile(filepath.Join(root, "new"), nil, 0o644) },
	}
	prev := base
	for i, change := range changes {
		change()
		d := digestOf(t, root)
		if d == prev {
			t.Errorf("change %d did not change the digest", i)
		}
		prev = d
	}
}

func TestWriteTar(t *testing.T) {
	root := tree(t, map[string]string{"f": "data", "d/g": "x", "l": "->f"})
	ctx, _ := OpenContext(root)
	srcs, _ := ctx.Resolve(".")
	es, err := ctx.Entries(srcs[0], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	mode := fs.FileMode(0o640)
	var buf bytes.Buffer
	if err := WriteTar(&buf, es, CopyOptions{UID: 10, GID: 20, Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	seen := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
	}
	for _, n := range []string{"f", "d/", "d/g", "l"} {
		h := seen[n]
		if h == nil {
			t.Fatalf("tar lacks %s: %v", n, seen)
		}
		if h.Uid != 10 || h.Gid != 20 {
			t.Errorf("%s owned by %d:%d", n, h.Uid, h.Gid)
		}
	}
	if seen["f"].Mode != 0o640 || seen["d/"].Mode != 0o640 || seen["l"].Linkname != "f" {
		t.Errorf("modes %o %o, link %q", seen["f"].Mode, seen["d/"].Mode, seen["l"].Linkname)
	}
}
