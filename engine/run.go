package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/runtime"
	"github.com/nook-containers/nook/spec"
)

// RunOptions are `nook run`'s settings.
type RunOptions struct {
	Image       string
	Args        []string // the command after the image name, if any
	Entrypoint  *string  // --entrypoint, when given ("" clears the image's)
	Env         []string
	EnvFiles    []string
	User        string
	Workdir     string
	Hostname    string
	Name        string
	Network     string // none, host
	Remove      bool
	Interactive bool
	TTY         bool
	Stdin       *os.File
	Stdout      *os.File
	Stderr      *os.File
}

// ExitError carries a status for the CLI to exit with, after printing the message (if any).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Run creates a container from an image, runs it in the foreground and returns its exit status.
func (e *Engine) Run(ctx context.Context, o RunOptions) (int, error) {
	img, err := e.FindImage(o.Image)
	if err != nil {
		return 125, err
	}
	cfg, err := e.ImageConfig(ctx, img)
	if err != nil {
		return 125, err
	}
	args := commandLine(cfg.Config, o.Entrypoint, o.Args)
	if len(args) == 0 {
		return 125, fmt.Errorf("no command specified: give one after the image name (%s has no Entrypoint or Cmd)", o.Image)
	}
	switch o.Network {
	case "", "none", "host":
	default:
		return 125, fmt.Errorf("network %q is not supported: use none or host", o.Network)
	}
	env, err := mergeEnv(cfg.Config.Env, o.EnvFiles, o.Env)
	if err != nil {
		return 125, err
	}
	name := o.Name
	if name == "" {
		name = e.randomName()
	} else if !validName.MatchString(name) {
		return 125, fmt.Errorf("invalid container name %q: use letters, digits, _ . and -", name)
	}
	rec := Record{Name: name, Image: o.Image, Command: args, Created: time.Now().UTC(), State: StateCreated, AutoRemove: o.Remove}
	meta, _ := json.Marshal(&rec)
	ctr, err := e.Store.CreateContainer("", []string{name}, img.ID, "", string(meta), nil)
	if err != nil {
		if strings.Contains(err.Error(), "name is already in use") {
			return 125, fmt.Errorf("the container name %q is already in use: remove that container (nook rm %s) or choose another name", name, name)
		}
		return 125, fmt.Errorf("create container: %w", err)
	}
	id := ctr.ID
	cleanup := func() {
		_, _ = e.Store.Unmount(id, true)
		if o.Remove {
			_ = e.Store.DeleteContainer(id)
		}
	}
	code, err := e.runContainer(ctx, id, &rec, cfg, args, env, o)
	if err != nil && rec.State == StateCreated {
		// Never started: nothing of it is worth keeping.
		o.Remove = true
	}
	cleanup()
	return code, err
}

