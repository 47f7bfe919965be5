package e2e

// nook cp's tar streams ("-" as source or destination), -a, -L and the progress
// line, against a running container (the host-side path, nsenter and
// nook-runtime cp-in/cp-out) and a stopped one (the engine's mount of its layer).

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpSetup makes, in the container, a tree with several owners and a link to a file.
const cpSetup = `mkdir -p /data/dir/sub /dest /dest-a /hostile && echo one > /data/dir/a && echo two > /data/dir/sub/b && ` +
	`chown 1000:1000 /data/dir/a && chown 123:456 /data/dir/sub && ln -s /data/dir/a /data/link && chmod 640 /data/dir/a`

// tarEntries lists an archive: "NAME TYPE UID:GID [CONTENT|-> LINK]", sorted.
func tarEntries(t *testing.T, what string, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not a tar archive: %v (%d bytes)", what, err, len(b))
		}
		e := fmt.Sprintf("%s %c %d:%d", h.Name, h.Typeflag, h.Uid, h.Gid)
		switch h.Typeflag {
		case tar.TypeReg:
			data, _ := io.ReadAll(tr)
			e += " " + strings.TrimSpace(string(data))
		case tar.TypeSymlink:
			e += " -> " + h.Linkname
		}
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// cpOut is `nook cp [FLAGS] CONTAINER:PATH -`: the archive's entries.
func cpOut(t *testing.T, s *store, args ...string) []string {
	t.Helper()
	r := s.exec(context.Background(), nil, "", append(append([]string{"cp"}, args...), "-")...)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("%s", r)
	}
	return tarEntries(t, strings.Join(args, " "), []byte(r.Stdout))
}

// gnuTar makes an archive with the real tar, of dir's entries, with the given owner.
func gnuTar(t *testing.T, dir, owner string) string {
	t.Helper()
	cmd := exec.Command("tar", "-C", dir, "--owner="+owner, "--group="+owner, "--numeric-owner", "-cf", "-", ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar -c: %v", err)
	}
	return string(out)
}

