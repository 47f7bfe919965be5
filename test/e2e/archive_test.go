package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ---- archives made by hand, as another tool would -------------------------------

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// randomLayer is an uncompressed layer with one file of n pseudo-random bytes at path, and
// /marker with marker when not "".
func randomLayer(path string, n int, marker string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), uint64(len(path))))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	epoch := time.Unix(0, 0)
	if dir := filepath.Dir(path); dir != "." {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		data []byte
	}{{path, data}}
	if marker != "" {
		files = append(files, struct {
			name string
			data []byte
		}{"marker", []byte(marker)})
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// imageConfig is an OCI image config for these layers.
func imageConfig(arch string, layers [][]byte) []byte {
	var diffIDs []string
	var hist []map[string]string
	for i, l := range layers {
		diffIDs = append(diffIDs, "sha256:"+sha256hex(l))
		hist = append(hist, map[string]string{"created": "2024-01-02T03:04:05Z", "created_by": fmt.Sprintf("layer %d by hand", i)})
	}
	cfg := map[string]any{
		"created":      "2024-01-02T03:04:05Z",
		"architecture": arch,
		"os":           "linux",
		"config":       map[string]any{"Cmd": []string{"sh"}, "Env": []string{"PATH=/bin:/usr/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      hist,
	}
	b, _ := json.Marshal(cfg)
	return b
}

type tarEntry struct {
	name string
	data []byte
}

func writeTar(path string, entries []tarEntry) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, e := range entries {
		if d := filepath.Dir(e.name); d != "." && !dirs[d] {
			dirs[d] = true
			parts := strings.Split(d, "/")
			for i := range parts {
				p := strings.Join(parts[:i+1], "/")
				if !dirs[p+"/"] {
					dirs[p+"/"] = true
					if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
						return err
					}
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeDockerArchive writes a `docker save` archive (legacy layout: ID/layer.tar) of one
// image with these (uncompressed) layers and tags.
func writeDockerArchive(path string, tags []string, layers [][]byte) error {
	cfg := imageConfig(runtime.GOARCH, layers)
	cfgName := sha256hex(cfg) + ".json"
	entries := []tarEntry{{cfgName, cfg}}
	var layerNames []string
	for _, l := range layers {
		n := sha256hex(l) + "/layer.tar"
		layerNames = append(layerNames, n)
		entries = append(entries, tarEntry{n, l})
	}
	if tags == nil {
		tags = []string{}
	}
	m, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": tags, "Layers": layerNames}})
	entries = append(entries, tarEntry{"manifest.json", m})
	return writeTar(path, entries)
}

// writeOCILayout writes an OCI image layout in dir with one image (uncompressed layers) for
// arch; as an index (a manifest list with that one platform) when asIndex. name, if not "",
// is the org.opencontainers.image.ref.name annotation.
func writeOCILayout(dir, name, arch string, asIndex bool, layers [][]byte) error {
	blob := func(b []byte) (map[string]any, error) {
		d := sha256hex(b)
		p := filepath.Join(dir, "blobs", "sha256", d)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		return map[string]any{"digest": "sha256:" + d, "size": len(b)}, os.WriteFile(p, b, 0o644)
	}
	cfg := imageConfig(arch, layers)
	cd, err := blob(cfg)
	if err != nil {
		return err
	}
	cd["mediaType"] = "application/vnd.oci.image.config.v1+json"
	var lds []map[string]any
	for _, l := range layers {
		ld, err := blob(l)
		if err != nil {
			return err
		}
		ld["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
		lds = append(lds, ld)
	}
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cd, "layers": lds})
	md, err := blob(man)
	if err != nil {
		return err
	}
	md["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
	top := md
	if asIndex {
		md["platform"] = map[string]string{"architecture": arch, "os": "linux"}
		idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{md}})
		top, err = blob(idx)
		if err != nil {
			return err
		}
		top["mediaType"] = "application/vnd.oci.image.index.v1+json"
	}
	if name != "" {
		top["annotations"] = map[string]string{"org.opencontainers.image.ref.name": name}
	}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{top}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// tarDir archives a directory's files (an OCI layout becomes an oci-archive).
func tarDir(dir, out string) error {
	var entries []tarEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		entries = append(entries, tarEntry{rel, b})
		return nil
	})
	if err != nil {
		return err
	}
	return writeTar(out, entries)
}

// ---- tests ------------------------------------------------------------------------

// save and load round trips, both formats, file and standard input, several images.
func TestArchiveSaveLoad(t *testing.T) {
	s := newStore(t, "archive", storeOptions{}, false)
	dir := t.TempDir()
	id := imageIDOf(t, s, "demo")
	s.mustNook(t, "tag", "demo", "demo:v2")

	// docker-archive, two names of one image.
	da := filepath.Join(dir, "demo.tar")
	s.mustNook(t, "save", "-q", "-o", da, "demo", "demo:v2")
	s.mustNook(t, "rmi", "demo", "demo:v2")
	assertEqual(t, "images after rmi", len(s.mustNook(t, "images", "-q").Lines()), 0)
	r := s.mustNook(t, "load", "-q", "-i", da)
	assertContains(t, "load output", r.Stdout, "Loaded image: demo:latest")
	assertContains(t, "load output", r.Stdout, "Loaded image: demo:v2")
	assertEqual(t, "image ID after a docker-archive round trip", imageIDOf(t, s, "demo"), id)
	assertEqual(t, "image ID of demo:v2", imageIDOf(t, s, "demo:v2"), id)
	assertEqual(t, "run the loaded image", s.sh(t, "echo loaded"), "loaded\n")

	// oci-archive.
	oa := filepath.Join(dir, "demo-oci.tar")
	s.mustNook(t, "save", "-q", "--format", "oci-archive", "-o", oa, "demo")
	s.mustNook(t, "rmi", "demo", "demo:v2")
	r = s.mustNook(t, "load", "-q", "-i", oa)
	assertEqual(t, "load of the oci-archive", r.Stdout, "Loaded image: demo:latest\n")
	assertEqual(t, "run the image loaded from oci-archive", s.sh(t, "echo oci"), "oci\n")
	assertEqual(t, "image ID after an oci-archive round trip", imageIDOf(t, s, "demo"), id)

	// Standard output and standard input.
	out := s.mustNook(t, "save", "demo").Stdout
	s.mustNook(t, "rmi", "demo")
	r = s.nookEnv(t, nil, out, "load", "-q")
	assertExit(t, r, 0)
	assertEqual(t, "load from standard input", r.Stdout, "Loaded image: demo:latest\n")

	// Two images in one archive; an image saved by ID gets no name back.
	other, err := randomLayer("other", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	otherTar := filepath.Join(dir, "other.tar")
	if err := os.WriteFile(otherTar, other, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustNook(t, "import", otherTar, "other:1")
	two := filepath.Join(dir, "two.tar")
	s.mustNook(t, "save", "-q", "-o", two, "demo", "other:1")
	s.mustNook(t, "rmi", "demo", "other:1")
	r = s.mustNook(t, "load", "-q", "-i", two)
	assertContains(t, "load of two images", r.Stdout, "Loaded image: demo:latest")
	assertContains(t, "load of two images", r.Stdout, "Loaded image: other:1")

	byID := filepath.Join(dir, "byid.tar")
	s.mustNook(t, "save", "-q", "-o", byID, id[7:19])
	s.mustNook(t, "rmi", "demo")
	r = s.mustNook(t, "load", "-q", "-i", byID)
	assertEqual(t, "load of an image saved by ID", r.Stdout, "Loaded image ID: "+id+"\n")
	s.mustNook(t, "tag", id[7:19], "demo")

	// Errors: one line, exit 125, no file left behind.
	r = s.nook(t, "save", "-o", filepath.Join(dir, "x.tar"), "nosuch")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "nosuch")
	r = s.nook(t, "save", "--format", "oci-archive", "-o", filepath.Join(dir, "x.tar"), "demo", "other:1")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "one image")
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
		t.Errorf("a failed save left %s", filepath.Join(dir, "x.tar"))
	}
	assertNoOrphanLayers(t, s)
}

// Archives made by other tools: by hand (the docker save layout, an OCI layout) and by skopeo.
func TestArchiveFromOtherTools(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "archive-other", storeOptions{}, false)
	dir := t.TempDir()
	busybox, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := randomLayer("data/x", 4096, "hand\n")
	if err != nil {
		t.Fatal(err)
	}

	hand := filepath.Join(dir, "hand.tar")
	if err := writeDockerArchive(hand, []string{"hand:1", "example.com/team/hand:2"}, [][]byte{busybox, extra}); err != nil {
		t.Fatal(err)
	}
	r := s.mustNook(t, "load", "-q", "-i", hand)
	assertContains(t, "load", r.Stdout, "Loaded image: hand:1")
	assertContains(t, "load", r.Stdout, "Loaded image: example.com/team/hand:2")
	assertEqual(t, "run the hand-made image", s.mustNook(t, "run", "--rm", "example.com/team/hand:2", "cat", "/marker").Stdout, "hand\n")
	hist := s.mustNook(t, "history", "hand:1").Lines()
	if len(hist) != 3 || !strings.HasPrefix(hist[0], "IMAGE") || !strings.Contains(hist[1], "layer 1 by hand") {
		t.Errorf("history of a two-layer image: %q", hist)
	}

	layout := filepath.Join(dir, "layout")
	if err := writeOCILayout(layout, "docker.io/library/ocihand:3", runtime.GOARCH, false, [][]byte{busybox, extra}); err != nil {
		t.Fatal(err)
	}
	oa := filepath.Join(dir, "hand-oci.tar")
	if err := tarDir(layout, oa); err != nil {
		t.Fatal(err)
	}
	r = s.mustNook(t, "load", "-q", "-i", oa)
	assertEqual(t, "load of a hand-made oci-archive", r.Stdout, "Loaded image: ocihand:3\n")
	assertEqual(t, "run it", s.mustNook(t, "run", "--rm", "ocihand:3", "cat", "/marker").Stdout, "hand\n")

	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (apt-get install skopeo; test/run-e2e.sh does it as root)")
	}
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/skopeo/bb:1")
	for _, f := range []struct{ transport, file, want string }{
		{"docker-archive", "sk-docker.tar", "Loaded image: skopeo/bb:1\n"},
		{"oci-archive", "sk-oci.tar", "Loaded image: skopeo/bb:1\n"},
	} {
		p := filepath.Join(dir, f.file)
		out, err := exec.Command(skopeo, "copy", "--src-tls-verify=false", "docker://"+reg.addr+"/skopeo/bb:1", f.transport+":"+p+":skopeo/bb:1").CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo copy to %s: %v\n%s", f.transport, err, out)
		}
		r = s.mustNook(t, "load", "-q", "-i", p)
		if f.transport == "oci-archive" {
			// skopeo writes the name as given.
			assertContains(t, "load of skopeo's "+f.transport, r.Stdout, "skopeo/bb:1")
		} else {
			assertEqual(t, "load of skopeo's "+f.transport, r.Stdout, f.want)
		}
		assertEqual(t, "run the image from skopeo's "+f.transport, s.mustNook(t, "run", "--rm", "skopeo/bb:1", "echo", "sk").Stdout, "sk\n")
		s.mustNook(t, "rmi", "skopeo/bb:1")
	}
	assertNoOrphanLayers(t, s)
}

