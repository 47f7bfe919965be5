package build

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestExcludeEntries(t *testing.T) {
	root := tree(t, map[string]string{
		"dir/a.txt":          "a",
		"dir/b.md":           "b",
		"dir/sub/c.txt":      "c",
		"dir/sub/d.go":       "d",
		"dir/skip/e.go":      "e",
		"dir/skip/keep.go":   "k",
		"home.txt":           "h",
		"home.go":            "g",
		"dir/deep/x/y/z.txt": "z",
	})
	ctx, err := OpenContext(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pats []string
		src  string
		want []string
	}{
		// A directory's contents are matched relative to it; * stays in one component.
		{[]string{"*.txt"}, "dir", []string{"b.md", "deep", "deep/x", "deep/x/y", "deep/x/y/z.txt", "skip", "skip/e.go", "skip/keep.go", "sub", "sub/c.txt", "sub/d.go"}},
		// ** crosses components; a directory takes its contents with it.
		{[]string{"**/*.txt", "skip"}, "dir", []string{"b.md", "deep", "deep/x", "deep/x/y", "sub", "sub/d.go"}},
		// ! re-includes inside an excluded directory.
		{[]string{"skip", "!skip/keep.go", "deep", "sub", "*.md"}, "dir", []string{"a.txt", "skip/keep.go"}},
		// A leading / is the source's root, as in .dockerignore.
		{[]string{"/sub"}, "dir", []string{"a.txt", "b.md", "deep", "deep/x", "deep/x/y", "deep/x/y/z.txt", "skip", "skip/e.go", "skip/keep.go"}},
	} {
		x, err := NewExclude(c.pats)
		if err != nil {
			t.Fatal(err)
		}
		srcs, err := ctx.Resolve(c.src)
		if err != nil {
			t.Fatal(err)
		}
		es, err := ctx.Entries(srcs[0], "", x)
		if err != nil {
			t.Fatal(err)
		}
		got := names(es)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("--exclude=%v %s: got %v, want %v", c.pats, c.src, got, c.want)
		}
	}
	// Files matched by a wildcard are matched by their name (Docker's `COPY --exclude=*.txt hom* /mydir/`).
	x, _ := NewExclude([]string{"*.txt"})
	srcs, err := ctx.Resolve("hom*")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range srcs {
		es, err := ctx.Entries(s, s.Name, x)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, names(es)...)
	}
	if !slices.Equal(got, []string{"home.go"}) {
		t.Errorf("--exclude=*.txt hom*: got %v", got)
	}
	if x, err := NewExclude(nil); x != nil || err != nil {
		t.Errorf("no patterns: %v %v", x, err)
	}
	if _, err := NewExclude([]string{"/"}); err == nil {
		t.Error("an empty pattern was accepted")
	}
	if x.Match("") || (*Exclude)(nil).Match("a.txt") {
		t.Error("empty path or nil Exclude matched")
	}
}

