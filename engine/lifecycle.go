package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/cgroups"
	"github.com/nook-containers/nook/internal/proc"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/monitor"
	nookruntime "github.com/nook-containers/nook/runtime"
	"github.com/nook-containers/nook/spec"
	"github.com/nook-containers/nook/userns"
)

// DefaultStopTimeout is `nook stop`'s grace period before SIGKILL, as Docker's.
const DefaultStopTimeout = 10

// bundle is a container made ready to start: its rootfs mounted in this mount namespace and its
// config.json written.
type bundle struct {
	config, rundir string
	nw             network
	cg             *cgroups.Cgroup
	cgDir          *os.File            // the cgroup's directory, for CLONE_INTO_CGROUP; nil without one
	ns             *monitor.Namespaces // shared or joined namespaces (nsshare.go); nil for none
}

func (b *bundle) close() {
	if b.cgDir != nil {
		b.cgDir.Close()
	}
}

// create makes the container: the store's record and its layer. Nothing is mounted or started.
func (e *Engine) create(ctx context.Context, o RunOptions) (id string, rec *Record, cfg *imgspecv1.Image, err error) {
	// Flags that need no image are checked before anything is pulled or claimed.
	pull, err := checkPull(o.Pull)
	if err != nil {
		return "", nil, nil, err
	}
	if err := checkRunFlags(o); err != nil {
		return "", nil, nil, err
	}
	var img *storage.Image
	if pull == "always" {
		img, err = e.PullAlways(ctx, o.Image, o.Stderr)
	} else {
		img, err = e.FindImage(o.Image)
		if errors.Is(err, ErrImageUnknown) && pull == "never" {
			err = fmt.Errorf("no such image: %s: it is not in the store and --pull never forbids pulling it (nook pull %s)", o.Image, o.Image)
		} else if errors.Is(err, ErrImageUnknown) {
			img, err = e.PullForRun(ctx, o.Image, o.Stderr)
		}
	}
	if err != nil {
		return "", nil, nil, err
	}
	timing.Mark("engine image found")
	cfg, err = e.ImageConfig(ctx, img)
	if err != nil {
		return "", nil, nil, err
	}
	timing.Mark("engine image config")
	// Claimed once the lean engine can no longer hand the command to the full one (lean.go),
	// which would find its own file.
	cid, err := openCIDFile(o.CIDFile)
	if err != nil {
		return "", nil, nil, err
	}
	defer func() {
		if werr := cid.write(id); werr != nil && err == nil {
			err = werr
		}
	}()
	args := commandLine(cfg.Config, o.Entrypoint, o.Args)
	if len(args) == 0 {
		return "", nil, nil, fmt.Errorf("no command specified: give one after the image name (%s has no Entrypoint or Cmd)", o.Image)
	}
	restart, _, err := ParseRestart(o.Restart)
	if err != nil {
		return "", nil, nil, err
	}
	if restart != "no" && o.Remove {
		return "", nil, nil, errors.New("conflicting options: --restart and --rm: a container removed when it exits cannot be restarted")
	}
	toPublish, err := exposedSet(cfg.Config.ExposedPorts, o.Expose, nil) // -P publishes --expose's too
	if err != nil {
		return "", nil, nil, err
	}
	if err := e.checkNamespaceModes(&o); err != nil {
		return "", nil, nil, err
	}
	var nw network
	if ref, ok := strings.CutPrefix(o.Network, NetContainer+":"); ok || o.Network == NetContainer {
		nw, err = e.containerNetwork(ref, o)
	} else {
		nw, err = e.setupNetwork(o.Network, o.NetworkAliases, o.Publish, o.PublishAll, toPublish)
	}
	if err != nil {
		return "", nil, nil, err
	}
	exposed, _ := exposedSet(toPublish, nil, nw.Ports)
	if _, err := parseSysctls(o.Sysctls, nw); err != nil {
		return "", nil, nil, err
	}
	for _, h := range o.AddHosts {
		if _, ip, _ := parseExtraHost(h); ip == HostGateway {
			if _, err := hostGatewayIP(nw); err != nil {
				return "", nil, nil, err
			}
		}
	}
	env, err := mergeEnv(cfg.Config.Env, o.EnvFiles, o.Env)
	if err != nil {
		return "", nil, nil, err
	}
	name := o.Name
	if name == "" {
		name = e.randomName()
	} else if !validName.MatchString(name) {
		return "", nil, nil, fmt.Errorf("invalid container name %q: use letters, digits, _ . and -", name)
	}
	opts := o
	opts.EnvFiles, opts.Env = nil, nil // merged into Env below: start must not read files again
	stopSignal := cfg.Config.StopSignal
	if o.StopSignal != "" {
		stopSignal = o.StopSignal
	}
	rec = &Record{
		Name: name, Image: o.Image, Command: args, Created: time.Now().UTC(), State: StateCreated,
		AutoRemove: o.Remove, Env: env, Options: &opts, Net: &nw, StopSignal: stopSignal,
		Labels: containerLabels(cfg.Config.Labels, o.Labels), ExposedPorts: sortedKeys(exposed),
	}
	if o.starting {
		// A run's engine watches the container from its creation: if it dies before the
		// "running" record is written, the record says who was to start it (applyState).
		rec.Pid, rec.PidStart = os.Getpid(), selfStart()
	}
	meta, _ := json.Marshal(rec)
	// A --rm container is volatile, as Podman makes it, and so is a build step's: its records
	// are not fsync'd and its overlay is mounted with "volatile", so unmounting it does not sync
	// the upper layer to disk (15 ms of a 75 ms start on ext4). It cannot outlive a crash anyway.
	copts := &storage.ContainerOptions{Volatile: o.Remove || o.volatile}
	ctr, err := e.Store.CreateContainer("", []string{name}, img.ID, "", string(meta), copts)
	if err != nil && strings.Contains(err.Error(), "name is already in use") {
		// The name's holder may be a --rm container whose nook was killed: looking it up
		// removes it (Containers), and the name is free again.
		if _, ferr := e.FindContainer(name); errors.Is(ferr, ErrContainerUnknown) {
			ctr, err = e.Store.CreateContainer("", []string{name}, img.ID, "", string(meta), copts)
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "name is already in use") {
			return "", nil, nil, fmt.Errorf("the container name %q is already in use: remove that container (nook rm %s) or choose another name", name, name)
		}
		return "", nil, nil, fmt.Errorf("create container: %w", err)
	}
	return ctr.ID, rec, cfg, nil
}

