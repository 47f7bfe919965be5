package e2e

// The escape suite's hostile layers through `nook load` (a docker-archive and
// an oci-archive) and `nook pull` (from the local registry): the same traps
// TestEscapeLayerTarball gives `nook import`, each checked on the HOST.

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// escapeVictim makes a host directory outside every store holding one file,
// secret; it returns both paths.
func escapeVictim(t *testing.T) (victim, secret string) {
	t.Helper()
	secret = hostFile(t, "secret", "host secret\n")
	return filepath.Dir(secret), secret
}

// hostileTraps are the layer traps aimed at victim: a ".." path, an absolute
// symlink then a file through it, a relative ".." symlink then a file through
// it, an absolute hard link and a ".." hard link to secret.
func hostileTraps(victim string) [][]escapeEntry {
	up := strings.Repeat("../", 12) + strings.TrimPrefix(victim, "/")
	return [][]escapeEntry{
		{{name: up + "/dotdot", body: "pwned\n"}},
		{{name: "abs", link: victim, typ: tar.TypeSymlink}, {name: "abs/through-symlink", body: "pwned\n"}},
		{{name: "rel", link: up, typ: tar.TypeSymlink}, {name: "rel/through-relative-symlink", body: "pwned\n"}},
		{{name: "hard", link: filepath.Join(victim, "secret"), typ: tar.TypeLink}},
		{{name: "hard", link: up + "/secret", typ: tar.TypeLink}},
	}
}

// hostileLayer is the busybox layer followed by trap, as bytes.
func hostileLayer(t *testing.T, trap []escapeEntry) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.tar")
	writeEscapeLayer(t, p, busyboxTar, trap)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertHostileHandled checks what nook did with a hostile image (r is the
// load or pull): either a refusal (exit 125, one "Error:" line, nothing new
// in the graph root since before), or an image whose traps, run, stay inside
// the container. Either way the victim directory must hold only its
// unchanged secret.
func assertHostileHandled(t *testing.T, s *store, what string, r result, before map[string]bool, image, victim, secret string, trap []escapeEntry) {
	t.Helper()
	if r.Code != 0 {
		assertExit(t, r, 125)
		assertErrorLine(t, r)
		assertNoNewGraphEntries(t, s, before, "a refused "+what)
	} else {
		// Accepted: whatever the traps made lives in the container's root.
		// Read and write through each of them from inside; the host must not
		// see it, and the host's secret must not be read.
		rr := s.nook(t, "run", "--rm", image, "sh", "-c",
			"cat /hard 2>&1; echo changed > /hard; ls /abs/ /rel/ 2>&1; echo x > /abs/y; echo x > /rel/y; "+
				"for f in "+victim+"/*; do echo \"inside: $f\"; done; true")
		assertExit(t, rr, 0)
		assertNotContains(t, what, rr.Stdout, "host secret")
		t.Logf("%s was accepted; inside the container: %q", what, rr.Stdout)
		// A file written through ".." or a symlink landed in the container,
		// at the path the trap named as seen from the container's root.
		for _, e := range trap {
			if e.body == "" {
				continue
			}
			in := filepath.Join(victim, filepath.Base(e.name))
			rr = s.nook(t, "run", "--rm", image, "cat", in)
			assertExit(t, rr, 0)
			assertEqual(t, what+": "+in+" inside the container", rr.Stdout, e.body)
		}
	}
	assertDirEntries(t, victim, "secret")
	assertFileContent(t, secret, "host secret\n")
}

// TestEscapeLayerLoad: docker-archives and oci-archives whose layer is
// hostile leave the host untouched under `nook load`.
func TestEscapeLayerLoad(t *testing.T) {
	s := newStore(t, "evil-load", storeOptions{}, false) // demo: the store's folders exist
	victim, secret := escapeVictim(t)
	dir := t.TempDir()
	for i, trap := range hostileTraps(victim) {
		layer := hostileLayer(t, trap)

		da := filepath.Join(dir, fmt.Sprintf("evil-da%d.tar", i))
		image := fmt.Sprintf("evil-da%d:1", i)
		if err := writeDockerArchive(da, []string{image}, [][]byte{layer}); err != nil {
			t.Fatal(err)
		}
		before := graphEntries(s)
		r := s.nook(t, "load", "-q", "-i", da)
		assertHostileHandled(t, s, "docker-archive load of trap "+trap[0].name, r, before, image, victim, secret, trap)

		layout := filepath.Join(dir, fmt.Sprintf("layout%d", i))
		image = fmt.Sprintf("evil-oci%d:1", i)
		if err := writeOCILayout(layout, "docker.io/library/"+image, runtime.GOARCH, false, [][]byte{layer}); err != nil {
			t.Fatal(err)
		}
		oa := filepath.Join(dir, fmt.Sprintf("evil-oci%d.tar", i))
		if err := tarDir(layout, oa); err != nil {
			t.Fatal(err)
		}
		before = graphEntries(s)
		r = s.nook(t, "load", "-q", "-i", oa)
		assertHostileHandled(t, s, "oci-archive load of trap "+trap[0].name, r, before, image, victim, secret, trap)
	}
	assertNoOrphanLayers(t, s)
}

// TestEscapeLayerPull: the same hostile images, pushed to the local registry
// by skopeo from a docker-archive, leave the host untouched under `nook pull`.
func TestEscapeLayerPull(t *testing.T) {
	reg, _ := needRegistries(t)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is not installed (apt-get install skopeo; test/run-e2e.sh does it as root)")
	}
	s := newStore(t, "evil-pull", storeOptions{}, false)
	victim, secret := escapeVictim(t)
	dir := t.TempDir()
	// A first, harmless pull: whatever a store makes on its first pull exists
	// before the snapshots below.
	s.mustNook(t, "push", "-q", "demo", reg.addr+"/escape/warmup:1")
	s.mustNook(t, "pull", "-q", reg.addr+"/escape/warmup:1")
	for i, trap := range hostileTraps(victim) {
		da := filepath.Join(dir, fmt.Sprintf("evil%d.tar", i))
		if err := writeDockerArchive(da, []string{fmt.Sprintf("evil%d:1", i)}, [][]byte{hostileLayer(t, trap)}); err != nil {
			t.Fatal(err)
		}
		image := fmt.Sprintf("%s/escape/evil%d:1", reg.addr, i)
		out, err := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "docker-archive:"+da, "docker://"+image).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo copy of trap %s to the registry: %v\n%s", trap[0].name, err, out)
		}
		assertDirEntries(t, victim, "secret") // skopeo only copies blobs
		before := graphEntries(s)
		r := s.nook(t, "pull", "-q", image)
		assertHostileHandled(t, s, "pull of trap "+trap[0].name, r, before, image, victim, secret, trap)
	}
	assertNoOrphanLayers(t, s)
}
