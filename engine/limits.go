package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/cgroups"
	"github.com/nook-containers/nook/spec"
)

// LimitOptions are `nook run`'s limits and hardening flags.
type LimitOptions struct {
	CapAdd, CapDrop []string
	Privileged      bool
	ReadOnly        bool
	Tmpfs           []string // PATH[:OPTIONS]
	Volumes         []string // -v SRC:DST[:OPTIONS], or DST for an anonymous volume
	Mounts          []string // --mount type=bind|volume|tmpfs,...
	Ulimits         []string // NAME=SOFT[:HARD]
	SecurityOpts    []string // seccomp=PROFILE|unconfined, no-new-privileges[=BOOL]
	Memory          string   // --memory
	MemorySwap      string   // --memory-swap (memory plus swap, -1 unlimited)
	CPUs            string   // --cpus
	PidsLimit       int64    // --pids-limit (0: not set, -1: unlimited)
	DeviceReadBps   []string // PATH:RATE
	DeviceWriteBps  []string // PATH:RATE
}

// applyLimits puts l into so, checking everything that can be checked
// before the container starts; containerID names anonymous volumes' users.
func (e *Engine) applyLimits(so *spec.Options, l LimitOptions, containerID string) error {
	so.CapAdd, so.CapDrop = l.CapAdd, l.CapDrop
	so.Privileged, so.ReadOnly = l.Privileged, l.ReadOnly
	var err error
	if so.Rlimits, err = parseUlimits(l.Ulimits); err != nil {
		return err
	}
	if err := parseSecurityOpts(so, l.SecurityOpts); err != nil {
		return err
	}
	if so.Mounts, err = e.userMounts(l, containerID); err != nil {
		return err
	}
	if so.Resources, err = parseResources(l); err != nil {
		return err
	}
	// A limit the host cannot enforce is an error, never ignored.
	return cgroups.Check(e.cgroups(), so.Resources)
}

// hostCgroups is the host's delegation, looked at once per engine process.
var hostCgroups = sync.OnceValue(cgroups.DetectHost)

func (e *Engine) cgroups() cgroups.Delegation { return hostCgroups() }

// createCgroup gives the container its cgroup where the host delegates
// one; nil, nil where it does not (and no limit was asked: applyLimits
// has refused the others). The caller passes the returned directory to
// clone (CLONE_INTO_CGROUP) and destroys the cgroup when the container
// has exited.
func (e *Engine) createCgroup(id string, r *specs.LinuxResources) (*cgroups.Cgroup, *os.File, error) {
	d := e.cgroups()
	if !d.Usable() || len(d.Controllers) == 0 {
		return nil, nil, nil
	}
	cg, err := cgroups.Create(d, id, r)
	if err != nil {
		if r == nil {
			return nil, nil, nil // only for stats: run without
		}
		return nil, nil, err
	}
	dir, err := os.Open(cg.Path)
	if err != nil {
		_ = cg.Destroy()
		return nil, nil, fmt.Errorf("open cgroup: %w", err)
	}
	return cg, dir, nil
}

// rlimitTypes are --ulimit's names (Docker's) and their OCI types.
var rlimitTypes = map[string]string{
	"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
	"fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
	"msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
	"nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

var rlimitNumbers = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

func parseUlimits(flags []string) ([]specs.POSIXRlimit, error) {
	return parseUlimitsWith(flags, func(typ string) (uint64, error) {
		var r unix.Rlimit
		err := unix.Getrlimit(rlimitNumbers[typ], &r)
		return r.Max, err
	})
}

// parseUlimitsWith reads NAME=SOFT[:HARD] ("unlimited" or -1 for none);
// a hard limit above the current one is refused here with the reason,
// since only CAP_SYS_RESOURCE on the host could raise it.
func parseUlimitsWith(flags []string, currentHard func(typ string) (uint64, error)) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, f := range flags {
		name, val, ok := strings.Cut(f, "=")
		typ := rlimitTypes[strings.ToLower(name)]
		if !ok || typ == "" {
			return nil, fmt.Errorf("invalid --ulimit %q: use NAME=SOFT[:HARD] with NAME one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack", f)
		}
		softS, hardS, hasHard := strings.Cut(val, ":")
		soft, err1 := rlimitValue(softS)
		hard := soft
		var err2 error
		if hasHard {
			hard, err2 = rlimitValue(hardS)
		}
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("invalid --ulimit %q: the limits are numbers, or unlimited", f)
		}
		if soft > hard {
			return nil, fmt.Errorf("invalid --ulimit %q: the soft limit %s is above the hard limit %s", f, rlimitText(soft), rlimitText(hard))
		}
		cur, err := currentHard(typ)
		if err != nil {
			return nil, fmt.Errorf("--ulimit %s: getrlimit %s: %w", name, typ, err)
		}
		if hard > cur {
			return nil, fmt.Errorf("--ulimit %q: the hard limit %s is above nook's own hard limit for %s (%s), and only CAP_SYS_RESOURCE on the host can raise it: ask for at most %s",
				f, rlimitText(hard), name, rlimitText(cur), rlimitText(cur))
		}
		out = append(out, specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard})
	}
	return out, nil
}