// checkRunFlags checks the flags of runflags.go that need neither the image nor the network.
func checkRunFlags(o RunOptions) error {
	for _, h := range o.AddHosts {
		if _, _, err := parseExtraHost(h); err != nil {
			return err
		}
	}
	if err := checkDNS(o); err != nil {
		return err
	}
	if err := parseStopOptions(o); err != nil {
		return err
	}
	for _, p := range o.Expose {
		if _, err := parseExpose(p); err != nil {
			return err
		}
	}
	if _, err := parseShmSize(o.ShmSize); err != nil {
		return err
	}
	for _, g := range o.GroupAdd {
		if g == "" {
			return flagError(g, "group-add", "the group is a name or a number")
		}
	}
	return nil
}

// Create is `nook create`: it returns the new container's ID.
func (e *Engine) Create(ctx context.Context, o RunOptions) (string, error) {
	id, _, _, err := e.create(ctx, o)
	return id, err
}

// prepare mounts the container's rootfs (in this engine's mount namespace), writes its /etc
// files and config.json, and creates its cgroup. term, when it is a terminal, sizes the
// container's terminal.
func (e *Engine) prepare(id string, rec *Record, cfg *imgspecv1.Image, term []*os.File) (*bundle, error) {
	o := RunOptions{}
	if rec.Options != nil {
		o = *rec.Options
	}
	nw := network{Mode: NetNone}
	if rec.Net != nil {
		nw = *rec.Net
	}
	rootfs, err := e.Store.Mount(id, "")
	timing.Mark("engine rootfs mounted")
	if err != nil {
		return nil, fmt.Errorf("mount container rootfs (%s): %w", e.Rootfs.Mode, err)
	}
	rundir, err := e.Store.ContainerRunDirectory(id)
	if err != nil {
		return nil, err
	}
	shared, joined, joinedName, err := e.sharedNamespaces(o, nw)
	if err != nil {
		return nil, err
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = id[:12]
		switch {
		case nw.Mode == NetHost || o.UTS == nsHost:
			hostname, _ = os.Hostname()
		case nw.Mode == NetContainer && joinedName != "":
			hostname = joinedName
		}
	}
	extraHosts, err := extraHostLines(o.AddHosts, nw)
	if err != nil {
		return nil, err
	}
	var files etcFiles
	if joined != nil {
		files = *joined // the other container's, as Docker shares them
	} else if files, err = writeEtcFiles(rundir, hostname, nw.Mode, extraHosts, o); err != nil {
		return nil, err
	}
	if err := e.memberOf(&nw, id, rec.Name, hostname, files.hosts, extraHosts); err != nil {
		return nil, err
	}
	env := setEnv(append([]string{}, rec.Env...), "HOSTNAME="+hostname)
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
	netns := "none" // a new network namespace: empty, or slirp4netns adds tap0 to it
	var pidns, ipcns, utsns string
	if shared != nil {
		netns = shared.Network
		if netns == "" {
			netns = "none"
		}
		pidns, ipcns, utsns = shared.PID, shared.IPC, shared.UTS
	}
	so := spec.Options{
		Args: rec.Command, Env: env, Cwd: cwd, User: user, Rootfs: rootfs, Hostname: hostname,
		Terminal: o.TTY, NetworkNS: netns, PidNS: pidns, IpcNS: ipcns, UtsNS: utsns,
		HostsFile: files.hosts, HostnameFile: files.hostname, ResolvConf: files.resolv,
		GroupAdd: o.GroupAdd,
	}
	if so.ShmSize, err = parseShmSize(o.ShmSize); err != nil {
		return nil, err
	}
	if so.Sysctls, err = parseSysctls(o.Sysctls, nw); err != nil {
		return nil, err
	}
	if o.Init {
		if so.Init, err = userns.InitPath(); err != nil {
			return nil, err
		}
	}
	if err := e.applyLimits(&so, o.LimitOptions, id); err != nil {
		return nil, err
	}
	s, err := spec.New(so)
	if err != nil {
		return nil, err
	}
	if nw.Bypass && nw.Mode == NetSlirp {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[nookruntime.BypassAnnotation] = "connect"
		if c := nw.slirpConfig(); c != nil {
			if pub, _ := c.BypassedPorts(); len(pub) > 0 {
				s.Annotations[nookruntime.BypassAnnotation] = "connect,bind" // published TCP ports: bypass/bind_linux.go
			}
		}
	}
	if o.TTY {
		// The init sizes the terminal before the payload starts, so the first `stty size` is right.
		for _, f := range term {
			if f == nil {
				continue
			}
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
				s.Process.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
				break
			}
		}
	}
	config := filepath.Join(rundir, "config.json")
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(config, b, 0o600); err != nil {
		return nil, fmt.Errorf("write container config: %w", err)
	}
	// The init starts in the container's cgroup (CLONE_INTO_CGROUP), where the host delegates one.
	cg, cgDir, err := e.createCgroup(id, s.Linux.Resources)
	if err != nil {
		return nil, err
	}
	return &bundle{config: config, rundir: rundir, nw: nw, cg: cg, cgDir: cgDir, ns: shared}, nil
}

