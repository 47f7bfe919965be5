package cptar

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o750))
	must(t, os.WriteFile(filepath.Join(src, "tree", "sub", "f"), []byte("data"), 0o640))
	must(t, os.Symlink("sub/f", filepath.Join(src, "tree", "link")))
	sroot, err := os.OpenRoot(src)
	must(t, err)
	var buf bytes.Buffer
	_, err = Write(&buf, sroot, "/tree", Options{})
	must(t, err)

	// Into an existing directory: dst/tree/...
	dst := t.TempDir()
	droot, err := os.OpenRoot(dst)
	must(t, err)
	must(t, Extract(bytes.NewReader(buf.Bytes()), droot, "/", Options{}))
	b, err := os.ReadFile(filepath.Join(dst, "tree", "sub", "f"))
	if err != nil || string(b) != "data" {
		t.Errorf("extracted file: %q, %v", b, err)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "tree", "link")); l != "sub/f" {
		t.Errorf("symlink: %q", l)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "tree", "sub", "f")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	// To a new name: dst/renamed/...
	must(t, Extract(bytes.NewReader(buf.Bytes()), droot, "renamed", Options{}))
	if _, err := os.Stat(filepath.Join(dst, "renamed", "sub", "f")); err != nil {
		t.Error(err)
	}
	// A missing parent is an error.
	if err := Extract(bytes.NewReader(buf.Bytes()), droot, "no/such/dir", Options{}); err == nil {
		t.Error("extract under a missing parent succeeded")
	}
}

func TestExtractStaysInside(t *testing.T) {
	for name, entries := range map[string][]tar.Header{
		"dot-dot":  {{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}},
		"absolute": {{Name: "/evil", Typeflag: tar.TypeReg, Mode: 0o644}},
		"symlink then file through it": {
			{Name: "top/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "top/l", Typeflag: tar.TypeSymlink, Linkname: "/tmp", Mode: 0o777},
			{Name: "top/l/evil", Typeflag: tar.TypeReg, Mode: 0o644},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range entries {
				must(t, tw.WriteHeader(&h))
			}
			must(t, tw.Close())
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			must(t, os.Mkdir(dst, 0o755))
			root, err := os.OpenRoot(dst)
			must(t, err)
			if err := Extract(&buf, root, ".", Options{}); err == nil {
				t.Error("the archive was extracted")
			}
			if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
				t.Error("a file was written outside the destination")
			}
			if _, err := os.Stat("/tmp/evil"); err == nil {
				t.Error("a file was written through a symlink")
			}
		})
	}
}

func TestIntoAndResolve(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "etc", "real"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "etc", "real", "f"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "etc", "file"), []byte("x"), 0o644))
	// Absolute links are the container's: resolved from the root, never from the host's /.
	must(t, os.Symlink("/etc/real", filepath.Join(dir, "etc", "abs")))
	must(t, os.Symlink("../../../../etc/real/f", filepath.Join(dir, "etc", "up")))
	must(t, os.Symlink("/", filepath.Join(dir, "top")))
	root, err := os.OpenRoot(dir)
	must(t, err)
	for _, c := range []struct {
		p      string
		follow bool
		want   string
	}{
		{"/etc/abs", false, "etc/abs"},
		{"/etc/abs", true, "etc/real"},
		{"/etc/abs/f", false, "etc/real/f"},
		{"/etc/up", true, "etc/real/f"},
		{"/top/../../etc", true, "etc"},
		{"/top", true, "."},
		{"/no/such", true, "no/such"},
	} {
		got, err := Resolve(root, c.p, c.follow)
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q, %v) = %q, %v; want %q", c.p, c.follow, got, err, c.want)
		}
	}

	// -L: the link's target under the link's name.
	var buf bytes.Buffer
	src, _ := Resolve(root, "/etc/abs", true)
	_, err = Write(&buf, root, src, Options{Name: "abs"})
	must(t, err)
	tr := tar.NewReader(&buf)
	h, err := tr.Next()
	if err != nil || h.Name != "abs/" || h.Typeflag != tar.TypeDir {
		t.Errorf("first entry of the followed link: %+v, %v", h, err)
	}

	// An archive on standard input goes into an existing directory, as it is.
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	must(t, tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}))
	must(t, tw.WriteHeader(&tar.Header{Name: "./a", Typeflag: tar.TypeReg, Mode: 0o600, Size: 1}))
	_, _ = tw.Write([]byte("a"))
	must(t, tw.WriteHeader(&tar.Header{Name: "./h", Typeflag: tar.TypeLink, Linkname: "./a"}))
	must(t, tw.Close())
	must(t, Extract(bytes.NewReader(in.Bytes()), root, "etc/real", Options{Into: true}))
	if b, err := os.ReadFile(filepath.Join(dir, "etc", "real", "h")); err != nil || string(b) != "a" {
		t.Errorf("hard link extracted into the directory: %q, %v", b, err)
	}
	if err := Extract(bytes.NewReader(in.Bytes()), root, "etc/file", Options{Into: true}); err == nil {
		t.Error("an archive was extracted into a file")
	}
	if err := Extract(bytes.NewReader(in.Bytes()), root, "etc/none", Options{Into: true}); err == nil {
		t.Error("an archive was extracted into a missing directory")
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 20: "20B", 1234: "1.234kB", 2048: "2.048kB", 5300000: "5.3MB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