// A corrupt, truncated or foreign file for load adds nothing.
func TestArchiveLoadCorrupt(t *testing.T) {
	s := newStore(t, "archive-corrupt", storeOptions{}, false)
	dir := t.TempDir()
	busybox, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := randomLayer("data/y", 256<<10, "y\n")
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.tar")
	if err := writeDockerArchive(good, []string{"corrupt:1"}, [][]byte{busybox, extra}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "layout")
	if err := writeOCILayout(layout, "corrupt:2", runtime.GOARCH, false, [][]byte{busybox, extra}); err != nil {
		t.Fatal(err)
	}
	goodOCI := filepath.Join(dir, "good-oci.tar")
	if err := tarDir(layout, goodOCI); err != nil {
		t.Fatal(err)
	}
	ociData, err := os.ReadFile(goodOCI)
	if err != nil {
		t.Fatal(err)
	}
	// Flip bytes inside the last layer's data (the random file): the tar stays well-formed,
	// the digest does not match.
	flip := func(b []byte) []byte {
		c := append([]byte(nil), b...)
		i := bytes.Index(c, extra[1024:1100])
		if i < 0 {
			t.Fatal("layer data not found in the archive")
		}
		c[i+10] ^= 0xff
		return c
	}
	cases := []struct {
		name  string
		data  []byte
		words []string
	}{
		{"truncated docker-archive", data[:len(data)*2/3], []string{"check the file"}},
		{"corrupt docker-archive", flip(data), []string{"corrupt", "check the file"}},
		{"truncated oci-archive", ociData[:len(ociData)*2/3], []string{"check the file"}},
		{"corrupt oci-archive", flip(ociData), []string{"corrupt", "check the file"}},
		{"not a tar", []byte("hello, this is not an archive\n"), []string{"not an image archive"}},
		{"a plain rootfs tar", busybox, []string{"not an image archive"}},
		{"empty", nil, []string{"check the file"}},
	}
	before := graphEntries(s)
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		if err := os.WriteFile(p, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := s.nook(t, "load", "-q", "-i", p)
		assertExit(t, r, 125)
		assertErrorLine(t, r, c.words...)
		if r.Stdout != "" {
			t.Errorf("%s: load printed %q", c.name, r.Stdout)
		}
	}
	r := s.nook(t, "load", "-q", "-i", filepath.Join(dir, "missing.tar"))
	assertExit(t, r, 125)
	assertErrorLine(t, r, "missing.tar")
	assertNoNewGraphEntries(t, s, before, "loads of bad archives")
	assertEqual(t, "images after bad loads", len(s.mustNook(t, "images", "-q").Lines()), 1)
}