// ParseRestart reads --restart: no, always, unless-stopped, on-failure[:N].
func ParseRestart(s string) (string, int, error) {
	name, max, hasMax := strings.Cut(s, ":")
	switch name {
	case "", "no":
		if hasMax {
			break
		}
		return "no", 0, nil
	case "always", "unless-stopped":
		if hasMax {
			break
		}
		return name, 0, nil
	case "on-failure":
		if !hasMax {
			return name, 0, nil
		}
		n, err := strconv.Atoi(max)
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("invalid restart policy %q: the retry count must be a number of 0 or more", s)
		}
		return name, n, nil
	}
	return "", 0, fmt.Errorf("invalid restart policy %q: use no, always, unless-stopped or on-failure[:N]", s)
}

// startMonitor starts the container's monitor (`nook-runtime monitor`) on a prepared bundle;
// the caller waits for its report (waitStarted). With waitAttach the monitor holds the start
// until a client is attached, so that the client misses none of the container's output.
func (e *Engine) startMonitor(id string, rec *Record, b *bundle, waitAttach bool) (*monitorProc, error) {
	o := RunOptions{}
	if rec.Options != nil {
		o = *rec.Options
	}
	cdir, err := e.Store.ContainerDirectory(id)
	if err != nil {
		return nil, err
	}
	restart, max, _ := ParseRestart(o.Restart)
	mc := monitor.Config{
		ID: id, Runtime: e.runtime, Bundle: b.config, RunDir: b.rundir,
		LogPath:  filepath.Join(cdir, monitor.LogFile),
		Terminal: o.TTY, Stdin: o.Interactive, HostNetwork: b.nw.Mode == NetHost,
		Namespaces: b.ns, Restart: restart, MaxRetries: max, WaitAttach: waitAttach,
		Cleanup: e.cleanupCommand(id),
	}
	mc.Network = b.nw.slirpConfig() // slirp4netns or pasta; nil for none and host
	cb, err := json.Marshal(&mc)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(b.rundir, "monitor.json")
	if err := os.WriteFile(path, cb, 0o600); err != nil {
		return nil, fmt.Errorf("write monitor config: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.runtime, "monitor", path)
	cmd.Args[0] = "nook-monitor"
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{repW}
	if b.cgDir != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, b.cgDir) // fd 4: monitor.CgroupFd
	}
	// Its own session: the user's terminal and its signals are not the monitor's business.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		repW.Close()
		repR.Close()
		return nil, fmt.Errorf("start the container's monitor: %w", err)
	}
	repW.Close()
	return &monitorProc{cmd: cmd, rep: repR}, nil
}

