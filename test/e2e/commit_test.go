package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var imageIDLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

// A container that added, changed and deleted files: diff lists each, commit makes an image
// that has each change, with the container's environment and the commit's message and author.
func TestCommitStoppedContainer(t *testing.T) {
	s := newStore(t, "commit", storeOptions{}, false)
	s.mustNook(t, "run", "--name", "c1", "-e", "GREETING=hello", "demo", "sh", "-c",
		"mkdir /data && echo new > /data/added && echo extra:x:2000: >> /etc/group && rm /bin/yes")

	diff := s.mustNook(t, "diff", "c1").Stdout
	assertEqual(t, "diff c1", diff, "C /bin\nD /bin/yes\nA /data\nA /data/added\nC /etc\nC /etc/group\n")
	assertEqual(t, "container diff c1", s.mustNook(t, "container", "diff", "c1").Stdout, diff)
	// The mount points the init makes (/etc/hosts in an image without one) are not changes.
	s.mustNook(t, "run", "--name", "quiet", "demo", "true")
	assertEqual(t, "diff of a container that changed nothing", s.mustNook(t, "diff", "quiet").Stdout, "")
	s.mustNook(t, "rm", "quiet")

	r := s.mustNook(t, "commit", "-m", "a message", "-a", "Jane Doe <jane@example.com>", "c1", "committed:1")
	if !imageIDLine.MatchString(r.Stdout) {
		t.Fatalf("commit printed %q, want sha256:<64 hex> and a newline", r.Stdout)
	}
	assertEqual(t, "the printed ID is the image's", strings.TrimSpace(r.Stdout), imageIDOf(t, s, "committed:1"))

	out := s.mustNook(t, "run", "--rm", "committed:1", "sh", "-c",
		`cat /data/added; tail -n 1 /etc/group; if [ -e /bin/yes ]; then echo yes-present; else echo yes-gone; fi; echo "$GREETING"`).Stdout
	assertEqual(t, "the committed image's files and environment", out, "new\nextra:x:2000:\nyes-gone\nhello\n")

	hist := s.mustNook(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "committed:1").Lines()
	if len(hist) != 2 {
		t.Fatalf("history of the committed image: %d entries, want the import's and the commit's: %q", len(hist), hist)
	}
	assertEqual(t, "the commit's history entry", hist[0],
		"sh -c mkdir /data && echo new > /data/added && echo extra:x:2000: >> /etc/group && rm /bin/yes|a message")
	assertEqual(t, "inspect's Author", s.mustNook(t, "image", "inspect", "-f", "{{.Author}}", "committed:1").Stdout, "Jane Doe <jane@example.com>\n")
	assertEqual(t, "inspect's Comment", s.mustNook(t, "image", "inspect", "-f", "{{.Comment}}", "committed:1").Stdout, "a message\n")
	assertContains(t, "the committed image's Env (run -e)", s.mustNook(t, "image", "inspect", "-f", "{{json .Config.Env}}", "committed:1").Stdout, `"GREETING=hello"`)

	// --change, through `container commit`: CMD changes what the image runs, ENV, LABEL,
	// WORKDIR, EXPOSE, USER its configuration.
	r = s.mustNook(t, "container", "commit",
		"-c", `CMD ["echo","hi"]`, "-c", "ENV FOO=bar", "-c", "LABEL team=blue", "-c", "WORKDIR /data",
		"-c", "EXPOSE 8080/udp", "-c", "USER user", "c1", "changed")
	if !imageIDLine.MatchString(r.Stdout) {
		t.Fatalf("container commit printed %q", r.Stdout)
	}
	assertEqual(t, "-c CMD: what the image runs", s.mustNook(t, "run", "--rm", "changed").Stdout, "hi\n")
	assertEqual(t, "-c ENV, WORKDIR, USER", s.mustNook(t, "run", "--rm", "changed", "sh", "-c", `echo "$FOO $GREETING $(pwd) $(id -u)"`).Stdout, "bar hello /data 1000\n")
	cfg := s.mustNook(t, "image", "inspect", "-f", "{{json .Config.Labels}} {{json .Config.ExposedPorts}} {{json .Config.Cmd}}", "changed").Stdout
	assertEqual(t, "-c LABEL, EXPOSE, CMD in inspect", cfg, `{"team":"blue"} {"8080/udp":{}} ["echo","hi"]`+"\n")
	assertEqual(t, "without -m the comment is empty", s.mustNook(t, "image", "inspect", "-f", "{{.Comment}}", "changed").Stdout, "\n")

	// Errors: one line, exit 125, nothing made.
	before := layerCount(s)
	for _, c := range []struct {
		args  []string
		words []string
	}{
		{[]string{"commit", "-c", "RUN echo hi", "c1"}, []string{"RUN", "--change"}},
		{[]string{"commit", "-c", "COPY a /b", "c1"}, []string{"COPY", "--change"}},
		{[]string{"commit", "-c", "STOPSIGNAL NOSUCH", "c1"}, []string{"NOSUCH"}},
		{[]string{"commit", "nosuch"}, []string{"nosuch"}},
		{[]string{"commit", "c1", "Bad:Name:x"}, []string{"Bad:Name:x"}},
	} {
		r := s.nook(t, c.args...)
		assertExit(t, r, 125)
		assertErrorLine(t, r, c.words...)
		assertEqual(t, "stdout of a failed commit", r.Stdout, "")
	}
	assertEqual(t, "layers after the failed commits", layerCount(s), before)

	s.mustNook(t, "rm", "c1")
	s.mustNook(t, "rmi", "committed:1", "changed")
	assertNoOrphanLayers(t, s)
	assertEqual(t, "layers once the committed images are gone", layerCount(s), 1)
}

