package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/bypass"
	"github.com/nook-containers/nook/monitor"
	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/overlay"
	"github.com/nook-containers/nook/slirp"
	"github.com/nook-containers/nook/userns"
)

// Info describes how nook runs containers on this host.
type Info struct {
	Kernel       string
	User         string
	IDMap        IDMapInfo
	Driver       string
	Rootfs       overlay.Choice
	Paths        Paths
	Images       int
	Containers   int
	Network      []string
	NetworkNotes []string
	Cgroups      CgroupInfo
	// MonitorIdle says whether a quiet detached container's monitor waits as nook-idle.
	MonitorIdle string
	// Namespace says whose user and mount namespaces the engine runs in: the pause process's
	// or its own (userns/pause_linux.go).
	Namespace string
}

// CgroupInfo says which cgroup hierarchy the host has and what is delegated to the user.
type CgroupInfo struct {
	Version     string // v2, v1 or hybrid
	Controllers []string
	Note        string
}

// Info gathers the engine's view of the host.
func (e *Engine) Info() Info {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	in := Info{
		Kernel: unix.ByteSliceToString(uts.Release[:]),
		User:   fmt.Sprintf("uid %s, gid %s", os.Getenv("_CONTAINERS_ROOTLESS_UID"), os.Getenv("_CONTAINERS_ROOTLESS_GID")),
		IDMap:  e.IDMap, Driver: e.Driver, Rootfs: e.Rootfs, Paths: e.Paths,
		Network: []string{NetNone, NetHost},
		Cgroups: cgroupInfo(),
	}
	in.Namespace = namespaceInfo()
	def := NetNone
	tun := tunMode()
	if path, err := slirp.Available(); err == nil {
		in.Network = append(in.Network, NetSlirp)
		def = NetSlirp
		in.NetworkNotes = append(in.NetworkNotes, "slirp4netns: "+path+", "+tun)
	} else {
		in.NetworkNotes = append(in.NetworkNotes, "slirp4netns: not usable: "+err.Error())
	}
	if path, err := slirp.PastaAvailable(); err == nil {
		in.Network = append(in.Network, NetPasta)
		in.NetworkNotes = append(in.NetworkNotes, "pasta: "+path+", "+tun)
	} else {
		in.NetworkNotes = append(in.NetworkNotes, "pasta: not usable: "+err.Error())
	}
	if err := netuser.Probe(); err == nil {
		in.Network = append(in.Network, "bridge")
		n, _ := netuser.List(e.Paths.GraphRoot)
		out := "outbound through each member's slirp4netns"
		if def != NetSlirp {
			out = "no outbound traffic: slirp4netns is not usable"
		}
		in.NetworkNotes = append(in.NetworkNotes, fmt.Sprintf("bridge: user networks (nook network create NAME, --network NAME): %d defined; %s", len(n), out))
	} else {
		in.NetworkNotes = append(in.NetworkNotes, "bridge (user networks): not usable: "+err.Error())
	}
	in.NetworkNotes = append(in.NetworkNotes, "default: "+def)
	if def == NetSlirp {
		in.NetworkNotes = append(in.NetworkNotes, "published ports (slirp4netns, user networks): nook's forwarder (port_handler=builtin); the container sees connections from 127.0.0.1")
	}
	if err := bypass.Supported(); err == nil {
		in.NetworkNotes = append(in.NetworkNotes, "bypass4netns (slirp4netns:bypass4netns=true): supported (seccomp user notification with ADDFD)")
	} else {
		in.NetworkNotes = append(in.NetworkNotes, "bypass4netns (slirp4netns:bypass4netns=true): not usable: "+err.Error())
	}
	start := unprivilegedPortStart()
	if rt, err := userns.RuntimePath(); err == nil && monitor.IdleAvailable(rt) {
		in.MonitorIdle = "yes: a quiet detached container's monitor waits as " + filepath.Join(filepath.Dir(rt), monitor.IdleProgram)
	} else {
		in.MonitorIdle = "no: " + monitor.IdleProgram + " is not next to nook-runtime (or NOOK_MONITOR_IDLE=0): monitors stay in Go"
	}
	in.NetworkNotes = append(in.NetworkNotes, fmt.Sprintf("published ports: host ports from %d (sysctl net.ipv4.ip_unprivileged_port_start=%d)", start, start))
	if imgs, err := e.Store.Images(); err == nil {
		in.Images = len(imgs)
	}
	if cs, err := e.Store.Containers(); err == nil {
		in.Containers = len(cs)
	}
	return in
}

// tunMode describes /dev/net/tun, which slirp4netns and pasta open as the user.
func tunMode() string {
	var st unix.Stat_t
	if err := unix.Stat("/dev/net/tun", &st); err != nil {
		return "/dev/net/tun: " + err.Error()
	}
	return fmt.Sprintf("/dev/net/tun mode %04o, opened", st.Mode&0o7777)
}

func cgroupInfo() CgroupInfo {
	d := hostCgroups()
	return CgroupInfo{Version: d.Version, Controllers: d.Controllers, Note: d.Reason}
}

// namespaceInfo says whose user and mount namespaces this engine runs in, and why.
func namespaceInfo() string {
	linger, err := userns.PauseLinger()
	switch {
	case userns.JoinedPause() > 0:
		return fmt.Sprintf("pause process %d (it exits %s after its last user: %s)", userns.JoinedPause(), linger, userns.PauseLingerEnv)
	case userns.JoinedNetwork() != "":
		return "user network " + userns.JoinedNetwork() + "'s keeper's"
	case err != nil:
		return "its own (" + err.Error() + ")"
	case linger == 0:
		return "its own (" + userns.PauseLingerEnv + "=0: no pause process)"
	}
	return "its own (no pause process: fuse-overlayfs, the first command of a run root, or joining failed)"
}
