package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/runtime"
)

// Options is what the user asked for, already merged with the image's
// config by the caller.
type Options struct {
	Args     []string // the command; Args[0] is looked up in PATH in the container
	Env      []string // KEY=VALUE; PATH, HOME, HOSTNAME and TERM get defaults when missing
	Cwd      string   // absolute; default "/"
	User     string   // "", "uid", "uid:gid", "name", "name:group"
	Rootfs   string   // the mounted root filesystem, on the host
	Hostname string   // the caller passes the container's short ID by default
	Terminal bool

	// NetworkNS is "none" (or "": a new, empty network namespace), "host"
	// (no network namespace) or the absolute path of one to join.
	NetworkNS string
	// PidNS, IpcNS and UtsNS are "" (a new namespace), "host" (the host's: no namespace of
	// its own) or the absolute path of one to join (--pid, --ipc container:NAME). With the
	// host's PID namespace /proc is the host's, bind-mounted: a user namespace may mount proc
	// only for a PID namespace it owns. With the host's IPC namespace /dev/shm and /dev/mqueue
	// are the host's. With the host's UTS namespace the hostname is not set.
	PidNS, IpcNS, UtsNS string

	// Host files bind-mounted onto /etc/hosts, /etc/hostname and
	// /etc/resolv.conf (read-only when ReadOnly, as Docker). "" skips one.
	HostsFile, HostnameFile, ResolvConf string

	CapAdd, CapDrop []string // "NET_ADMIN", "CAP_NET_ADMIN" or "ALL"
	Privileged      bool     // every capability, nothing masked, /sys writable, no seccomp
	ReadOnly        bool     // a read-only root filesystem

	// Rlimits replace the defaults of the same type (RLIMIT_NOFILE's).
	Rlimits []specs.POSIXRlimit
	// Mounts are the user's (-v, --mount, --tmpfs), mounted after the
	// defaults, parents before children.
	Mounts []specs.Mount
	// Seccomp is "" for Docker's default profile, "unconfined" for none,
	// or the JSON text of a profile (Docker's format or the OCI one).
	Seccomp string
	// NoNewPrivileges false lets setuid programs gain privileges; nil
	// means true, nook's default.
	NoNewPrivileges *bool
	// Resources are the cgroup limits, for the engine to apply.
	Resources *specs.LinuxResources
	// Init is the host path of bin/nook-init for --init: it is bind-mounted at InitPath and
	// runs Args as its child. "" runs Args as the container's PID 1.
	Init string
	// GroupAdd are more supplementary groups (--group-add): names of the
	// rootfs's /etc/group, or numbers.
	GroupAdd []string
	// ShmSize is /dev/shm's size in bytes; 0 is Docker's 64 MiB.
	ShmSize int64
	// Sysctls are written by the init in the container's namespaces; the
	// caller allows only namespaced ones.
	Sysctls map[string]string
}

// InitPath is where --init's program is in the container: on nook's own /dev tmpfs, so that
// nothing is added to the image's files (Docker's /sbin/docker-init is).
const InitPath = "/dev/init"

// DefaultPath is PATH when neither the image nor the user sets it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// MaxNofile caps the container's soft RLIMIT_NOFILE, as Docker and Podman.
const MaxNofile = 1048576

