package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var imageIDRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// imageRow is one line of `nook images`.
type imageRow struct{ repo, tag, id, created, size string }

// parseImages splits `nook images` output on runs of two or more spaces (values
// like "2 minutes ago" contain single spaces) and checks the header.
func parseImages(t *testing.T, out string) []imageRow {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	split := regexp.MustCompile(`\s{2,}`)
	head := split.Split(strings.TrimSpace(lines[0]), -1)
	want := []string{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}
	if strings.Join(head, "|") != strings.Join(want, "|") {
		t.Fatalf("nook images header: got columns %q, want %q", head, want)
	}
	var rows []imageRow
	for _, l := range lines[1:] {
		f := split.Split(strings.TrimSpace(l), -1)
		if len(f) != 5 {
			t.Fatalf("nook images: line %q has %d columns, want 5", l, len(f))
		}
		rows = append(rows, imageRow{f[0], f[1], f[2], f[3], f[4]})
	}
	return rows
}

func findImage(rows []imageRow, repo, tag string) (imageRow, bool) {
	for _, r := range rows {
		if (r.repo == repo || r.repo == "localhost/"+repo) && r.tag == tag {
			return r, true
		}
	}
	return imageRow{}, false
}

func TestImportAndImages(t *testing.T) {
	s := useMain(t)
	if !imageIDRe.MatchString(demoID) {
		t.Errorf("nook import printed %q, want sha256:<64 hex>", demoID)
	}
	r := s.mustNook(t, "import", busyboxTar, "demo2:v1")
	t.Cleanup(func() { s.nook(t, "rmi", "demo2:v1") })
	id := strings.TrimSpace(r.Stdout)
	if !imageIDRe.MatchString(id) {
		t.Fatalf("nook import printed %q, want sha256:<64 hex>", r.Stdout)
	}

	rows := parseImages(t, s.mustNook(t, "images").Stdout)
	demo, ok := findImage(rows, "demo", "latest")
	if !ok {
		t.Fatalf("nook images does not list demo:latest: %v", rows)
	}
	assertEqual(t, "IMAGE ID of demo", demo.id, demoID[7:19])
	v1, ok := findImage(rows, "demo2", "v1")
	if !ok {
		t.Fatalf("nook images does not list demo2:v1: %v", rows)
	}
	assertEqual(t, "IMAGE ID of demo2:v1", v1.id, id[7:19])
	assertMatch(t, "CREATED of demo2:v1", v1.created, `^(Less than a second|\d+ seconds?|About a minute|\d+ minutes?) ago$`)
	// busybox-static is about 2 MB.
	assertMatch(t, "SIZE of demo", demo.size, `^[0-9]+(\.[0-9]+)? ?MB$`)

	// `image ls` is the same listing; -q prints short IDs, --no-trunc full ones.
	ls := parseImages(t, s.mustNook(t, "image", "ls").Stdout)
	if _, ok := findImage(ls, "demo2", "v1"); !ok {
		t.Errorf("nook image ls does not list demo2:v1")
	}
	q := strings.Fields(s.mustNook(t, "images", "-q").Stdout)
	for _, x := range q {
		assertMatch(t, "nook images -q", x, `^[0-9a-f]{12}$`)
	}
	if !contains(q, id[7:19]) || !contains(q, demoID[7:19]) {
		t.Errorf("nook images -q = %v, want it to include %s and %s", q, id[7:19], demoID[7:19])
	}
	full := s.mustNook(t, "images", "--no-trunc").Stdout
	assertContains(t, "nook images --no-trunc", full, id)

	// The imported image runs.
	assertEqual(t, "output of a container of demo2:v1", s.mustNook(t, "run", "--rm", "demo2:v1", "echo", "ok").Stdout, "ok\n")
}

func contains(list []string, x string) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