// tag, inspect, history, images --format, rmi of an image a container uses, prune.
func TestArchiveImageCommands(t *testing.T) {
	s := newStore(t, "imagecmds", storeOptions{}, false)
	id := imageIDOf(t, s, "demo")
	if !imageIDRe.MatchString(id) {
		t.Fatalf("image inspect -f {{.Id}}: %q", id)
	}

	// inspect: Docker's JSON shape.
	var docs []map[string]any
	r := s.mustNook(t, "image", "inspect", "demo")
	if err := json.Unmarshal([]byte(r.Stdout), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("image inspect: not a JSON array of one object: %v", err)
	}
	d := docs[0]
	assertEqual(t, "Id", d["Id"], any(id))
	assertEqual(t, "Os", d["Os"], any("linux"))
	assertEqual(t, "Architecture", d["Architecture"], any(runtime.GOARCH))
	assertEqual(t, "RepoTags", fmt.Sprint(d["RepoTags"]), "[demo:latest]")
	if layers, _ := d["RootFS"].(map[string]any)["Layers"].([]any); len(layers) != 1 {
		t.Errorf("RootFS.Layers: %v, want one layer", d["RootFS"])
	}
	for _, k := range []string{"RepoDigests", "Created", "Config", "Size", "GraphDriver"} {
		if _, ok := d[k]; !ok {
			t.Errorf("image inspect lacks %s", k)
		}
	}
	assertEqual(t, "nook inspect of an image", strings.TrimSpace(s.mustNook(t, "inspect", "-f", "{{.Id}}", "demo").Stdout), id)
	r = s.nook(t, "inspect", "nosuch")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "nosuch")

	// history
	lines := s.mustNook(t, "history", "demo").Lines()
	if len(lines) != 2 {
		t.Fatalf("history: %q, want a header and one row", lines)
	}
	assertMatch(t, "history header", lines[0], `^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$`)
	assertMatch(t, "history row", lines[1], `^`+id[7:19]+`\s+.* ago\s+.+\s+[0-9.]+MB\s+imported from `)

	// images --format
	s.mustNook(t, "tag", "demo", "demo:v2")
	r = s.mustNook(t, "images", "--format", "{{.Repository}}:{{.Tag}}\t{{.ID}}")
	assertContains(t, "images --format", r.Stdout, "demo:v2\t"+id[7:19]+"\n")
	r = s.mustNook(t, "images", "--format", "table {{.Repository}}\t{{.Tag}}")
	assertMatch(t, "images --format table", r.Lines()[0], `^REPOSITORY\s+TAG$`)
	r = s.mustNook(t, "images", "--format", "json")
	for _, l := range r.Lines() {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Errorf("images --format json: line %q: %v", l, err)
			continue
		}
		for _, k := range []string{"Repository", "Tag", "ID", "Digest", "CreatedSince", "CreatedAt", "Size"} {
			if _, ok := row[k]; !ok {
				t.Errorf("images --format json: no %s in %q", k, l)
			}
		}
	}
	r = s.mustNook(t, "images", "-a", "--no-trunc", "--format", "{{.ID}}")
	assertContains(t, "images --no-trunc", r.Stdout, id)
	r = s.nook(t, "images", "--format", "{{.Nope}}")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "template")

	// rmi of an image a container uses: refused without -f.
	s.mustNook(t, "rmi", "demo:v2")
	s.mustNook(t, "run", "--name", "keeper", "demo", "true")
	r = s.nook(t, "rmi", "demo")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "used by container", "--force")
	r = s.nook(t, "image", "rm", "demo")
	assertExit(t, r, 125)

	// prune: dangling images only; -a every image no container uses.
	other, err := randomLayer("other", 300<<10, "")
	if err != nil {
		t.Fatal(err)
	}
	otherTar := filepath.Join(t.TempDir(), "other.tar")
	if err := os.WriteFile(otherTar, other, 0o644); err != nil {
		t.Fatal(err)
	}
	dangling := strings.TrimSpace(s.mustNook(t, "import", otherTar).Stdout)
	s.mustNook(t, "import", otherTar, "named:1")
	r = s.mustNook(t, "image", "prune", "-f")
	assertContains(t, "prune", r.Stdout, "deleted: "+dangling)
	assertMatch(t, "prune", r.Stdout, `Total reclaimed space: [0-9.]+[kMG]?B\n$`)
	assertNotContains(t, "prune", r.Stdout, "named:1")
	r = s.mustNook(t, "image", "prune", "-a", "-f")
	assertContains(t, "prune -a", r.Stdout, "untagged: named:1")
	assertMatch(t, "prune -a frees the other layer", r.Stdout, `Total reclaimed space: 3[0-9.]+kB\n$`)
	assertNotContains(t, "prune -a keeps the image a container uses", r.Stdout, "demo")
	r = s.nookEnv(t, nil, "n\n", "image", "prune", "-a")
	assertExit(t, r, 0)
	assertContains(t, "prune asks", r.Stderr, "Are you sure")
	assertEqual(t, "prune answered no", r.Stdout, "")

	r = s.mustNook(t, "rmi", "-f", "demo")
	assertContains(t, "rmi -f", r.Stdout, "Deleted: "+id)
	assertNoOrphanLayers(t, s)
}