func (e *Engine) runContainer(ctx context.Context, id string, rec *Record, cfg *imgspecv1.Image, args, env []string, o RunOptions) (int, error) {
	rootfs, err := e.Store.Mount(id, "")
	if err != nil {
		return 125, fmt.Errorf("mount container rootfs (%s): %w", e.Rootfs.Mode, err)
	}
	rundir, err := e.Store.ContainerRunDirectory(id)
	if err != nil {
		return 125, err
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = id[:12]
		if o.Network == "host" {
			hostname, _ = os.Hostname()
		}
	}
	files, err := writeEtcFiles(rundir, hostname, o.Network)
	if err != nil {
		return 125, err
	}
	env = setEnv(env, "HOSTNAME="+hostname)
	if o.TTY {
		env = setEnv(env, "TERM=xterm")
	}
	user := o.User
	if user == "" {
		user = cfg.Config.User
	}
	cwd := o.Workdir
	if cwd == "" {
		cwd = cfg.Config.WorkingDir
	}
	netns := "none"
	if o.Network == "host" {
		netns = "host"
	}
	s, err := spec.New(spec.Options{
		Args: args, Env: env, Cwd: cwd, User: user, Rootfs: rootfs, Hostname: hostname,
		Terminal: o.TTY, NetworkNS: netns,
		HostsFile: files.hosts, HostnameFile: files.hostname, ResolvConf: files.resolv,
	})
	if err != nil {
		return 125, err
	}
	if o.TTY {
		// The init sizes the terminal before the payload starts, so the first `stty size` is right.
		for _, f := range []*os.File{o.Stdin, o.Stdout} {
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
				s.Process.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
				break
			}
		}
	}
	config := filepath.Join(rundir, "config.json")
	b, err := json.Marshal(s)
	if err != nil {
		return 125, err
	}
	if err := os.WriteFile(config, b, 0o600); err != nil {
		return 125, fmt.Errorf("write container config: %w", err)
	}

	engineEnd, initEnd, err := runtime.SocketPair()
	if err != nil {
		return 125, err
	}
	defer engineEnd.Close()
	cmd := exec.Command(e.runtime, "init", config)
	cmd.Args[0] = "nook-init"
	cmd.Env = []string{}
	cmd.ExtraFiles = []*os.File{initEnd}
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if o.Interactive && !o.TTY {
		cmd.Stdin = o.Stdin
	}
	flags := unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP
	if o.Network != "host" {
		flags |= unix.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: uintptr(flags), Pdeathsig: syscall.SIGKILL}

	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		initEnd.Close()
		return 125, fmt.Errorf("start container init: %w", err)
	}
	initEnd.Close()
	pid := cmd.Process.Pid
	rec.State, rec.Started, rec.Pid = StateRunning, time.Now().UTC(), os.Getpid()
	rec.PidStart, _ = processStart(os.Getpid())
	_ = e.saveRecord(id, rec)

	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()

	var console *consoleProxy
	startErr := func() error {
		if err := runtime.Send(engineEnd, runtime.Message{Type: runtime.MsgGo}, nil); err != nil {
			return fmt.Errorf("start container: %w", err)
		}
		for {
			m, fd, err := runtime.Recv(engineEnd)
			if errors.Is(err, runtime.ErrEOF) {
				return nil
			}
			if err != nil {
				return err
			}
			switch m.Type {
			case runtime.MsgConsole:
				if fd == nil {
					return errors.New("container init sent no terminal")
				}
				console = startConsole(fd, o)
			case runtime.MsgError:
				return &ExitError{Code: m.Code, Err: errors.New(m.Message)}
			}
		}
	}()

	for {
		select {
		case s := <-sigs:
			sig, ok := s.(syscall.Signal)
			if !ok || sig == syscall.SIGCHLD || sig == syscall.SIGURG || sig == syscall.SIGPIPE {
				continue
			}
			if sig == syscall.SIGWINCH {
				console.resize()
				continue
			}
			_ = syscall.Kill(pid, sig)
			continue
		case <-done:
		}
		break
	}
	if console != nil {
		console.finish()
	}
	code := statusOf(cmd.ProcessState, waitErr)
	rec.State, rec.Finished, rec.ExitCode = StateExited, time.Now().UTC(), code
	if !o.Remove {
		_ = e.saveRecord(id, rec)
	}
	if startErr != nil {
		var ee *ExitError
		if errors.As(startErr, &ee) {
			return ee.Code, ee
		}
		return 125, startErr
	}
	return code, nil
}

func statusOf(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 125
	}
	ws := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// commandLine combines Entrypoint and Cmd as Docker does: a command given on the command line
// replaces Cmd; --entrypoint replaces Entrypoint and drops the image's Cmd.
func commandLine(c imgspecv1.ImageConfig, entrypoint *string, args []string) []string {
	ep := c.Entrypoint
	cmd := c.Cmd
	if entrypoint != nil {
		ep = nil
		if *entrypoint != "" {
			ep = []string{*entrypoint}
		}
		cmd = nil
	}
	if len(args) > 0 {
		cmd = args
	}
	return append(append([]string{}, ep...), cmd...)
}

// mergeEnv layers the image's environment, env files and -e flags; a bare "-e NAME" takes the
// value from nook's own environment, as Docker does.
func mergeEnv(image []string, files []string, flags []string) ([]string, error) {
	env := append([]string{}, image...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read env file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			env = setEnvFromUser(env, line)
		}
	}
	for _, kv := range flags {
		env = setEnvFromUser(env, kv)
	}
	return env, nil
}

func setEnvFromUser(env []string, kv string) []string {
	if !strings.Contains(kv, "=") {
		v, ok := os.LookupEnv(kv)
		if !ok {
			return env
		}
		kv += "=" + v
	}
	return setEnv(env, kv)
}

func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

type etcFiles struct{ hosts, hostname, resolv string }

// writeEtcFiles writes the container's /etc/hosts, /etc/hostname and /etc/resolv.conf into its
// run directory; they are bind-mounted over the image's.
func writeEtcFiles(dir, hostname, network string) (etcFiles, error) {
	f := etcFiles{hosts: filepath.Join(dir, "hosts"), hostname: filepath.Join(dir, "hostname"), resolv: filepath.Join(dir, "resolv.conf")}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"
	if network == "host" {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	resolv := "nameserver 10.0.2.3\n"
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		resolv = resolvForContainer(string(b), network == "host")
	}
	for path, content := range map[string]string{f.hosts: hosts, f.hostname: hostname + "\n", f.resolv: resolv} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return f, fmt.Errorf("write %s: %w", filepath.Base(path), err)
		}
	}
	return f, nil
}

// resolvForContainer drops loopback name servers, which are the host's own and unreachable
// from a container's network namespace (Docker does the same).
func resolvForContainer(host string, hostNet bool) string {
	if hostNet {
		return host
	}
	var b strings.Builder
	for _, line := range strings.Split(host, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		if line != "" {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
