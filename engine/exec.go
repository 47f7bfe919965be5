package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nook-containers/nook/cgroups"
	"github.com/nook-containers/nook/cptar"
	nookruntime "github.com/nook-containers/nook/runtime"
	"github.com/nook-containers/nook/userns"
)

// ExecOptions are `nook exec`'s flags.
type ExecOptions struct {
	Args        []string
	Env         []string
	EnvFiles    []string // --env-file, read before Env, as run's
	Privileged  bool     // every capability of the user namespace and no seccomp, as run --privileged
	User        string
	Workdir     string
	Interactive bool
	TTY         bool
	Detach      bool
}

// Exec is `nook exec`. The engine, in a user namespace of its own, cannot join the container's
// (a sibling's); it checks the container and builds the process — the container's own
// security settings, with exec's changes — and hands it to the CLI on the host, which runs it
// in every namespace of the container with nsenter (see nsexec).
func (e *Engine) Exec(ref string, o ExecOptions) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	if c.State != StateRunning || c.InitPid <= 0 {
		return fmt.Errorf("container %s is not running: start it first (nook start %s)", ref, ref)
	}
	dir, err := e.Store.ContainerRunDirectory(c.ID)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return fmt.Errorf("read the container's config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil || s.Process == nil {
		return fmt.Errorf("parse the container's config: %v", err)
	}
	p := *s.Process
	p.Args = o.Args
	p.Terminal = o.TTY
	p.ConsoleSize = nil
	if p.Env, err = mergeEnv(p.Env, o.EnvFiles, o.Env); err != nil {
		return err
	}
	if o.TTY {
		p.Env = setEnv(p.Env, "TERM=xterm")
	}
	if o.Workdir != "" {
		if !path.IsAbs(o.Workdir) {
			return fmt.Errorf("the working directory %q is invalid, it needs to be an absolute path", o.Workdir)
		}
		p.Cwd = o.Workdir
	}
	x := specs.Spec{Version: s.Version, Process: &p}
	if o.Privileged {
		all := nookruntime.AllCapabilities()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: slices.Clone(all), Permitted: slices.Clone(all)}
	} else if s.Linux != nil && s.Linux.Seccomp != nil {
		x.Linux = &specs.Linux{Seccomp: s.Linux.Seccomp}
	}
	if o.User != "" {
		x.Annotations = map[string]string{"nook.exec.user": o.User}
	}
	pb, err := json.Marshal(&x)
	if err != nil {
		return err
	}
	r := &userns.HostRequest{Op: "exec", Pid: c.InitPid, Process: pb, TTY: o.TTY, Stdin: o.Interactive, Detach: o.Detach}
	if d := e.cgroups(); d.Usable() {
		if p := cgroups.PathFor(d, c.ID); dirExists(p) {
			r.Cgroup = p // the exec'd process counts against the container's limits
		}
	}
	return userns.RequestHost(r)
}

// CopyOptions are `nook cp`'s flags and streams.
type CopyOptions struct {
	Archive    bool // -a: keep the source's uid/gid going into the container; else its root owns the copy
	FollowLink bool // -L: a symlink at SRC is followed
	Progress   bool // print "Successfully copied SIZE to DST" on standard error (a terminal, no -q)
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
}

