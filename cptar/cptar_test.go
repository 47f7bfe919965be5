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
	must(t, Write(&buf, sroot, "/tree"))

	// Into an existing directory: dst/tree/...
	dst := t.TempDir()
	droot, err := os.OpenRoot(dst)
	must(t, err)
	must(t, Extract(bytes.NewReader(buf.Bytes()), droot, "/"))
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
	must(t, Extract(bytes.NewReader(buf.Bytes()), droot, "renamed"))
	if _, err := os.Stat(filepath.Join(dst, "renamed", "sub", "f")); err != nil {
		t.Error(err)
	}
	// A missing parent is an error.
	if err := Extract(bytes.NewReader(buf.Bytes()), droot, "no/such/dir"); err == nil {
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
			if err := Extract(&buf, root, "."); err == nil {
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

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
