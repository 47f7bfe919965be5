package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// importRandom imports a new one-layer image of size bytes (named name, or dangling for "") and
// returns its ID as `import` prints it (sha256:...).
func importRandom(t *testing.T, s *store, tag, name string, size int) string {
	t.Helper()
	b, err := randomLayer(tag, size, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), tag+".tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"import", p}
	if name != "" {
		args = append(args, name)
	}
	return strings.TrimSpace(s.mustNook(t, args...).Stdout)
}

type dfRow struct{ Type, TotalCount, Active, Size, Reclaimable string }

func systemDf(t *testing.T, s *store) map[string]dfRow {
	t.Helper()
	out := map[string]dfRow{}
	for _, l := range s.mustNook(t, "system", "df", "--format", "json").Lines() {
		var r dfRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("system df --format json: %v: %q", err, l)
		}
		out[r.Type] = r
	}
	return out
}

// `nook system df`: Docker's table, and numbers that agree with images, ps -a, ps -s and the
// bytes written into a volume.
func TestSystemDf(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "sysdf", storeOptions{}, false)
	r := s.mustNook(t, "system", "df")
	lines := r.Lines()
	if len(lines) != 5 {
		t.Fatalf("system df: want a header and 4 rows:\n%s", r.Stdout)
	}
	assertMatch(t, "header", lines[0], `^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE$`)
	for i, typ := range []string{"Images", "Containers", "Local Volumes", "Build Cache"} {
		if !strings.HasPrefix(lines[i+1], typ+"  ") {
			t.Errorf("row %d is %q, want %s", i+1, lines[i+1], typ)
		}
	}
	demoSize := imageSize(t, s, "demo")
	df := systemDf(t, s)
	assertEqual(t, "one image", df["Images"], dfRow{"Images", "1", "0", demoSize, demoSize + " (100%)"})
	assertEqual(t, "no containers", df["Containers"], dfRow{"Containers", "0", "0", "0B", "0B"})
	assertEqual(t, "no volumes", df["Local Volumes"], dfRow{"Local Volumes", "0", "0", "0B", "0B"})

	// A volume with exactly 1 MB in it, used by a running container; a stopped container that
	// wrote 500 kB into its own layer; a second image nobody uses.
	s.mustNook(t, "run", "--rm", "-v", "full:/v", "demo", "sh", "-c", "dd if=/dev/zero of=/v/f bs=1000 count=1000 2>/dev/null")
	s.mustNook(t, "volume", "create", "empty")
	runDetached(t, s, "--name", "up", "-v", "full:/data", "demo", "sleep", "600")
	s.mustNook(t, "run", "--name", "wrote", "demo", "sh", "-c", "dd if=/dev/zero of=/blob bs=1000 count=500 2>/dev/null")
	t.Cleanup(func() { s.nook(t, "rm", "-f", "wrote") })
	importRandom(t, s, "spare", "spare:1", 200<<10)

	df = systemDf(t, s)
	ids := map[string]bool{}
	for _, id := range s.mustNook(t, "images", "-a", "-q").Lines() {
		ids[id] = true
	}
	img := df["Images"]
	if img.TotalCount != "2" || len(ids) != 2 || img.Active != "1" {
		t.Errorf("images: df says %+v, images -a -q lists %d", img, len(ids))
	}
	spareSize := imageSize(t, s, "spare")
	if !strings.HasPrefix(img.Reclaimable, spareSize+" (") {
		t.Errorf("images reclaimable %q, want the unused image's size %s", img.Reclaimable, spareSize)
	}
	ctr := df["Containers"]
	running := len(s.mustNook(t, "ps", "-q").Lines())
	all := len(s.mustNook(t, "ps", "-a", "-q").Lines())
	if ctr.TotalCount != "2" || all != 2 || ctr.Active != "1" || running != 1 {
		t.Errorf("containers: df says %+v; ps -a lists %d, ps %d", ctr, all, running)
	}
	// ps -s's first number is the container's own layer; the stopped one's is what is reclaimable.
	wroteSize, _, _ := strings.Cut(strings.TrimSpace(s.mustNook(t, "ps", "-a", "-s", "--filter", "name=wrote", "--format", "{{.Size}}").Stdout), " ")
	if !strings.HasPrefix(ctr.Reclaimable, wroteSize+" (") || !strings.HasPrefix(wroteSize, "50") {
		t.Errorf("containers reclaimable %q, want the stopped container's %s (about 500kB)", ctr.Reclaimable, wroteSize)
	}
	assertEqual(t, "volumes", df["Local Volumes"], dfRow{"Local Volumes", "2", "1", "1MB", "0B (0%)"})
}