func TestImportFromStdin(t *testing.T) {
	s := useMain(t)
	data, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	r := s.nookEnv(t, nil, gz.String(), "import", "-", "fromstdin:gz")
	t.Cleanup(func() { s.nook(t, "rmi", "fromstdin:gz") })
	assertExit(t, r, 0)
	if !imageIDRe.MatchString(strings.TrimSpace(r.Stdout)) {
		t.Errorf("nook import - printed %q, want sha256:<64 hex>", r.Stdout)
	}
	rows := parseImages(t, s.mustNook(t, "images").Stdout)
	if _, ok := findImage(rows, "fromstdin", "gz"); !ok {
		t.Errorf("a gzip tarball imported from stdin is not listed: %v", rows)
	}
	got := s.mustNook(t, "run", "--rm", "fromstdin:gz", "cat", "/etc/passwd").Stdout
	assertContains(t, "/etc/passwd of the gzip-imported image", got, "user:x:1000:1000")
}

// Bad tarballs: exit 125 with one error line, and nothing added to the store.
func TestImportBadTarball(t *testing.T) {
	s := newStore(t, "badtar", storeOptions{}, false)
	good, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()
	cases := map[string][]byte{
		"not-a-tar":     bytes.Repeat([]byte("this is not a tarball\n"), 200),
		"truncated-tar": good[:len(good)/2+100],
		"truncated-gz":  gz.Bytes()[:gz.Len()/2],
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), name+".tar")
			if err := os.WriteFile(f, cases[name], 0o644); err != nil {
				t.Fatal(err)
			}
			imagesBefore := s.mustNook(t, "images", "-q", "--no-trunc").Stdout
			graphBefore := graphEntries(s)
			r := s.nook(t, "import", f, "broken")
			assertExit(t, r, 125)
			assertErrorLine(t, r)
			assertEqual(t, "nook images -q --no-trunc after a failed import", s.mustNook(t, "images", "-q", "--no-trunc").Stdout, imagesBefore)
			assertNoNewGraphEntries(t, s, graphBefore, "a failed import of "+name)
			if r := s.nook(t, "run", "--rm", "broken", "true"); r.Code != 125 {
				t.Errorf("image broken exists after a failed import (run exit %d)", r.Code)
			}
		})
	}
}

func TestInvalidReference(t *testing.T) {
	s := useMain(t)
	for _, ref := range []string{"UPPER/case", "a:b:c", "bad name"} {
		r := s.nook(t, "import", busyboxTar, ref)
		assertExit(t, r, 125)
		assertErrorLine(t, r)
		r = s.nook(t, "run", "--rm", ref, "true")
		assertExit(t, r, 125)
		assertErrorLine(t, r)
	}
	assertNotContains(t, "nook images after invalid imports", s.mustNook(t, "images").Stdout, "UPPER")
}

func TestUnknownImage(t *testing.T) {
	s := useMain(t)
	r := s.nook(t, "run", "--rm", "nosuchimage", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "nosuchimage")
	r = s.nook(t, "run", "--rm", "demo:nosuchtag", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "demo:nosuchtag")
}

// rmi of an image while a container from it runs: refused in one line, by name and by ID,
// and the container keeps running.
func TestImageRemoveWhileRunning(t *testing.T) {
	s := newStore(t, "rmi-running", storeOptions{}, false)
	id := strings.TrimSpace(s.mustNook(t, "image", "inspect", "-f", "{{.Id}}", "demo").Stdout)
	s.mustNook(t, "run", "-d", "--name", "busy", "demo", "sleep", "600")
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", "busy") })
	for _, name := range []string{"demo", strings.TrimPrefix(id, "sha256:")[:12]} {
		r := s.nook(t, "rmi", name)
		assertExit(t, r, 125)
		assertErrorLine(t, r, "used by container", "--force")
	}
	r := s.mustNook(t, "ps", "--format", "{{.Names}} {{.Status}}")
	assertMatch(t, "the container after the refused rmi", r.Stdout, `(?m)^busy Up`)
	assertEqual(t, "the image is still there", strings.TrimSpace(s.mustNook(t, "images", "-q", "--no-trunc").Stdout), id)
	s.mustNook(t, "rm", "-f", "busy")
	r = s.mustNook(t, "rmi", "demo")
	assertContains(t, "rmi once the container is gone", r.Stdout, "Deleted: "+id)
}