func TestCpStream(t *testing.T) {
	s := useMain(t)
	for _, running := range []bool{true, false} {
		mode := "stopped"
		if running {
			mode = "running"
		}
		t.Run(mode, func(t *testing.T) {
			name := "cps" + mode[:1] + strconv.Itoa(os.Getpid())
			if running {
				runDetached(t, s, "--name", name, "demo", "sh", "-c", cpSetup+"; "+termTrap)
				waitLog(t, s, name, "ready", 10*time.Second)
			} else {
				s.mustNook(t, "run", "--name", name, "demo", "sh", "-c", cpSetup)
			}
			defer s.nook(t, "rm", "-f", name)

			// A directory to standard output: its base name on top, the container's owners.
			got := cpOut(t, s, name+":/data/dir")
			assertEqual(t, "cp "+mode+":/data/dir -", strings.Join(got, "\n"), strings.Join([]string{
				"dir/ 5 0:0",
				"dir/a 0 1000:1000 one",
				"dir/sub/ 5 123:456",
				"dir/sub/b 0 0:0 two",
			}, "\n"))
			// The real tar reads it, with the same owners.
			r := s.exec(context.Background(), nil, "", "cp", name+":/data/dir", "-")
			tv := exec.Command("tar", "-tvf", "-", "--numeric-owner")
			tv.Stdin = strings.NewReader(r.Stdout)
			list, err := tv.Output()
			if err != nil {
				t.Fatalf("nook cp %s:/data/dir - | tar -tv: %v", name, err)
			}
			assertMatch(t, "tar -tv of the archive", string(list), `(?m)^-rw-r-----\s+1000/1000\s+4 .* dir/a$`)
			assertMatch(t, "tar -tv of the archive", string(list), `(?m)^d\S+\s+123/456\s+.* dir/sub/$`)

			// A file, and a link: as it is, or followed with -L.
			assertEqual(t, "a file to -", strings.Join(cpOut(t, s, name+":/data/dir/a"), "\n"), "a 0 1000:1000 one")
			assertEqual(t, "a link to -", strings.Join(cpOut(t, s, name+":/data/link"), "\n"), "link 2 0:0 -> /data/dir/a")
			assertEqual(t, "-L: the link's target, under its name", strings.Join(cpOut(t, s, "-L", name+":/data/link"), "\n"), "link 0 1000:1000 one")
			// A link followed out of the container's root is its root's /data/dir/a, never
			// the host's: the absolute target is the container's.
			host := t.TempDir()
			s.mustNook(t, "cp", "-L", name+":/data/link", host)
			b, _ := os.ReadFile(filepath.Join(host, "link"))
			assertEqual(t, "cp -L to the host", string(b), "one\n")

			// An archive from standard input, made by tar, extracted into a directory: owned
			// by the container's root, or with -a by the archive's ids.
			src := t.TempDir()
			if err := os.MkdirAll(filepath.Join(src, "in", "deep"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "in", "deep", "f"), []byte("stdin\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			arch := gnuTar(t, src, "4242")
			r = s.nookEnv(t, nil, arch, "cp", "-", name+":/dest")
			assertExit(t, r, 0)
			assertEqual(t, "cp - quietly (no terminal)", r.Stderr, "")
			r = s.nookEnv(t, nil, arch, "cp", "-a", "-", name+":/dest-a")
			assertExit(t, r, 0)
			assertEqual(t, "cp - into the container: its root owns it", strings.Join(cpOut(t, s, name+":/dest"), "\n"), strings.Join([]string{
				"dest/ 5 0:0", "dest/in/ 5 0:0", "dest/in/deep/ 5 0:0", "dest/in/deep/f 0 0:0 stdin"}, "\n"))
			assertEqual(t, "cp -a - into the container: the archive's owners", strings.Join(cpOut(t, s, name+":/dest-a"), "\n"), strings.Join([]string{
				"dest-a/ 5 4242:4242", "dest-a/in/ 5 4242:4242", "dest-a/in/deep/ 5 4242:4242", "dest-a/in/deep/f 0 4242:4242 stdin"}, "\n"))
			if running {
				assertMatch(t, "ls -ln in the container", s.mustNook(t, "exec", name, "ls", "-ln", "/dest/in/deep").Stdout,
					`-rw-------\s+1\s+0\s+0\s+6 .* f\n`)
				assertMatch(t, "ls -ln in the container, -a", s.mustNook(t, "exec", name, "ls", "-ln", "/dest-a/in/deep").Stdout,
					`-rw-------\s+1\s+4242\s+4242\s+6 .* f\n`)
			}

			// A host file: the container's root owns the copy, with -a the host's owner (the
			// user who runs nook, as the host sees them).
			hf := filepath.Join(src, "hostfile")
			if err := os.WriteFile(hf, []byte("host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("hostfile", filepath.Join(src, "hostlink")); err != nil {
				t.Fatal(err)
			}
			s.mustNook(t, "cp", hf, name+":/data/h0")
			s.mustNook(t, "cp", "-a", hf, name+":/data/h1")
			s.mustNook(t, "cp", filepath.Join(src, "hostlink"), name+":/data/l0")
			s.mustNook(t, "cp", "-L", filepath.Join(src, "hostlink"), name+":/data/l1")
			me := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
			assertEqual(t, "cp HOSTFILE: owned by the container's root", strings.Join(cpOut(t, s, name+":/data/h0"), "\n"), "h0 0 0:0 host")
			assertEqual(t, "cp -a HOSTFILE: the host's owner", strings.Join(cpOut(t, s, name+":/data/h1"), "\n"), "h1 0 "+me+" host")
			assertEqual(t, "cp HOSTLINK: the link", strings.Join(cpOut(t, s, name+":/data/l0"), "\n"), "l0 2 0:0 -> hostfile")
			assertEqual(t, "cp -L HOSTLINK: its target", strings.Join(cpOut(t, s, name+":/data/l1"), "\n"), "l1 0 0:0 host")

			// Out to the host: the user owns what is made, -a or not (the host's user cannot
			// give files away, and docker cp does not either).
			s.mustNook(t, "cp", "-a", name+":/data/dir", filepath.Join(host, "out"))
			b, _ = os.ReadFile(filepath.Join(host, "out", "sub", "b"))
			assertEqual(t, "tree copied out with -a", string(b), "two\n")

			// "-" goes into an existing directory only.
			for _, dst := range []string{"/data/dir/a", "/no/such"} {
				r = s.nookEnv(t, nil, arch, "cp", "-", name+":"+dst)
				assertExit(t, r, 125)
				assertErrorLine(t, r, dst)
			}
			// Two containers, or none.
			assertExit(t, s.nook(t, "cp", "-", "-"), 125)

			// Hostile archives on standard input: the host stays untouched, and what is
			// accepted lands inside the container.
			victim, secret := escapeVictim(t)
			for i, trap := range hostileTraps(victim) {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				for _, e := range trap {
					h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
					if e.typ == 0 {
						h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
					}
					if err := tw.WriteHeader(h); err != nil {
						t.Fatal(err)
					}
					_, _ = tw.Write([]byte(e.body))
				}
				_ = tw.Close()
				r = s.nookEnv(t, nil, buf.String(), "cp", "-", name+":/hostile")
				if r.Code != 0 {
					assertExit(t, r, 125)
					assertErrorLine(t, r)
				} else {
					t.Logf("trap %d (%s) accepted: %s", i, trap[0].name, strings.Join(cpOut(t, s, name+":/hostile"), ", "))
				}
				assertDirEntries(t, victim, "secret")
				assertFileContent(t, secret, "host secret\n")
				if strings.Contains(strings.Join(cpOut(t, s, name+":/hostile"), "\n"), "host secret") {
					t.Errorf("trap %d: the host's secret was copied into the container", i)
				}
			}
		})
	}
}

// `nook cp CONTAINER:PATH -` never writes an archive to a terminal; on a terminal a copy
// reports "Successfully copied", which -q and a pipe silence.
func TestCpTerminal(t *testing.T) {
	s := useMain(t)
	name := "cpt" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "run", "--name", name, "demo", "sh", "-c", "mkdir /d && echo x > /d/f")
	defer s.nook(t, "rm", "-f", name)
	onPty := func(args ...string) (string, int) {
		t.Helper()
		master, slave := openPty(t)
		defer master.Close()
		ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
		defer cancel()
		cmd := exec_(ctx, s, args...)
		out, readDone := startOnPty(t, cmd, master, slave)
		_ = cmd.Wait()
		select {
		case <-readDone:
		case <-time.After(5 * time.Second):
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	out, code := onPty("cp", name+":/d", "-")
	if code != 125 {
		t.Errorf("cp to - on a terminal: exit %d, want 125; it printed %q", code, truncate(out, 300))
	}
	assertContains(t, "cp to - on a terminal", out, "refusing to write a tar archive to a terminal")
	if len(out) > 300 || strings.Count(strings.TrimSpace(out), "\n") > 0 {
		t.Errorf("cp to - on a terminal printed %q: one line expected", truncate(out, 300))
	}
	dir := t.TempDir()
	out, code = onPty("cp", name+":/d", filepath.Join(dir, "one"))
	assertEqual(t, "cp on a terminal: exit", code, 0)
	assertMatch(t, "cp on a terminal", out, `^Successfully copied [0-9.]+k?B to `+regexpQuote(filepath.Join(dir, "one"))+`\r?\n$`)
	// A running container: the line comes from the host side of the copy.
	run := "cptr" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", run, "demo", "sh", "-c", termTrap)
	defer s.nook(t, "rm", "-f", run)
	waitLog(t, s, run, "ready", 10*time.Second)
	out, code = onPty("cp", filepath.Join(dir, "one"), run+":/tmp/")
	assertEqual(t, "cp into a running container on a terminal: exit", code, 0)
	assertMatch(t, "cp into a running container on a terminal", out, `^Successfully copied [0-9.]+k?B to `+regexpQuote(run+":/tmp/")+`\r?\n$`)
	assertEqual(t, "copied into the running container", s.mustNook(t, "exec", run, "cat", "/tmp/one/f").Stdout, "x\n")
	out, code = onPty("cp", "-q", name+":/d", filepath.Join(dir, "two"))
	assertEqual(t, "cp -q on a terminal: exit", code, 0)
	assertEqual(t, "cp -q on a terminal prints nothing", out, "")
	b, _ := os.ReadFile(filepath.Join(dir, "two", "f"))
	assertEqual(t, "cp -q copied", string(b), "x\n")
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