// Docker's masked and read-only paths, as the project contract states them.
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
	}
	DefaultReadonlyPaths = []string{
		"/proc/asound",
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// devices are the host device nodes bind-mounted into the container's /dev:
// a user namespace cannot mknod, so runc and Podman do the same rootless.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// New builds the OCI runtime spec of a rootless container. The user
// namespace is created by the caller, so it is not listed; cgroup limits
// and seccomp are left to their own packages.
func New(o Options) (*specs.Spec, error) {
	if len(o.Args) == 0 || o.Args[0] == "" {
		return nil, errors.New("no command specified")
	}
	if o.Rootfs == "" {
		return nil, errors.New("no root filesystem")
	}
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("the working directory %q is invalid, it needs to be an absolute path", o.Cwd)
	}

	g, err := generate.New("linux")
	if err != nil {
		return nil, err
	}
	g.HostSpecific = false
	g.SetRootPath(o.Rootfs)
	g.SetRootReadonly(o.ReadOnly)
	g.SetHostname(o.Hostname)
	if o.Init != "" {
		g.SetProcessArgs(append([]string{InitPath, "--"}, o.Args...))
	} else {
		g.SetProcessArgs(o.Args)
	}
	g.SetProcessCwd(filepath.Clean(cwd))
	g.SetProcessTerminal(o.Terminal)
	g.SetProcessNoNewPrivileges(o.NoNewPrivileges == nil || *o.NoNewPrivileges)

	uid, gid, groups, home, err := ResolveUser(o.Rootfs, o.User)
	if err != nil {
		return nil, err
	}
	g.SetProcessUID(uid)
	g.SetProcessGID(gid)
	g.ClearProcessAdditionalGids()
	more, err := ResolveGroups(o.Rootfs, o.GroupAdd)
	if err != nil {
		return nil, err
	}
	for _, id := range append(groups, more...) {
		g.AddProcessAdditionalGid(id) // adds each only once
	}
	g.Config.Process.Env = buildEnv(o, home)

	caps, err := capabilities(o)
	if err != nil {
		return nil, err
	}
	g.Config.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: slices.Clone(caps),
		Permitted: slices.Clone(caps),
		// Inheritable and ambient stay empty, as Docker since 20.10.14
		// (CVE-2022-24769).
	}

	g.ClearProcessRlimits()
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		return nil, fmt.Errorf("getrlimit RLIMIT_NOFILE: %w", err)
	}
	hard, soft := nofileLimits(nofile.Max)
	g.AddProcessRlimits("RLIMIT_NOFILE", hard, soft)
	for _, r := range o.Rlimits {
		g.AddProcessRlimits(r.Type, r.Hard, r.Soft) // replaces one of the same type
	}

	g.ClearLinuxNamespaces()
	if err := g.AddOrReplaceLinuxNamespace("mount", ""); err != nil {
		return nil, err
	}
	for _, ns := range []struct{ kind, where string }{{"pid", o.PidNS}, {"uts", o.UtsNS}, {"ipc", o.IpcNS}} {
		switch {
		case ns.where == "host":
			continue
		case ns.where != "" && !filepath.IsAbs(ns.where):
			return nil, fmt.Errorf("%s namespace %q: use host or the absolute path of a namespace", ns.kind, ns.where)
		}
		if err := g.AddOrReplaceLinuxNamespace(ns.kind, ns.where); err != nil {
			return nil, err
		}
	}
	if o.UtsNS == "host" {
		g.SetHostname("") // the host's name: a user namespace cannot set it
	}
	hostNet := false
	switch o.NetworkNS {
	case "", "none":
		err = g.AddOrReplaceLinuxNamespace("network", "")
	case "host":
		hostNet = true
	default:
		if !filepath.IsAbs(o.NetworkNS) {
			return nil, fmt.Errorf("network %q: use none, host or the absolute path of a network namespace", o.NetworkNS)
		}
		err = g.AddOrReplaceLinuxNamespace("network", o.NetworkNS)
	}
	if err != nil {
		return nil, err
	}
	if err := g.AddOrReplaceLinuxNamespace("cgroup", ""); err != nil {
		return nil, err
	}

	g.ClearMounts()
	for _, m := range mounts(o, hostNet) {
		g.AddMount(m)
	}
	for _, m := range userMounts(o.Mounts) {
		g.AddMount(m)
	}

	g.Config.Linux.Resources = o.Resources
	if len(o.Sysctls) > 0 {
		g.Config.Linux.Sysctl = o.Sysctls
	}
	g.Config.Linux.Seccomp, err = seccompProfile(o, g.Config)
	if err != nil {
		return nil, err
	}
	g.Config.Linux.MaskedPaths = nil
	g.Config.Linux.ReadonlyPaths = nil
	if !o.Privileged {
		g.Config.Linux.MaskedPaths = slices.Clone(DefaultMaskedPaths)
		g.Config.Linux.ReadonlyPaths = slices.Clone(DefaultReadonlyPaths)
	}
	return g.Config, nil
}

// nofileLimits keeps the host's hard RLIMIT_NOFILE (it can't be raised
// without CAP_SYS_RESOURCE on the host) and sets the soft one to it,
// capped at MaxNofile, as Docker and Podman rootless.
func nofileLimits(hostHard uint64) (hard, soft uint64) {
	return hostHard, min(hostHard, MaxNofile)
}