// A layer with a hard link to a file the image does not have: containers/storage refuses to
// unpack it, and nook says so in one line with what to do, for load (both formats) and pull;
// nothing is left in the store.
func TestLayerHardLinkRefused(t *testing.T) {
	reg, _ := needRegistries(t)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (apt-get install skopeo; test/run-e2e.sh does it as root)")
	}
	s := newStore(t, "hardlink", storeOptions{}, false)
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/hardlink/warmup:1")
	s.mustNook(t, "pull", "-q", reg.addr+"/hardlink/warmup:1")
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer.tar")
	writeEscapeLayer(t, layer, busyboxTar, []escapeEntry{{name: "linked", link: "nowhere/in/the/image", typ: tar.TypeLink}})
	lb, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	da := filepath.Join(dir, "hl.tar")
	if err := writeDockerArchive(da, []string{"hardlink:1"}, [][]byte{lb}); err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "layout")
	if err := writeOCILayout(layout, "docker.io/library/hardlink:2", runtime.GOARCH, false, [][]byte{lb}); err != nil {
		t.Fatal(err)
	}
	oa := filepath.Join(dir, "hl-oci.tar")
	if err := tarDir(layout, oa); err != nil {
		t.Fatal(err)
	}
	image := reg.addr + "/hardlink/bad:1"
	if out, err := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "docker-archive:"+da, "docker://"+image).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy to the registry: %v\n%s", err, out)
	}
	before := graphEntries(s)
	for _, args := range [][]string{{"load", "-q", "-i", da}, {"load", "-q", "-i", oa}, {"pull", "-q", image}} {
		r := s.nook(t, args...)
		assertExit(t, r, 125)
		assertErrorLine(t, r, "hard link", "does not have", "rebuild it")
		assertNotContains(t, "the error", r.Stderr, "unpacking failed")
	}
	assertNoNewGraphEntries(t, s, before, "refused hard links")
	assertNoOrphanLayers(t, s)
}
