//go:build !nook_lean

package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"go.podman.io/storage"
)

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 3}
	for _, chunk := range []string{"one\ntw", "o\nthree\nfour\n", "five (no newline)"} {
		_, _ = tb.Write([]byte(chunk))
	}
	if got := tb.lines(); !slices.Equal(got, []string{"three", "four", "five (no newline)"}) {
		t.Errorf("lines = %q", got)
	}
}

func TestFileMode(t *testing.T) {
	if m, err := fileMode("0755"); err != nil || *m != 0o755 {
		t.Errorf("0755: %v %v", m, err)
	}
	if m, err := fileMode(""); err != nil || m != nil {
		t.Errorf("empty: %v %v", m, err)
	}
	for _, bad := range []string{"u+x", "99", "17777", "0o755"} {
		if _, err := fileMode(bad); err == nil {
			t.Errorf("--chmod=%s accepted", bad)
		}
	}
}

func TestResolveChown(t *testing.T) {
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/app:/bin/sh\n"), 0o644)
	_ = os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	for spec, want := range map[string][2]int{"app": {1001, 1001}, "10": {10, 10}, "app:staff": {1001, 50}, "7:8": {7, 8}, "root:staff": {0, 50}} {
		u, g, err := resolveChown(root, spec)
		if err != nil || u != want[0] || g != want[1] {
			t.Errorf("--chown=%s = %d:%d, %v; want %v", spec, u, g, err, want)
		}
	}
	for _, bad := range []string{"nobody", "app:nogroup", "-1"} {
		if _, _, err := resolveChown(root, bad); err == nil {
			t.Errorf("--chown=%s accepted", bad)
		}
	}
}

// mkdirInRoot resolves symlinks inside the root filesystem, never outside it.
func TestMkdirInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	created, err := mkdirInRoot(root, "/escape/sub", os.Getuid(), os.Getgid())
	if err != nil || !created {
		t.Fatalf("mkdirInRoot: %v, %v", created, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "sub")); err == nil {
		t.Error("a directory was created outside the root filesystem")
	}
	if _, err := os.Stat(filepath.Join(root, outside, "sub")); err != nil {
		t.Errorf("the link should resolve inside the root: %v", err)
	}
	if created, err := mkdirInRoot(root, "/escape/sub", os.Getuid(), os.Getgid()); err != nil || created {
		t.Errorf("second mkdirInRoot: %v, %v", created, err)
	}
	_ = os.WriteFile(filepath.Join(root, "file"), nil, 0o644)
	if _, err := mkdirInRoot(root, "/file", 0, 0); err == nil {
		t.Error("a file was accepted as a directory")
	}
}

func TestIsArchive(t *testing.T) {
	dir := t.TempDir()
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	_ = tw.WriteHeader(&tar.Header{Name: "a", Mode: 0o644, Size: 1})
	_, _ = tw.Write([]byte("a"))
	_ = tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain.Bytes())
	_ = zw.Close()
	var gzText bytes.Buffer
	zw = gzip.NewWriter(&gzText)
	_, _ = zw.Write(bytes.Repeat([]byte("not a tar "), 100))
	_ = zw.Close()
	for name, c := range map[string]struct {
		data []byte
		want bool
	}{
		"a.tar": {plain.Bytes(), true}, "a.tgz": {gz.Bytes(), true}, "text.gz": {gzText.Bytes(), false},
		"a.txt": {[]byte("hello"), false}, "empty": {nil, false},
	} {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, c.data, 0o644)
		if got := isArchive(p); got != c.want {
			t.Errorf("isArchive(%s) = %v, want %v", name, got, c.want)
		}
	}
}

// A build step's mark is read from the image record's metadata, and, for images built before
// marks went there, from the big-data items named after the cache key.
func TestBuildMarks(t *testing.T) {
	e := &Engine{}
	img := &storage.Image{
		ID:           "img",
		Metadata:     `{"signatures-sizes":{},"nook-build":[{"key":"k1","instruction":"RUN x","file":"Dockerfile","line":2,"parent":"p1"}]}`,
		BigDataNames: []string{"sha256:abc", "manifest", cacheDataPrefix + "k0"},
	}
	got := e.buildMarks(img, false)
	want := []buildMark{{Key: "k1", Instruction: "RUN x", File: "Dockerfile", Line: 2, Parent: "p1"}, {Key: "k0"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("buildMarks = %+v, want %+v", got, want)
	}
	if got := e.buildMarks(&storage.Image{ID: "pulled", Metadata: "{}"}, false); len(got) != 0 {
		t.Errorf("buildMarks of an image no build made = %+v, want none", got)
	}
}