// buildEnv is Docker's: PATH, HOSTNAME and TERM defaults, the caller's
// variables over them, HOME from passwd when still missing.
func buildEnv(o Options, home string) []string {
	env := []string{"PATH=" + DefaultPath}
	if o.Hostname != "" {
		env = append(env, "HOSTNAME="+o.Hostname)
	}
	if o.Terminal {
		env = append(env, "TERM=xterm")
	}
	for _, kv := range o.Env {
		key, _, _ := strings.Cut(kv, "=")
		env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
		env = append(env, kv)
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		env = append(env, "HOME="+home)
	}
	return env
}

// capabilities is Docker's default set with CapAdd and CapDrop applied,
// or everything when privileged.
func capabilities(o Options) ([]string, error) {
	if o.Privileged {
		return runtime.AllCapabilities(), nil
	}
	norm := func(names []string) (list []string, all bool, err error) {
		for _, n := range names {
			if strings.EqualFold(n, "ALL") {
				all = true
				continue
			}
			c, err := runtime.ParseCapability(n)
			if err != nil {
				return nil, false, err
			}
			list = append(list, runtime.CapabilityName(c))
		}
		return list, all, nil
	}
	add, addAll, err := norm(o.CapAdd)
	if err != nil {
		return nil, fmt.Errorf("--cap-add: %w", err)
	}
	drop, dropAll, err := norm(o.CapDrop)
	if err != nil {
		return nil, fmt.Errorf("--cap-drop: %w", err)
	}
	// Moby's order (oci/caps TweakCapabilities): ALL added keeps all but
	// the drops; ALL dropped keeps only the adds; otherwise the defaults
	// lose the drops, then gain the adds (an add wins over a drop).
	var caps []string
	switch {
	case addAll:
		caps = slices.DeleteFunc(runtime.AllCapabilities(), func(c string) bool { return slices.Contains(drop, c) })
	case dropAll:
		caps = []string{}
	default:
		caps = slices.DeleteFunc(slices.Clone(runtime.DefaultCapabilities), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, c := range add {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}

// mounts is the container's mount list, in mount order.
func mounts(o Options, hostNet bool) []specs.Mount {
	proc := specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}
	if o.PidNS == "host" {
		// proc can be mounted only by the owner of the PID namespace it shows (the host's is
		// the initial user namespace's): the host's, as Podman rootless does.
		proc = specs.Mount{Destination: "/proc", Type: "bind", Source: "/proc", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
	}
	shm := specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", shmSize(o.ShmSize)}}
	mqueue := specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}}
	if o.IpcNS == "host" {
		// The host's IPC namespace belongs to the initial user namespace, which alone may
		// mount mqueue for it; Docker shares the host's /dev/shm too.
		shm = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		mqueue = specs.Mount{Destination: "/dev/mqueue", Type: "bind", Source: "/dev/mqueue", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		if _, err := os.Stat("/dev/mqueue"); err != nil {
			mqueue.Source = "" // the host mounts no mqueue to share
		}
	}
	ms := []specs.Mount{
		proc,
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		// No gid=5: the tty group is not mapped in a single-ID namespace
		// and the kernel refuses an unmapped gid.
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		shm,
	}
	if mqueue.Source != "" {
		ms = append(ms, mqueue)
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if o.Privileged {
		sysOpts = sysOpts[:3]
	}
	if hostNet {
		// sysfs can only be mounted by the network namespace's owner: show
		// the host's, recursively read-only.
		sysOpts = []string{"rbind", "nosuid", "noexec", "nodev", "rro"}
		if o.Privileged {
			sysOpts = sysOpts[:4]
		}
		ms = append(ms, specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: sysOpts})
	} else {
		ms = append(ms, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts})
	}
	for _, d := range devices {
		ms = append(ms, specs.Mount{Destination: d, Type: "bind", Source: d, Options: []string{"bind", "nosuid", "noexec"}})
	}
	if o.Init != "" {
		ms = append(ms, specs.Mount{Destination: InitPath, Type: "bind", Source: o.Init, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	rw := "rw"
	if o.ReadOnly {
		rw = "ro"
	}
	for _, f := range []struct{ src, dst string }{
		{o.HostsFile, "/etc/hosts"},
		{o.HostnameFile, "/etc/hostname"},
		{o.ResolvConf, "/etc/resolv.conf"},
	} {
		if f.src != "" {
			ms = append(ms, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"bind", "nosuid", "nodev", "noexec", rw, "rprivate"}})
		}
	}
	return ms
}

// shmSize is /dev/shm's size option: --shm-size, else Docker's 64 MiB.
func shmSize(n int64) string {
	if n <= 0 {
		return "size=65536k"
	}
	return "size=" + strconv.FormatInt(n, 10)
}