func TestResolveParents(t *testing.T) {
	root := tree(t, map[string]string{
		"a/b/x.txt":     "1",
		"a/c/x.txt":     "2",
		"a/c/y.txt":     "3",
		"a/d/e/x.txt":   "4",
		"a/link":        "->b",
		"top.txt":       "t",
		"ign/x.txt":     "i",
		"p/q/r/s.txt":   "s",
		".dockerignore": "ign\n",
	})
	if err := os.Chmod(filepath.Join(root, "a/c"), 0o750); err != nil {
		t.Fatal(err)
	}
	ctx, err := OpenContext(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src, exclude  string
		dirs, sources []string
	}{
		{"a/*/x.txt", "", []string{"a", "a/b", "a/c"}, []string{"a/b/x.txt", "a/c/x.txt"}},
		{"./a/*/x.txt", "", []string{"a", "a/b", "a/c"}, []string{"a/b/x.txt", "a/c/x.txt"}},
		{"a/**/x.txt", "", []string{"a", "a/b", "a/c", "a/d", "a/d/e"}, []string{"a/b/x.txt", "a/c/x.txt", "a/d/e/x.txt"}},
		{"a/c", "", []string{"a", "a/c"}, []string{"a/c"}},
		{"a/c/x.txt", "", []string{"a", "a/c"}, []string{"a/c/x.txt"}},
		{"top.txt", "", nil, []string{"top.txt"}},
		{"a/*/x.txt", "a/b", []string{"a", "a/c"}, []string{"a/c/x.txt"}},
		{"a/**/x.txt", "**/e", []string{"a", "a/b", "a/c"}, []string{"a/b/x.txt", "a/c/x.txt"}},
		// The pivot: what is before /./ is dropped.
		{"p/./q/r/s.txt", "", []string{"q", "q/r"}, []string{"q/r/s.txt"}},
		{"a/./*/y.txt", "", []string{"c"}, []string{"c/y.txt"}},
		// A symlink that matches is copied as the link.
		{"a/link", "", []string{"a"}, []string{"a/link"}},
		// .dockerignore applies.
		{"*/x.txt", "", nil, nil},
	} {
		var x *Exclude
		if c.exclude != "" {
			x, _ = NewExclude([]string{c.exclude})
		}
		dirs, found, err := ctx.ResolveParents(c.src, x)
		if c.sources == nil {
			if err == nil {
				t.Errorf("%s: no error, found %v", c.src, found)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		var got []string
		for _, s := range found {
			got = append(got, s.Name)
			if s.Match != s.Name {
				t.Errorf("%s: %s matches as %q", c.src, s.Name, s.Match)
			}
		}
		if !slices.Equal(got, c.sources) || !slices.Equal(names(dirs), c.dirs) {
			t.Errorf("%s --exclude=%s: got %v %v, want %v %v", c.src, c.exclude, names(dirs), got, c.dirs, c.sources)
		}
		for _, d := range dirs {
			if d.Name == "a/c" && d.Info.Mode().Perm() != 0o750 {
				t.Errorf("%s: a/c has mode %v, not the source's", c.src, d.Info.Mode())
			}
		}
	}
	for _, c := range []struct{ src, want string }{
		{"a/nope.txt", "does not exist"},
		{"a/*/nope.txt", "nothing matches"},
		{"../a", "outside the build context"},
		{"ign/x.txt", "does not exist"},
		{"top.txt/./x", "not a directory"},
	} {
		_, _, err := ctx.ResolveParents(c.src, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.src, err, c.want)
		}
	}
	// A link in the walked part of the path is not followed.
	if _, found, err := ctx.ResolveParents("a/link/x.txt", nil); err == nil {
		t.Errorf("a/link/x.txt: followed the link: %v", found)
	}
}

func TestMaterialize(t *testing.T) {
	root := tree(t, map[string]string{
		"d/a.txt":       "a",
		"d/sub/b.txt":   "b",
		"d/secret.key":  "s",
		"d/l":           "->a.txt",
		".dockerignore": "d/*.key\n",
	})
	if err := os.Chmod(filepath.Join(root, "d/a.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, err := OpenContext(root)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := ctx.Resolve("d")
	if err != nil {
		t.Fatal(err)
	}
	if hidden, err := ctx.HasIgnored(srcs[0]); err != nil || !hidden {
		t.Fatalf("HasIgnored(d) = %v, %v", hidden, err)
	}
	sub, _ := ctx.Resolve("d/sub")
	if hidden, err := ctx.HasIgnored(sub[0]); err != nil || hidden {
		t.Fatalf("HasIgnored(d/sub) = %v, %v", hidden, err)
	}
	es, err := ctx.Entries(srcs[0], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := Materialize(out, es); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(out, "secret.key")); !os.IsNotExist(err) {
		t.Errorf("ignored file is there: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "sub/b.txt")); err != nil || string(b) != "b" {
		t.Errorf("sub/b.txt: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "a.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a.txt: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(out, "l")); err != nil || l != "a.txt" {
		t.Errorf("l: %q %v", l, err)
	}
}
