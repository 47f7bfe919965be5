package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/monitor"
	"github.com/nook-containers/nook/slirp"
)

// RunOptions are `nook run`'s settings.
type RunOptions struct {
	Image          string
	Args           []string // the command after the image name, if any
	Entrypoint     *string  // --entrypoint, when given ("" clears the image's)
	Env            []string
	EnvFiles       []string
	User           string
	Workdir        string
	Hostname       string
	Name           string
	Network        string   // "" (the default: slirp4netns where it works, else none), none, host, slirp4netns[:OPTIONS]
	NetworkAliases []string // --network-alias: more names on a user network
	Publish        []string // -p: [[IP:][HOST_PORT]:]CONTAINER_PORT[/PROTO]
	PublishAll     bool     // -P: the image's exposed ports, on free host ports
	Remove         bool
	Interactive    bool
	TTY            bool
	Detach         bool     // -d: start it with a monitor and return (lifecycle.go)
	Restart        string   // --restart no|always|unless-stopped|on-failure[:N]
	DetachKeys     []byte   `json:"-"` // -it: the sequence that detaches (monitor.ParseDetachKeys); nil cannot
	Labels         []string // --label KEY[=VALUE], over the image's labels
	Init           bool     // --init: bin/nook-init is PID 1, reaps orphans and passes signals on
	AddHosts       []string `json:",omitempty"` // --add-host HOST:IP (runflags.go)
	DNS            []string `json:",omitempty"` // --dns IP: replaces the name servers
	DNSSearch      []string `json:",omitempty"` // --dns-search DOMAIN ("." for none)
	DNSOptions     []string `json:",omitempty"` // --dns-option OPT
	StopSignal     string   `json:",omitempty"` // --stop-signal, over the image's STOPSIGNAL
	StopTimeout    *int     `json:",omitempty"` // --stop-timeout: stop's grace period without -t
	CIDFile        string   `json:",omitempty"` // --cidfile: the full ID is written there
	Pull           string   `json:",omitempty"` // --pull always|missing|never
	Expose         []string `json:",omitempty"` // --expose PORT[/PROTO]
	GroupAdd       []string `json:",omitempty"` // --group-add GROUP: supplementary groups
	ShmSize        string   `json:",omitempty"` // --shm-size: /dev/shm's size
	Sysctls        []string `json:",omitempty"` // --sysctl KEY=VALUE (namespaced ones only)
	PID            string   `json:",omitempty"` // --pid host|container:ID (nsshare.go)
	IPC            string   `json:",omitempty"` // --ipc private|shareable|host|container:ID
	UTS            string   `json:",omitempty"` // --uts host
	Stdin          *os.File `json:"-"`
	Stdout         *os.File `json:"-"`
	Stderr         *os.File `json:"-"`

	LimitOptions // capabilities, seccomp, mounts, rlimits, cgroup limits (limits.go)

	// Set by nook build for a RUN step's container (build.go): volatile keeps its record and
	// layer off the disk's sync path; started is called (and must return at once) when its init
	// has been made; afterExit, called once it has exited and before it is removed, takes its
	// changes; with removing, a Remove container is removed in the background (removing is
	// done when it is gone), while the build commits the changes.
	volatile  bool
	starting  bool // set by run (not create): the record names this engine as its watcher at once
	started   func()
	afterExit func(id string, code int) error
	removing  *sync.WaitGroup
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
// The engine watches the container itself, with the start path a detached container's monitor
// uses (monitor.StartInit); `nook run -d` is RunDetached (lifecycle.go).
func (e *Engine) Run(ctx context.Context, o RunOptions) (int, error) {
	if o.TTY && o.Interactive {
		// An interactive terminal can be detached from (Ctrl-P Ctrl-Q): a monitor watches it.
		return e.runAttached(ctx, o)
	}
	o.starting = true
	id, rec, cfg, err := e.create(ctx, o)
	timing.Mark("engine created")
	if err != nil {
		return 125, err
	}
	cleanup := func() {
		// Deleting a container unmounts its layer too: one store transaction, not two.
		if o.Remove && o.removing != nil {
			o.removing.Add(1)
			go func() {
				defer o.removing.Done()
				_ = e.Store.DeleteContainer(id)
				timing.Mark("engine removed")
			}()
			return
		}
		if o.Remove {
			_ = e.Store.DeleteContainer(id)
			return
		}
		_, _ = e.Store.Unmount(id, true)
	}
	code, err := e.runContainer(ctx, id, rec, cfg, o)
	if err != nil && rec.State == StateCreated {
		// Never started: nothing of it is worth keeping.
		o.Remove = true
	}
	timing.Mark("engine container done")
	if err == nil && o.afterExit != nil {
		err = o.afterExit(id, code)
	}
	cleanup()
	timing.Mark("engine cleaned up")
	return code, err
}

func (e *Engine) runContainer(ctx context.Context, id string, rec *Record, cfg *imgspecv1.Image, o RunOptions) (int, error) {
	if err := armParentDeath(); err != nil {
		return 125, err
	}
	b, err := e.prepare(id, rec, cfg, []*os.File{o.Stdin, o.Stdout})
	if err != nil {
		return 125, err
	}
	timing.Mark("engine prepared")
	defer b.close()
	defer func() { _ = b.cg.Destroy() }()

	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	// The init and slirp4netns get SIGKILL as parent-death signal, which the kernel sends when
	// the thread that forked them ends: keep this one until they are gone.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	var stdin *os.File
	if o.Interactive && !o.TTY {
		stdin = o.Stdin
	}
	// A kept container's output goes to its log too, as a monitor writes it, for `nook logs`;
	// a --rm one's goes to the user's stdout and stderr directly.
	var log *monitor.Log
	stdout, stderr := o.Stdout, o.Stderr
	tee := &outputTee{}
	defer tee.started() // on an early return: the readers see the end of their pipes
	if !o.Remove {
		if log, err = e.openLog(id); err != nil {
			return 125, err
		}
		defer log.Close()
		if !o.TTY {
			if stdout, err = tee.pipe(o.Stdout, log, "stdout"); err != nil {
				return 125, err
			}
			if stderr, err = tee.pipe(o.Stderr, log, "stderr"); err != nil {
				return 125, err
			}
		}
	}
	// Other nooks signal the container through this engine (stop, kill, rm -f): they cannot
	// signal a payload whose user is not nook's own from their sibling user namespaces.
	sigsrv, err := monitor.ListenSignals(b.rundir)
	if err != nil {
		return 125, err
	}
	defer sigsrv.Close(125)
	var initPid atomic.Int64
	go sigsrv.Serve(func(sig syscall.Signal) {
		if pid := int(initPid.Load()); pid > 0 {
			_ = syscall.Kill(pid, sig)
		}
	})
	saved := make(chan struct{})
	var net *slirp.Network
	state := monitor.State{MonitorPid: os.Getpid()}
	state.MonitorStart = selfStart()
	in, startErr := monitor.StartInit(monitor.InitOptions{
		Runtime: e.runtime, Config: b.config, HostNetwork: b.nw.Mode == NetHost,
		Namespaces: b.ns, Stdin: stdin, Stdout: stdout, Stderr: stderr, Cgroup: b.cgDir,
		BeforeGo: func(pid int) error {
			timing.Mark("engine init cloned")
			initPid.Store(int64(pid))
			if b.nw.slirpConfig() != nil {
				n, err := startSlirp(ctx, e.runtime, pid, b.rundir, b.nw)
				if err != nil {
					return err
				}
				net = n
			}
			rec.State, rec.Started, rec.Pid = StateRunning, time.Now().UTC(), os.Getpid()
			rec.PidStart = state.MonitorStart
			state.Status, state.Pid, state.Started = monitor.StatusRunning, pid, rec.Started
			// The record is written while the init sets the container up, not before it may start.
			running, st := *rec, state
			go func() {
				_ = monitor.WriteState(b.rundir, &st)
				_ = e.saveRecord(id, &running)
				close(saved)
			}()
			if o.started != nil {
				o.started()
			}
			return nil
		},
		Listener: func(f *os.File) error { return net.Listener(f) },
	})
	tee.started() // the init holds the write ends now
	if net != nil {
		defer net.Close() // the network lives as long as the container
	}
	code := 125
	if startErr != nil {
		var se *monitor.StartError
		if errors.As(startErr, &se) {
			code = se.Code
			startErr = &ExitError{Code: se.Code, Err: errors.New(se.Msg)}
		}
	} else {
		var console *consoleProxy
		if in.Console != nil {
			console = startConsole(in.Console, o, log)
		}
		done := make(chan int, 1)
		go func() {
			code := in.Wait()
			initPid.Store(0) // reaped: its pid is no longer the container's
			done <- code
		}()
	wait:
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
				_ = in.Signal(sig)
			case code = <-done:
				break wait
			}
		}
		if console != nil {
			console.finish()
		}
	}
	tee.wait()
	if rec.State != StateRunning {
		return 125, startErr
	}
	<-saved // the "running" record must not land after the "exited" one
	rec.State, rec.Finished, rec.ExitCode = StateExited, time.Now().UTC(), code
	state.Status, state.Finished, state.ExitCode = monitor.StatusExited, rec.Finished, code
	if !o.Remove {
		_ = monitor.WriteState(b.rundir, &state)
		_ = e.saveRecord(id, rec)
	}
	sigsrv.Close(code) // a waiting `nook stop` or `rm -f` goes on once this engine has exited
	if startErr != nil {
		var ee *ExitError
		if errors.As(startErr, &ee) {
			return ee.Code, ee
		}
		return 125, startErr
	}
	return code, nil
}