// A running detached container is committed, diffed and exported as it is.
func TestCommitRunningContainer(t *testing.T) {
	s := newStore(t, "commit-running", storeOptions{}, false)
	s.mustNook(t, "run", "-d", "--name", "r1", "-e", "MODE=live", "demo", "sh", "-c", "echo running > /live; sleep 1000")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.mustNook(t, "diff", "r1").Stdout, "A /live\n") {
		if time.Now().After(deadline) {
			t.Fatalf("diff of the running container never showed /live")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := s.mustNook(t, "commit", "r1", "snap")
	if !imageIDLine.MatchString(r.Stdout) {
		t.Fatalf("commit printed %q", r.Stdout)
	}
	assertEqual(t, "state after the commit", s.mustNook(t, "inspect", "-f", "{{.State.Status}}", "r1").Stdout, "running\n")
	assertEqual(t, "the running container's file and env in its image",
		s.mustNook(t, "run", "--rm", "snap", "sh", "-c", `cat /live; echo "$MODE"`).Stdout, "running\nlive\n")
	// The committed image runs the container's command: its CMD is the container's.
	assertEqual(t, "the committed CMD", s.mustNook(t, "image", "inspect", "-f", "{{json .Config.Cmd}}", "snap").Stdout,
		`["sh","-c","echo running \u003e /live; sleep 1000"]`+"\n")

	// --pause freezes with the container's cgroup; where it has none, it is an error, never a
	// commit that quietly did not pause.
	r = s.nook(t, "commit", "--pause", "r1")
	if r.Code == 0 {
		if !imageIDLine.MatchString(r.Stdout) {
			t.Fatalf("commit --pause printed %q", r.Stdout)
		}
	} else {
		assertExit(t, r, 125)
		assertErrorLine(t, r, "--pause", "cgroup")
	}

	var buf bytes.Buffer
	tarOf(t, s, []string{"export", "r1"}, &buf)
	files := readExport(t, &buf)
	if h, ok := files["live"]; !ok || h.body != "running\n" {
		t.Errorf("export of the running container: /live is %+v, want \"running\\n\"", h)
	}

	s.mustNook(t, "rm", "-f", "r1")
	s.purge()
	assertNoOrphanLayers(t, s)
}

// export writes the whole root filesystem with the container's owners; import makes it an
// image again that runs.
func TestExportImportRoundTrip(t *testing.T) {
	s := newStore(t, "export", storeOptions{}, false)
	s.mustNook(t, "run", "--name", "e1", "demo", "sh", "-c",
		"echo owned > /home/user/f && chown 1000:1000 /home/user/f && mkdir /x && echo data > /x/y && rm /bin/yes")

	out := filepath.Join(t.TempDir(), "e1.tar")
	r := s.mustNook(t, "export", "-o", out, "e1")
	assertEqual(t, "export -o: stdout", r.Stdout, "")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	files := readExport(t, f)
	f.Close()
	for name, want := range map[string]struct {
		uid  int
		body string
	}{"home/user/f": {1000, "owned\n"}, "x/y": {0, "data\n"}, "etc/passwd": {0, ""}} {
		h, ok := files[name]
		if !ok {
			t.Errorf("export: %s missing", name)
			continue
		}
		if h.uid != want.uid || h.gid != want.uid {
			t.Errorf("export: %s owned by %d:%d, want the container's %d:%d", name, h.uid, h.gid, want.uid, want.uid)
		}
		if want.body != "" && h.body != want.body {
			t.Errorf("export: %s holds %q, want %q", name, h.body, want.body)
		}
	}
	if _, ok := files["bin/busybox"]; !ok {
		t.Errorf("export: bin/busybox missing: not the whole root filesystem")
	}
	if _, ok := files["bin/yes"]; ok {
		t.Errorf("export: bin/yes was deleted in the container but is in the tar")
	}
	for name := range files {
		if strings.Contains(name, ".wh.") {
			t.Errorf("export: whiteout %s in the tar of the merged root filesystem", name)
		}
	}

	// export to standard output | import -.
	var buf bytes.Buffer
	tarOf(t, s, []string{"container", "export", "e1"}, &buf)
	r = s.nookEnv(t, nil, buf.String(), "import", "-", "imported")
	assertExit(t, r, 0)
	assertEqual(t, "the imported export", s.mustNook(t, "run", "--rm", "imported", "sh", "-c",
		"stat -c %u:%g /home/user/f; cat /x/y; ls /bin/yes 2>/dev/null || echo no-yes").Stdout, "1000:1000\ndata\nno-yes\n")

	// A terminal is no place for a tar.
	master, slave := openPty(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, "export", "e1")
	pty, readDone := startOnPty(t, cmd, master, slave)
	err = cmd.Wait()
	select {
	case <-readDone:
	case <-time.After(5 * time.Second):
	}
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 125 {
		t.Errorf("export to a terminal: %v, want exit 125; it printed %q", err, truncate(pty.String(), 300))
	}
	assertContains(t, "export to a terminal", pty.String(), "refusing to write a tar archive to a terminal: use -o FILE")
	if len(pty.String()) > 300 {
		t.Errorf("export to a terminal wrote %d bytes: the tar went to the terminal", len(pty.String()))
	}

	r = s.nook(t, "export", "nosuch")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "nosuch")
	r = s.nook(t, "diff", "nosuch")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "nosuch")

	s.mustNook(t, "rm", "e1")
	s.mustNook(t, "rmi", "imported")
	assertNoOrphanLayers(t, s)
}