func rlimitValue(s string) (uint64, error) {
	if s == "unlimited" || s == "-1" {
		return unix.RLIM_INFINITY, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func rlimitText(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func parseSecurityOpts(so *spec.Options, opts []string) error {
	for _, o := range opts {
		key, val, hasVal := strings.Cut(o, "=")
		if !hasVal {
			key, val, hasVal = strings.Cut(o, ":") // Docker's old syntax
		}
		switch key {
		case "seccomp":
			switch {
			case !hasVal || val == "":
				return fmt.Errorf("invalid --security-opt %q: use seccomp=PROFILE.json or seccomp=unconfined", o)
			case val == spec.SeccompUnconfined:
				so.Seccomp = spec.SeccompUnconfined
			default:
				b, err := os.ReadFile(val)
				if err != nil {
					return fmt.Errorf("--security-opt seccomp: read the profile: %w", err)
				}
				so.Seccomp = string(b)
			}
		case "no-new-privileges":
			v := true
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					return fmt.Errorf("invalid --security-opt %q: no-new-privileges takes true or false", o)
				}
				v = b
			}
			so.NoNewPrivileges = &v
		case "label", "apparmor":
			// nook applies neither SELinux labels nor AppArmor profiles:
			// only the values that ask for none are true.
			if val != "disable" && val != "unconfined" {
				return fmt.Errorf("--security-opt %q: nook does not apply %s profiles (only %s=%s is accepted)", o, key, key, map[string]string{"label": "disable", "apparmor": "unconfined"}[key])
			}
		default:
			return fmt.Errorf("invalid --security-opt %q: use seccomp=PROFILE.json|unconfined or no-new-privileges[=true|false]", o)
		}
	}
	return nil
}

// parseResources turns the cgroup flags into OCI resources; nil when none
// was given.
func parseResources(l LimitOptions) (*specs.LinuxResources, error) {
	var r specs.LinuxResources
	set := false
	if l.Memory != "" {
		v, err := cgroups.ParseBytes(l.Memory)
		if err != nil {
			return nil, fmt.Errorf("--memory: %w", err)
		}
		if v > 0 && v < 6<<20 {
			return nil, errors.New("--memory: the minimum is 6m, as Docker's")
		}
		r.Memory, set = &specs.LinuxMemory{Limit: &v}, true
	}
	if l.MemorySwap != "" {
		var v int64 = -1
		if l.MemorySwap != "-1" {
			var err error
			if v, err = cgroups.ParseBytes(l.MemorySwap); err != nil {
				return nil, fmt.Errorf("--memory-swap: %w", err)
			}
		}
		if r.Memory == nil {
			return nil, errors.New("--memory-swap needs --memory")
		}
		r.Memory.Swap = &v
	}
	if l.CPUs != "" {
		q, p, err := cgroups.ParseCPUs(l.CPUs)
		if err != nil {
			return nil, err
		}
		r.CPU, set = &specs.LinuxCPU{Quota: &q, Period: &p}, true
	}
	if l.PidsLimit != 0 {
		v := l.PidsLimit
		r.Pids, set = &specs.LinuxPids{Limit: &v}, true
	}
	for _, x := range []struct {
		flags []string
		dst   *[]specs.LinuxThrottleDevice
		name  string
	}{{l.DeviceReadBps, new([]specs.LinuxThrottleDevice), "--device-read-bps"}, {l.DeviceWriteBps, new([]specs.LinuxThrottleDevice), "--device-write-bps"}} {
		for _, f := range x.flags {
			dev, rate, ok := strings.Cut(f, ":")
			bps, err := cgroups.ParseBytes(rate)
			if !ok || err != nil {
				return nil, fmt.Errorf("invalid %s %q: use DEVICE_PATH:RATE (e.g. /dev/sda:1mb)", x.name, f)
			}
			var st unix.Stat_t
			if err := unix.Stat(dev, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
				return nil, fmt.Errorf("%s %q: %s is not a block device", x.name, f, dev)
			}
			*x.dst = append(*x.dst, specs.LinuxThrottleDevice{
				LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev))},
				Rate:               uint64(bps)})
		}
		if len(*x.dst) > 0 {
			if r.BlockIO == nil {
				r.BlockIO = &specs.LinuxBlockIO{}
			}
			if x.name == "--device-read-bps" {
				r.BlockIO.ThrottleReadBpsDevice = *x.dst
			} else {
				r.BlockIO.ThrottleWriteBpsDevice = *x.dst
			}
			set = true
		}
	}
	if !set {
		return nil, nil
	}
	return &r, nil
}