// Copy is `nook cp`: one side is CONTAINER:PATH, the other a host path or "-" (a tar archive
// on standard input or output). A running container is reached through its mount namespace by
// the CLI on the host (nsexec); a stopped one through its layer, mounted here.
func (e *Engine) Copy(src, dst string, o CopyOptions) error {
	sc, sp, sIn := splitCopyArg(src)
	dc, dp, dIn := splitCopyArg(dst)
	switch {
	case sIn && dIn:
		return fmt.Errorf("copying between containers is not supported: copy to the host first")
	case !sIn && !dIn:
		return fmt.Errorf("one of the paths must be CONTAINER:PATH")
	}
	ref, cpath := dc, dp
	if sIn {
		ref, cpath = sc, sp
	}
	// A path that ends in "/" or "/." names a directory: a link there is followed.
	followLast := strings.HasSuffix(cpath, "/") || strings.HasSuffix(cpath, "/.")
	if !path.IsAbs(cpath) {
		cpath = "/" + cpath
	}
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	if c.State == StateRunning && c.InitPid > 0 {
		r := &userns.HostRequest{Pid: c.InitPid, Archive: o.Archive, FollowLink: o.FollowLink, Progress: o.Progress, Shown: dst}
		if sIn {
			r.Op, r.Src, r.Dst = "cp-out", cpath, dst
		} else {
			r.Op, r.Src, r.Dst = "cp-in", src, cpath
		}
		return userns.RequestHost(r)
	}
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	rootfs, err := e.Store.Mount(c.ID, "")
	if err != nil {
		return fmt.Errorf("mount container rootfs: %w", err)
	}
	defer func() { _, _ = e.Store.Unmount(c.ID, false) }()
	croot, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer croot.Close()
	var n int64
	if sIn {
		csrc, err := cptar.Resolve(croot, cpath, o.FollowLink || followLast)
		if err != nil {
			return err
		}
		wo := cptar.Options{Name: path.Base(cpath)}
		if dst == "-" {
			_, err := cptar.Write(o.Stdout, croot, csrc, wo)
			return err
		}
		hdst, err := filepath.Abs(dst)
		if err != nil {
			return err
		}
		rootDir, rel := filepath.Dir(hdst), filepath.Base(hdst)
		if fi, err := os.Stat(hdst); err == nil && fi.IsDir() {
			rootDir, rel = hdst, "."
		}
		hroot, err := os.OpenRoot(rootDir)
		if err != nil {
			return fmt.Errorf("copy to %s: %w", dst, err)
		}
		defer hroot.Close()
		err = pipeTar(func(w io.Writer) (err error) { n, err = cptar.Write(w, croot, csrc, wo); return err },
			func(r io.Reader) error { return cptar.Extract(r, hroot, rel, cptar.Options{}) })
		if err == nil && o.Progress {
			fmt.Fprintf(o.Stderr, "Successfully copied %s to %s\n", cptar.Size(n), dst)
		}
		return err
	}
	xo := cptar.Options{Owners: cptar.OwnRoot}
	if o.Archive {
		xo.Owners = cptar.OwnArchive
	}
	cdst, err := cptar.Resolve(croot, cpath, true)
	if err != nil {
		return err
	}
	if src == "-" {
		xo.Into = true
		cr := &countReader{r: o.Stdin}
		if err := cptar.Extract(cr, croot, cdst, xo); err != nil {
			return err
		}
		if o.Progress {
			fmt.Fprintf(o.Stderr, "Successfully copied %s to %s\n", cptar.Size(cr.n), dst)
		}
		return nil
	}
	hsrc, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	wo := cptar.Options{Name: filepath.Base(hsrc)}
	if o.FollowLink {
		if hsrc, err = filepath.EvalSymlinks(hsrc); err != nil {
			return fmt.Errorf("copy %s: %w", src, errors.Unwrap(err))
		}
	}
	if o.Archive {
		wo.IDs = hostIDs()
	}
	hroot, err := os.OpenRoot(filepath.Dir(hsrc))
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer hroot.Close()
	err = pipeTar(func(w io.Writer) (err error) { n, err = cptar.Write(w, hroot, filepath.Base(hsrc), wo); return err },
		func(r io.Reader) error { return cptar.Extract(r, croot, cdst, xo) })
	if err == nil && o.Progress {
		fmt.Fprintf(o.Stderr, "Successfully copied %s to %s\n", cptar.Size(n), dst)
	}
	return err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// hostIDs maps the ids this engine sees (in nook's user namespace) to the host's, from
// /proc/self/uid_map and gid_map: `cp -a` records a host file's owner as the host knows it,
// as the CLI does for a running container (decisions.md, "nook cp").
func hostIDs() func(uid, gid int) (int, int) {
	um, gm := readIDMap("/proc/self/uid_map"), readIDMap("/proc/self/gid_map")
	return func(uid, gid int) (int, int) { return um.toHost(uid), gm.toHost(gid) }
}

type idRange struct{ in, out, n int }

type idRanges []idRange

func readIDMap(p string) idRanges {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var m idRanges
	for _, l := range strings.Split(string(b), "\n") {
		var r idRange
		if _, err := fmt.Sscan(l, &r.in, &r.out, &r.n); err == nil {
			m = append(m, r)
		}
	}
	return m
}

func (m idRanges) toHost(id int) int {
	for _, r := range m {
		if id >= r.in && id-r.in < r.n {
			return r.out + id - r.in
		}
	}
	return id
}

func pipeTar(write func(io.Writer) error, extract func(io.Reader) error) error {
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		werr <- err
	}()
	xerr := extract(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if err := <-werr; err != nil {
		return err
	}
	return xerr
}

// splitCopyArg splits CONTAINER:PATH; a path with a slash before any colon is a host path,
// as in Docker.
func splitCopyArg(s string) (ref, p string, inContainer bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.ContainsRune(s[:i], '/') {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