// parentAtStart is the nook CLI that started this engine, read as early as the package allows.
var parentAtStart = os.Getppid()

// armParentDeath makes the engine die with the nook CLI, and so the container's init and
// slirp4netns with it (their parent-death signal is the engine's death). The CLI sets SIGKILL
// as the shim's parent-death signal, but the kernel clears it when the shim execs the engine,
// which gains capabilities as root of the user namespace (prctl(2), PR_SET_PDEATHSIG).
func armParentDeath() error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set the engine's parent-death signal: %w", err)
	}
	if os.Getppid() != parentAtStart {
		return errors.New("the nook command that started this engine has exited")
	}
	return nil
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
// extraHosts are the --add-host lines, written after the localhost lines as Docker writes them
// (after the host's own lines with --network host); o's --dns flags rewrite resolv.conf.
func writeEtcFiles(dir, hostname, network, extraHosts string, o RunOptions) (etcFiles, error) {
	f := etcFiles{hosts: filepath.Join(dir, "hosts"), hostname: filepath.Join(dir, "hostname"), resolv: filepath.Join(dir, "resolv.conf")}
	self := "127.0.1.1"
	if network == NetSlirp {
		self = slirp.GuestIP
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + extraHosts + self + "\t" + hostname + "\n"
	if network == NetHost {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
			if extraHosts != "" && !strings.HasSuffix(hosts, "\n") {
				hosts += "\n"
			}
			hosts += extraHosts
		}
	}
	resolv := "nameserver " + slirp.DNSIP + "\n"
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		resolv = resolvForContainer(string(b), network)
	}
	resolv = applyDNSFlags(resolv, o.DNS, o.DNSSearch, o.DNSOptions)
	for path, content := range map[string]string{f.hosts: hosts, f.hostname: hostname + "\n", f.resolv: resolv} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return f, fmt.Errorf("write %s: %w", filepath.Base(path), err)
		}
	}
	return f, nil
}

// resolvForContainer drops loopback name servers, which are the host's own and unreachable
// from a container's network namespace (Docker does the same). With slirp4netns the only name
// server is slirp4netns' own, which forwards queries to the host's.
func resolvForContainer(host string, network string) string {
	if network == NetHost {
		return host
	}
	var b strings.Builder
	dns := containerDNS(network)
	if dns != "" {
		b.WriteString("nameserver " + dns + "\n")
	}
	for _, line := range strings.Split(host, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (dns != "" || strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		if line != "" {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
