//go:build !nook_lean

package engine

import (
	"reflect"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage"
)

func TestParseReference(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"debian:bookworm", "docker.io/library/debian:bookworm"},
		{"team/app", "docker.io/team/app:latest"},
		{"localhost:5000/team/app:1.2", "localhost:5000/team/app:1.2"},
		{"127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"},
		{"quay.io/a/b:c", "quay.io/a/b:c"},
		{"app@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "docker.io/library/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	} {
		got, err := ParseReference(c.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", c.in, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("ParseReference(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"UPPER/case", "a:b:c", "", "x@sha256:short"} {
		if _, err := ParseReference(bad); err == nil {
			t.Errorf("ParseReference(%q) should fail", bad)
		}
	}
}

func TestLoopbackAndRegistryKeys(t *testing.T) {
	for in, want := range map[string]bool{
		"localhost": true, "localhost:5000": true, "127.0.0.1:5000": true, "127.1.2.3": true,
		"[::1]:5000": true, "docker.io": false, "10.0.0.1:5000": false, "localhost.example.com": false,
	} {
		if got := isLoopbackRegistry(in); got != want {
			t.Errorf("isLoopbackRegistry(%q) = %v, want %v", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"": "docker.io", "docker.io": "docker.io", "https://index.docker.io/v1/": "docker.io",
		"registry-1.docker.io": "docker.io", "http://127.0.0.1:5000/": "127.0.0.1:5000", "quay.io": "quay.io",
	} {
		if got := NormalizeRegistry(in); got != want {
			t.Errorf("NormalizeRegistry(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNameFromAnnotation(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "latest": "", "demo:1": "docker.io/library/demo:1",
		"docker.io/library/x:2": "docker.io/library/x:2", "quay.io/a/b": "quay.io/a/b:latest", "BAD/Name:1": "",
	} {
		got := ""
		if n := nameFromAnnotation(in); n != nil {
			got = n.String()
		}
		if got != want {
			t.Errorf("nameFromAnnotation(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOrphanLayers(t *testing.T) {
	l := func(id, parent string, image bool) storage.Layer {
		x := storage.Layer{ID: id, Parent: parent}
		if image {
			x.UncompressedDigest = digest.Digest("sha256:" + id)
		}
		return x
	}
	layers := []storage.Layer{
		l("base", "", true), l("mid", "base", true), l("top", "mid", true), // image A
		l("o1", "base", true), l("o2", "o1", true), l("o3", "o2", true), // a killed pull's chain
		l("rw", "top", false), // a container's read-write layer
		l("c2", "", true),     // a container's image layer whose image was removed with -f
		l("lone", "", true),
		l("fresh-rw", "o3", false), // a container layer being created: keeps its parents
	}
	images := []storage.Image{{ID: "A", TopLayer: "top"}}
	ctrs := []storage.Container{{ID: "c", LayerID: "c2"}}
	got := orphanLayers(layers, images, ctrs)
	if len(got) != 1 || got[0] != "lone" {
		t.Errorf("orphanLayers = %v, want [lone]", got)
	}
	// Without the container layer on o3, the chain o3 -> o2 -> o1 goes, children first.
	got = orphanLayers(layers[:len(layers)-1], images, ctrs)
	want := []string{"o3", "o2", "o1", "lone"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("orphanLayers = %v, want %v", got, want)
	}

	// The empty layer a killed build made for a RUN step's changes is an orphan, and so are the
	// build's layers under it that no image reaches.
	early := storage.Layer{ID: "early", Parent: "o3", Flags: map[string]any{buildLayerFlag: true}}
	got = orphanLayers(append(layers[:len(layers)-1:len(layers)-1], early), images, ctrs)
	want = []string{"early", "o3", "o2", "o1", "lone"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("orphanLayers with a build's empty layer = %v, want %v", got, want)
	}
}

func TestPruneCandidates(t *testing.T) {
	images := []storage.Image{
		{ID: "named", Names: []string{"docker.io/library/a:1"}},
		{ID: "dangling"},
		{ID: "used-dangling"},
		{ID: "used-named", Names: []string{"docker.io/library/b:1"}},
	}
	ctrs := []storage.Container{{ImageID: "used-dangling"}, {ImageID: "used-named"}}
	ids := func(imgs []storage.Image) []string {
		var out []string
		for _, i := range imgs {
			out = append(out, i.ID)
		}
		return out
	}
	if got := ids(pruneCandidates(images, ctrs, false)); !reflect.DeepEqual(got, []string{"dangling"}) {
		t.Errorf("prune: %v, want [dangling]", got)
	}
	got := ids(pruneCandidates(images, ctrs, true))
	if len(got) != 2 || !((got[0] == "named" && got[1] == "dangling") || (got[0] == "dangling" && got[1] == "named")) {
		t.Errorf("prune -a: %v, want named and dangling", got)
	}
}

// chainID is containers/image's storage destination's layerID for a layer identified by its
// diff ID (storage_dest.go): the bottom layer's is the diff ID's hex, every other one sha256 of
// "PARENT+HEX".
func TestChainID(t *testing.T) {
	d := digest.Digest("sha256:6d621b3d0fa4318c820e6af3c62d1b394d3e1359f2c441cda8ad9db876bc6360")
	if got := chainID("", d); got != d.Encoded() {
		t.Errorf("chainID of a bottom layer = %s", got)
	}
	parent := "f1bca84d267bf20b482d6d3e480c44ff1c0d25d8e2abb75454769f28e6365fa3"
	want := digest.FromString(parent + "+" + d.Encoded()).Encoded()
	if got := chainID(parent, d); got != want || len(got) != 64 {
		t.Errorf("chainID(%s, %s) = %s, want %s", parent, d, got, want)
	}
}