// `nook system prune`: asks first; removes the stopped containers, the networks no remaining
// container is on and the dangling images, and nothing else; -a the unused images too and
// --volumes the unused volumes; the running container, its image, its network and its volume
// stay through all of it.
func TestSystemPrune(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "sysprune", storeOptions{}, false)
	for _, n := range []string{"usednet", "stoppednet", "unusednet"} {
		s.mustNook(t, "network", "create", n)
		t.Cleanup(func() { s.nook(t, "network", "rm", n) })
	}
	alive := runDetached(t, s, "--name", "alive", "--network", "usednet", "-v", "kept:/data", "demo", "sleep", "600")
	exited := strings.TrimSpace(s.mustNook(t, "run", "-d", "--name", "exited", "--network", "stoppednet", "demo", "true").Stdout)
	s.mustNook(t, "wait", "exited")
	created := strings.TrimSpace(s.mustNook(t, "create", "--name", "created", "-v", "loose:/v", "demo", "true").Stdout)
	s.mustNook(t, "run", "--rm", "-v", "loose:/v", "demo", "sh", "-c", "dd if=/dev/zero of=/v/f bs=1000 count=300 2>/dev/null")
	dangling := importRandom(t, s, "dangling", "", 100<<10)
	spare := importRandom(t, s, "spare", "spare:1", 100<<10)

	// Answered no: nothing goes.
	r := s.nookEnv(t, nil, "n\n", "system", "prune")
	assertExit(t, r, 0)
	for _, w := range []string{"WARNING! This will remove:", "  - all stopped containers", "  - all networks not used by at least one container", "  - all dangling images", "Are you sure you want to continue? [y/N]"} {
		assertContains(t, "system prune's warning", r.Stdout, w)
	}
	assertNotContains(t, "system prune's warning without --volumes", r.Stdout, "volumes")
	assertNotContains(t, "answered no", r.Stdout, "Deleted")
	if n := len(s.mustNook(t, "ps", "-a", "-q").Lines()); n != 3 {
		t.Fatalf("after answering no, %d containers, want 3", n)
	}

	r = s.nookEnv(t, nil, "y\n", "system", "prune")
	assertExit(t, r, 0)
	out := r.Stdout
	assertContains(t, "prune", out, "Deleted Containers:\n")
	for _, id := range []string{exited, created} {
		assertContains(t, "prune removes the stopped containers", out, id+"\n")
	}
	assertNotContains(t, "prune keeps the running container", out, alive)
	assertContains(t, "prune", out, "Deleted Networks:\n")
	assertContains(t, "prune removes an unused network", out, "unusednet\n")
	assertContains(t, "prune removes the network of a removed container", out, "stoppednet\n")
	assertNotContains(t, "prune keeps the running container's network", out, "\nusednet\n")
	assertContains(t, "prune removes the dangling image", out, "deleted: "+dangling+"\n")
	assertNotContains(t, "prune keeps named images", out, spare)
	assertNotContains(t, "prune without --volumes", out, "Deleted Volumes")
	assertMatch(t, "prune ends with the total", out, `\nTotal reclaimed space: [0-9.]+[kMG]?B\n$`)
	assertEqual(t, "containers left", strings.Join(s.mustNook(t, "ps", "-a", "--format", "{{.Names}}").Lines(), ","), "alive")
	assertEqual(t, "networks left", userNetworks(t, s), "usednet")
	imgs := s.mustNook(t, "images", "-a", "-q", "--no-trunc").Stdout
	if strings.Contains(imgs, dangling) || !strings.Contains(imgs, spare) {
		t.Errorf("images after prune: want %s gone and %s kept:\n%s", dangling, spare, imgs)
	}
	assertEqual(t, "volumes left by prune without --volumes", strings.Join(s.mustNook(t, "volume", "ls", "-q").Lines(), ","), "kept,loose")

	// -a --volumes -f: the unused image and volume go; what the running container uses stays.
	r = s.mustNook(t, "system", "prune", "-a", "--volumes", "-f")
	assertNotContains(t, "-f asks nothing", r.Stdout, "Are you sure")
	assertContains(t, "prune --volumes", r.Stdout, "Deleted Volumes:\nloose\n\n")
	assertContains(t, "prune -a", r.Stdout, "untagged: spare:1\n")
	assertContains(t, "prune -a", r.Stdout, "deleted: "+spare+"\n")
	assertNotContains(t, "prune -a keeps the image a container uses", r.Stdout, "demo")
	// the loose volume's 300 kB and the spare image's 100 kiB layer
	assertMatch(t, "prune -a --volumes total", r.Stdout, `\nTotal reclaimed space: 4[0-9][0-9.]*kB\n$`)
	assertEqual(t, "volumes left", strings.Join(s.mustNook(t, "volume", "ls", "-q").Lines(), ","), "kept")
	assertEqual(t, "images left", strings.Join(s.mustNook(t, "images", "--format", "{{.Repository}}").Lines(), ","), "demo")
	assertEqual(t, "networks left", userNetworks(t, s), "usednet")
	assertEqual(t, "the running container still runs", s.mustNook(t, "exec", "alive", "echo", "ok").Stdout, "ok\n")

	// system info is info.
	info := s.mustNook(t, "info").Stdout
	sys := s.mustNook(t, "system", "info").Stdout
	if sys == "" || firstLines(info, 3) != firstLines(sys, 3) {
		t.Errorf("system info differs from info:\n%s\n---\n%s", sys, info)
	}
}

func firstLines(s string, n int) string {
	ls := strings.SplitN(s, "\n", n+1)
	return strings.Join(ls[:min(n, len(ls))], "\n")
}

// imageSize is the SIZE `nook images` shows for repository repo.
func imageSize(t *testing.T, s *store, repo string) string {
	t.Helper()
	for _, l := range s.mustNook(t, "images", "--format", "{{.Repository}} {{.Size}}").Lines() {
		if r, size, _ := strings.Cut(l, " "); r == repo {
			return size
		}
	}
	t.Fatalf("nook images lists no %s", repo)
	return ""
}

// userNetworks are the NAME column of `nook network ls` but the built-in ones, joined by ",".
func userNetworks(t *testing.T, s *store) string {
	t.Helper()
	var names []string
	for _, l := range s.mustNook(t, "network", "ls").Lines()[1:] {
		f := strings.Fields(l)
		if len(f) > 1 && f[2] == "bridge" {
			names = append(names, f[1])
		}
	}
	return strings.Join(names, ",")
}
