package engine

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/overlay"
	"github.com/nook-containers/nook/slirp"
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
	def := NetNone
	if _, err := slirp.Available(); err == nil {
		in.Network = append(in.Network, NetSlirp)
		def = NetSlirp
	} else {
		in.NetworkNotes = append(in.NetworkNotes, "slirp4netns: not usable: "+err.Error())
	}
	if _, err := slirp.PastaAvailable(); err == nil {
		in.Network = append(in.Network, NetPasta)
	} else {
		in.NetworkNotes = append(in.NetworkNotes, "pasta: not usable: "+err.Error())
	}
	in.NetworkNotes = append(in.NetworkNotes, "default: "+def)
	if def == NetSlirp {
		in.NetworkNotes = append(in.NetworkNotes, "published ports (slirp4netns): nook's forwarder (port_handler=builtin); the container sees connections from 127.0.0.1")
	}
	if imgs, err := e.Store.Images(); err == nil {
		in.Images = len(imgs)
	}
	if cs, err := e.Store.Containers(); err == nil {
		in.Containers = len(cs)
	}
	return in
}

func cgroupInfo() CgroupInfo {
	d := hostCgroups()
	return CgroupInfo{Version: d.Version, Controllers: d.Controllers, Note: d.Reason}
}