// monitorProc is a monitor this engine started.
type monitorProc struct {
	cmd *exec.Cmd
	rep *os.File
}

// waitStarted waits for the monitor's report: the container runs, or it could not start (then
// the monitor has cleaned up and is reaped).
func (m *monitorProc) waitStarted() error {
	defer m.rep.Close()
	cmd := m.cmd
	var r monitor.Report
	line, err := bufio.NewReader(m.rep).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &r)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return errors.New("the container's monitor ended before the container started")
	}
	if r.Error != "" {
		return &ExitError{Code: r.Code, Err: errors.New(r.Error)}
	}
	return nil
}

// cleanupCommand is what the monitor runs when the container has ended for good: this nook
// binary, already inside the user namespace, with this engine's stores.
func (e *Engine) cleanupCommand(id string) []string {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	return []string{exe, "--root", e.Paths.GraphRoot, "--runroot", e.Paths.RunRoot,
		"--rootfs-mode", string(e.Rootfs.Mode), "container", "cleanup", id}
}

// lockContainer serializes start, cleanup and removal of one container among nooks.
func (e *Engine) lockContainer(id string) (func(), error) { return e.flockContainer(id, unix.LOCK_EX) }

// tryLockContainer is lockContainer that fails at once (EWOULDBLOCK) when the lock is held, by
// another process or by this one.
func (e *Engine) tryLockContainer(id string) (func(), error) {
	return e.flockContainer(id, unix.LOCK_EX|unix.LOCK_NB)
}

func (e *Engine) flockContainer(id string, how int) (func(), error) {
	dir, err := e.Store.ContainerRunDirectory(id)
	if err != nil {
		return nil, err
	}
	return flockFile(filepath.Join(dir, "lock"), how)
}

// lockFile takes an exclusive lock on the file at path, made (with its directory) if missing;
// the returned function releases it.
func lockFile(path string) (func(), error) { return flockFile(path, unix.LOCK_EX) }

func flockFile(path string, how int) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// RunDetached is `nook run -d`: create, start with a monitor, and return the ID.
func (e *Engine) RunDetached(ctx context.Context, o RunOptions) (string, error) {
	if err := armParentDeath(); err != nil {
		return "", err
	}
	o.starting = true
	id, rec, cfg, err := e.create(ctx, o)
	if err != nil {
		return "", err
	}
	if _, err := e.startLocked(id, rec, cfg, nil); err != nil {
		c, ferr := e.FindContainer(id)
		if ferr == nil && c.State == StateCreated {
			_ = e.Store.DeleteContainer(id) // never started: nothing of it is worth keeping
		}
		return "", err
	}
	return id, nil
}

// runAttached is `nook run -it`: the container is started with a monitor, as a detached one,
// and this engine attaches the user's terminal to it until it ends (its status is returned) or
// the user detaches with the detach keys (then the container runs on, and nook exits 0).
func (e *Engine) runAttached(ctx context.Context, o RunOptions) (int, error) {
	if err := armParentDeath(); err != nil {
		return 125, err
	}
	o.starting = true
	id, rec, cfg, err := e.create(ctx, o)
	if err != nil {
		return 125, err
	}
	code, err := e.startLocked(id, rec, cfg, &AttachOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, TTY: true, DetachKeys: o.DetachKeys})
	if errors.Is(err, ErrDetached) {
		return 0, nil
	}
	if err != nil {
		if c, ferr := e.FindContainer(id); ferr == nil && c.State == StateCreated {
			_ = e.Store.DeleteContainer(id) // never started: nothing of it is worth keeping
		}
	}
	return code, err
}