// tarOf runs nook with standard output into w (binary, so not through result's string).
func tarOf(t *testing.T, s *store, args []string, w io.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := s.command(ctx, nil, args...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("nook %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
	}
	if errb.Len() > 0 {
		t.Fatalf("nook %s wrote to stderr: %s", strings.Join(args, " "), errb.String())
	}
}

type exportEntry struct {
	uid, gid int
	body     string
}

func readExport(t *testing.T, r io.Reader) map[string]exportEntry {
	t.Helper()
	out := map[string]exportEntry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read the exported tar: %v", err)
		}
		body, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = exportEntry{uid: h.Uid, gid: h.Gid, body: string(body)}
	}
	if len(out) == 0 {
		t.Fatalf("the exported tar is empty")
	}
	return out
}

// Every rootfs mode: diff, commit (of a stopped and of a running container) and export read
// the layer the same way.
func TestCommitRootfsModes(t *testing.T) {
	for _, mode := range []string{"overlay", "fuse-overlayfs", "copy"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "fuse-overlayfs" {
				if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
					t.Fatalf("fuse-overlayfs is not installed (apt-get install fuse-overlayfs)")
				}
				fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					skipf(t, "/dev/fuse is not usable by this user (%v); distributions ship it mode 0666", err)
				}
				unix.Close(fd)
			}
			requireSubIDs(t)
			s := newStore(t, "commit-"+mode, storeOptions{flags: []string{"--rootfs-mode", mode}}, false)
			s.mustNook(t, "run", "--name", "m", "demo", "sh", "-c",
				"echo hi > /home/user/f && chown 1000:1000 /home/user/f && echo extra:x:2000: >> /etc/group && rm /bin/yes")
			assertEqual(t, "diff", s.mustNook(t, "diff", "m").Stdout,
				"C /bin\nD /bin/yes\nC /etc\nC /etc/group\nC /home\nC /home/user\nA /home/user/f\n")
			s.mustNook(t, "commit", "m", "img")
			assertEqual(t, "the committed image", s.mustNook(t, "run", "--rm", "img", "sh", "-c",
				"stat -c %u /home/user/f; tail -n 1 /etc/group; ls /bin/yes 2>/dev/null || echo no-yes").Stdout, "1000\nextra:x:2000:\nno-yes\n")
			var buf bytes.Buffer
			tarOf(t, s, []string{"export", "m"}, &buf)
			if h, ok := readExport(t, &buf)["home/user/f"]; !ok || h.uid != 1000 || h.body != "hi\n" {
				t.Errorf("export: home/user/f is %+v (present %v), want uid 1000 and \"hi\\n\"", h, ok)
			}

			s.mustNook(t, "run", "-d", "--name", "r", "demo", "sh", "-c", "echo up > /up; sleep 1000")
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(s.mustNook(t, "diff", "r").Stdout, "A /up\n") {
				if time.Now().After(deadline) {
					t.Fatalf("diff of the running container never showed /up")
				}
				time.Sleep(100 * time.Millisecond)
			}
			s.mustNook(t, "commit", "r", "running")
			assertEqual(t, "the running container's commit", s.mustNook(t, "run", "--rm", "running", "cat", "/up").Stdout, "up\n")
			s.mustNook(t, "rm", "-f", "r", "m")
			s.mustNook(t, "rmi", "img", "running")
			assertNoOrphanLayers(t, s)
		})
	}
}