// userMounts turns --tmpfs, -v and --mount into OCI mounts.
func (e *Engine) userMounts(l LimitOptions, containerID string) ([]specs.Mount, error) {
	var ms []specs.Mount
	for _, t := range l.Tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		m, err := tmpfsMount(dst, opts)
		if err != nil {
			return nil, fmt.Errorf("--tmpfs %q: %w", t, err)
		}
		ms = append(ms, m)
	}
	for _, v := range l.Volumes {
		m, err := e.volumeFlag(v, containerID)
		if err != nil {
			return nil, fmt.Errorf("-v %q: %w", v, err)
		}
		ms = append(ms, m)
	}
	for _, v := range l.Mounts {
		m, err := e.mountFlag(v, containerID)
		if err != nil {
			return nil, fmt.Errorf("--mount %q: %w", v, err)
		}
		ms = append(ms, m)
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Destination] {
			return nil, fmt.Errorf("%s is mounted twice", m.Destination)
		}
		seen[m.Destination] = true
	}
	return ms, nil
}

func checkDestination(dst string) (string, error) {
	if !filepath.IsAbs(dst) {
		return "", fmt.Errorf("the container path %q must be absolute", dst)
	}
	dst = filepath.Clean(dst)
	if dst == "/" {
		return "", errors.New("cannot mount over the container's root")
	}
	return dst, nil
}

func tmpfsMount(dst, opts string) (specs.Mount, error) {
	dst, err := checkDestination(dst)
	if err != nil {
		return specs.Mount{}, err
	}
	o := []string{"nosuid", "nodev", "noexec"} // Docker's defaults for --tmpfs
	if opts != "" {
		o = append(o, strings.Split(opts, ",")...)
	}
	return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: o}, nil
}

// bindMount is a bind mount of a host path; the target is resolved inside
// the container's root by the init (overlay.SetupRootfs), never on the host.
func bindMount(src, dst string, readonly bool) (specs.Mount, error) {
	dst, err := checkDestination(dst)
	if err != nil {
		return specs.Mount{}, err
	}
	if _, err := os.Stat(src); err != nil {
		return specs.Mount{}, fmt.Errorf("bind source path: %w", err)
	}
	rw := "rw"
	if readonly {
		rw = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", rw, "rprivate"}}, nil
}

// volumeFlag reads -v: /host:/ctr[:ro|rw|z|Z], name:/ctr[:...], or /ctr
// (an anonymous volume).
func (e *Engine) volumeFlag(v, containerID string) (specs.Mount, error) {
	parts := strings.Split(v, ":")
	var src, dst, opts string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, opts = parts[0], parts[1], parts[2]
	default:
		return specs.Mount{}, errors.New("use SOURCE:DESTINATION[:OPTIONS]")
	}
	readonly := false
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "", "rw", "z", "Z": // z and Z relabel for SELinux, which nook does not use
		case "ro":
			readonly = true
		default:
			return specs.Mount{}, fmt.Errorf("unknown option %q: use ro, rw, z or Z", o)
		}
	}
	if src == "" || !filepath.IsAbs(src) && !strings.HasPrefix(src, ".") {
		vol, err := e.volumeFor(src, containerID)
		if err != nil {
			return specs.Mount{}, err
		}
		src = vol.Mountpoint
	}
	return bindMount(src, dst, readonly)
}

// mountFlag reads --mount type=bind|volume|tmpfs,source=...,target=...[,readonly].
func (e *Engine) mountFlag(v, containerID string) (specs.Mount, error) {
	kv := map[string]string{}
	readonly := false
	for _, f := range strings.Split(v, ",") {
		k, val, has := strings.Cut(f, "=")
		switch k {
		case "ro", "readonly":
			b := true
			if has {
				var err error
				if b, err = strconv.ParseBool(val); err != nil {
					return specs.Mount{}, fmt.Errorf("%s takes true or false", k)
				}
			}
			readonly = b
		case "type", "source", "src", "target", "destination", "dst", "tmpfs-size", "tmpfs-mode", "bind-propagation", "volume-nocopy", "consistency":
			kv[k] = val
		default:
			return specs.Mount{}, fmt.Errorf("unknown key %q", k)
		}
	}
	src := kv["source"] + kv["src"]
	dst := kv["target"] + kv["destination"] + kv["dst"]
	if dst == "" {
		return specs.Mount{}, errors.New("target is required")
	}
	switch kv["type"] {
	case "bind":
		if !filepath.IsAbs(src) {
			return specs.Mount{}, errors.New("a bind mount needs an absolute source")
		}
		return bindMount(src, dst, readonly)
	case "volume", "":
		vol, err := e.volumeFor(src, containerID)
		if err != nil {
			return specs.Mount{}, err
		}
		return bindMount(vol.Mountpoint, dst, readonly)
	case "tmpfs":
		var opts []string
		if s := kv["tmpfs-size"]; s != "" {
			b, err := cgroups.ParseBytes(s)
			if err != nil {
				return specs.Mount{}, err
			}
			opts = append(opts, "size="+strconv.FormatInt(b, 10))
		}
		if m := kv["tmpfs-mode"]; m != "" {
			opts = append(opts, "mode="+m)
		}
		if readonly {
			opts = append(opts, "ro")
		}
		return tmpfsMount(dst, strings.Join(opts, ","))
	}
	return specs.Mount{}, fmt.Errorf("type %q: use bind, volume or tmpfs", kv["type"])
}