// startLocked prepares and starts a container under its lock. With attach, the monitor holds
// the start until attach's client is connected, and the call returns the container's status.
func (e *Engine) startLocked(id string, rec *Record, cfg *imgspecv1.Image, attach *AttachOptions) (int, error) {
	unlock, err := e.lockContainer(id)
	if err != nil {
		return 125, err
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	var term []*os.File
	if attach != nil {
		term = []*os.File{attach.Stdin, attach.Stdout}
	}
	b, err := e.prepare(id, rec, cfg, term)
	if err != nil {
		_, _ = e.Store.Unmount(id, true)
		return 125, err
	}
	defer b.close()
	timing.Mark("engine prepared")
	mp, err := e.startMonitor(id, rec, b, attach != nil)
	if err == nil && attach == nil {
		// The record says "running" while the monitor starts the container: its write (an
		// fsync'd rewrite of the store's containers.json) overlaps the monitor's and the
		// init's start-up instead of following the report, as a foreground run's does
		// (run.go). Until the monitor's state file exists, this engine is the record's
		// watcher. A start that fails puts the record back before the lock is released.
		saved := e.recordStarted(id, rec, os.Getpid(), selfStart()) == nil
		timing.Mark("engine record saved")
		if err = mp.waitStarted(); err != nil && saved {
			_ = e.saveRecord(id, rec)
		}
	}
	if err != nil {
		if mp != nil {
			// It reported the failure and now cleans up, which needs the lock.
			unlock()
			locked = false
			_ = mp.cmd.Wait()
		}
		var ee *ExitError
		if errors.As(err, &ee) {
			return ee.Code, err
		}
		return 125, err
	}
	// From here the monitor outlives this engine, whatever happens to it.
	userns.Detach()
	if attach == nil {
		timing.Mark("engine monitor reported")
		return 0, nil
	}
	conn, err := dialRetry(b.rundir, 10*time.Second)
	if err != nil {
		_ = mp.cmd.Process.Kill()
		_ = mp.cmd.Wait()
		return 125, err
	}
	defer conn.Close()
	// The monitor starts the container once a client is attached.
	if err := conn.Send(monitor.FrameAttach, nil); err != nil {
		return 125, err
	}
	serr := mp.waitStarted()
	if serr == nil {
		_ = e.recordStarted(id, rec, 0, "")
	}
	unlock()
	locked = false
	if serr != nil {
		_ = mp.cmd.Wait()
		var ee *ExitError
		if errors.As(serr, &ee) {
			return ee.Code, serr
		}
		return 125, serr
	}
	return attachClient(conn, *attach)
}

// recordStarted notes in the record that the container was started: the state file that tells
// whether it still runs is in the run root, and once that is gone (a reboot) the record's
// "running" without a live watcher is reported as exited. pid and pidStart name the process
// that watches it while there is no state file yet (0: none).
func (e *Engine) recordStarted(id string, rec *Record, pid int, pidStart string) error {
	r := *rec
	r.State, r.Started, r.Pid, r.PidStart = StateRunning, time.Now().UTC(), pid, pidStart
	return e.saveRecord(id, &r)
}

// dialRetry connects to a monitor that is starting.
func dialRetry(dir string, timeout time.Duration) (*monitor.Conn, error) {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := monitor.Dial(dir)
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connect to the container's monitor: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Start is `nook start`: it starts a created or exited container with a monitor. With attach,
// it stays attached until the container ends and returns its status.
func (e *Engine) Start(ctx context.Context, ref string, attach *AttachOptions) (string, int, error) {
	c, err := e.FindContainer(ref)
	if err != nil {
		return "", 125, err
	}
	if c.Active() {
		return "", 125, fmt.Errorf("container %s is already running", ref)
	}
	if c.Options == nil {
		return "", 125, fmt.Errorf("container %s was created by an older nook and cannot be started again: remove it and run a new one", ref)
	}
	img, err := e.Store.Image(c.ImageID)
	if err != nil {
		return "", 125, fmt.Errorf("the image of container %s is gone: %w", ref, err)
	}
	cfg, err := e.ImageConfig(ctx, img)
	if err != nil {
		return "", 125, err
	}
	if err := armParentDeath(); err != nil {
		return "", 125, err
	}
	// Under the lock the state is read again: two starts at once start it once.
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return "", 125, err
	}
	c, err = e.FindContainer(c.ID)
	unlock()
	if err != nil {
		return "", 125, err
	}
	if c.Active() {
		return "", 125, fmt.Errorf("container %s is already running", ref)
	}
	rec := c.Record
	if attach != nil {
		attach.TTY = c.Options.TTY
		if !c.Options.Interactive {
			attach.Stdin = nil
		}
	}
	code, err := e.startLocked(c.ID, &rec, cfg, attach)
	return c.ID, code, err
}

// dialMonitor connects to a running container's monitor.
func (e *Engine) dialMonitor(c *Container) (*monitor.Conn, error) {
	dir, err := e.Store.ContainerRunDirectory(c.ID)
	if err != nil {
		return nil, err
	}
	return monitor.Dial(dir)
}

// signalContainer sends sig to a running container through the process that watches it — its
// monitor, or the engine of the foreground `nook run` (monitor.SignalServer) — which is root of
// the container's user namespace: this engine, in a sibling one, can signal the init only when
// its user is nook's own. That direct signal remains for a watcher that serves no socket.
//
// A caller that waits for the container's end (stop, rm -f) claims the cleanup: waitGone then
// runs it in this engine, whose store is open already, instead of the monitor starting another
// engine for it.
func (e *Engine) signalContainer(c *Container, sig syscall.Signal, noRestart, claimCleanup bool) (*monitor.Conn, error) {
	conn, err := e.dialMonitor(c)
	if err == nil {
		if claimCleanup {
			if err := conn.ClaimCleanup(); err != nil {
				conn.Close()
				return nil, err
			}
		}
		if err := conn.Kill(int(sig), noRestart); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	if c.InitPid > 0 {
		if err := syscall.Kill(c.InitPid, sig); err != nil {
			return nil, fmt.Errorf("signal container %s: %w", c.Name, err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("container %s is not running", c.Name)
}

// waitGone waits until the container's watcher (monitor or foreground engine) has ended, or
// until timeout (<0: for ever); it reports whether it ended. When the monitor hands over its
// cleanup (signalContainer claimed it), it runs here.
func (e *Engine) waitGone(c *Container, conn *monitor.Conn, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		if conn != nil {
			conn.WaitExitCleanup(func() {
				_ = e.Cleanup(c.ID)
				timing.Mark("engine cleaned up")
			})
		}
		if st := e.stateOf(c.ID); st != nil {
			proc.WaitGone(st.MonitorPid, st.MonitorStart, -1)
		}
		close(done)
	}()
	if timeout < 0 {
		<-done
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Stop is `nook stop`: the stop signal (--stop-signal, else the image's STOPSIGNAL, else
// SIGTERM), then SIGKILL after timeout seconds: -t's, else the container's --stop-timeout, else
// 10; -1 waits for ever, as Docker's. It returns once the container has ended and been cleaned
// up.
func (e *Engine) Stop(ref string, timeout *int) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	if !c.Active() {
		return nil
	}
	sig := syscall.SIGTERM
	if c.StopSignal != "" {
		if s, err := ParseSignal(c.StopSignal); err == nil {
			sig = s
		}
	}
	wait := DefaultStopTimeout
	switch {
	case timeout != nil:
		wait = *timeout
	case c.Options != nil && c.Options.StopTimeout != nil:
		wait = *c.Options.StopTimeout
	}
	conn, err := e.signalContainer(c, sig, true, true)
	if err != nil {
		return err
	}
	timing.Mark("engine stop signalled")
	if conn != nil {
		defer conn.Close()
	}
	grace := time.Duration(wait) * time.Second
	if wait < 0 {
		grace = -1 // for ever
	}
	if e.waitGone(c, conn, grace) {
		timing.Mark("engine stop gone")
		return nil
	}
	conn2, err := e.signalContainer(c, syscall.SIGKILL, true, true)
	if err != nil {
		return nil // it ended meanwhile
	}
	if conn2 != nil {
		defer conn2.Close()
	}
	e.waitGone(c, conn2, 30*time.Second)
	return nil
}

// Kill is `nook kill`: it sends sig to the container's main process.
func (e *Engine) Kill(ref string, sig syscall.Signal) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	if c.State != StateRunning {
		return fmt.Errorf("container %s is not running", ref)
	}
	if sig != syscall.SIGKILL {
		conn, err := e.signalContainer(c, sig, false, false)
		if conn != nil {
			conn.Close()
		}
		return err
	}
	// SIGKILL cannot be ignored: like Docker's, the kill returns once the container has ended
	// and been cleaned up (here, as stop does), so that a `start` right after it finds it
	// stopped, not still going down.
	conn, err := e.signalContainer(c, sig, true, true)
	if err != nil {
		return err
	}
	if conn != nil {
		defer conn.Close()
	}
	e.waitGone(c, conn, 30*time.Second)
	return nil
}

// Wait is `nook wait`: it waits until the container has ended and returns its exit code.
func (e *Engine) Wait(ref string) (int, error) {
	c, err := e.FindContainer(ref)
	if err != nil {
		return 0, err
	}
	if c.Active() {
		conn, _ := e.dialMonitor(c)
		e.waitGone(c, conn, -1)
		if conn != nil {
			conn.Close()
		}
		if c, err = e.FindContainer(c.ID); err != nil {
			// removed meanwhile (--rm): its status went with it
			return 0, nil
		}
	}
	return c.ExitCode, nil
}

// Cleanup is `nook container cleanup ID`, run by a container's monitor once the container has
// ended for good: the exit goes into the record, the rootfs is unmounted, the cgroup removed,
// and a --rm container removed.
func (e *Engine) Cleanup(id string) error {
	unlock, err := e.lockContainer(id)
	if err != nil {
		return nil // removed meanwhile
	}
	defer unlock()
	sc, err := e.Store.Container(id)
	if err != nil {
		return nil
	}
	var rec Record
	_ = json.Unmarshal([]byte(sc.Metadata), &rec)
	dir, _ := e.Store.ContainerRunDirectory(id)
	if st, _ := monitor.ReadState(dir); st != nil {
		rec.State, rec.ExitCode = StateExited, st.ExitCode
		rec.Started, rec.Finished = st.Started, st.Finished
	}
	if d := e.cgroups(); d.Usable() {
		_ = (&cgroups.Cgroup{Path: cgroups.PathFor(d, id)}).Destroy()
	}
	if rec.AutoRemove {
		return e.Store.DeleteContainer(id)
	}
	timing.Mark("cleanup start")
	_, _ = e.Store.Unmount(id, true)
	timing.Mark("cleanup unmounted")
	defer timing.Mark("cleanup saved")
	return e.saveRecord(id, &rec)
}

// Restart is `nook restart`: stop (timeout as Stop's), then start.
func (e *Engine) Restart(ctx context.Context, ref string, timeout *int) error {
	if err := e.Stop(ref, timeout); err != nil {
		return err
	}
	_, _, err := e.Start(ctx, ref, nil)
	return err
}

// Prune is `nook container prune`: it removes every container that is not running and that f
// (until=, label=, label!=; nil: none) lets through.
func (e *Engine) Prune(f *ContainerFilter) ([]string, error) {
	cs, err := e.Containers()
	if err != nil {
		return nil, err
	}
	if cs, err = e.FilterContainers(cs, f); err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, c := range cs {
		if c.Active() {
			continue
		}
		if err := e.RemoveContainer(c.ID, false); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, c.ID)
	}
	return removed, errors.Join(errs...)
}

// signals are the names `kill -s` and STOPSIGNAL accept.
var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "ILL": syscall.SIGILL,
	"TRAP": syscall.SIGTRAP, "ABRT": syscall.SIGABRT, "BUS": syscall.SIGBUS, "FPE": syscall.SIGFPE,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "SEGV": syscall.SIGSEGV, "USR2": syscall.SIGUSR2,
	"PIPE": syscall.SIGPIPE, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM, "STKFLT": syscall.SIGSTKFLT,
	"CHLD": syscall.SIGCHLD, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP,
	"TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG, "XCPU": syscall.SIGXCPU,
	"XFSZ": syscall.SIGXFSZ, "VTALRM": syscall.SIGVTALRM, "PROF": syscall.SIGPROF, "WINCH": syscall.SIGWINCH,
	"IO": syscall.SIGIO, "PWR": syscall.SIGPWR, "SYS": syscall.SIGSYS,
}

// ParseSignal reads a signal as a number, a name, or a name with SIG.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signals[name]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q: use a number or a name such as TERM or SIGKILL", s)
}
