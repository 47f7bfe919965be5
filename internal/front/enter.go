package front

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nook-containers/nook/idmap"
	"github.com/nook-containers/nook/internal/paths"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/nsexec"
	"github.com/nook-containers/nook/overlay"
	"github.com/nook-containers/nook/userns"
)

// Enter runs the engine for this command line inside nook's user namespace and returns the
// status to exit with, and the error to print first (nil when the engine printed its own).
// Nothing else happens outside: the engine parses the same arguments again. network is run's
// --network, when it names a user network: then the engine runs in that network's keeper's
// user namespace (decisions.md, "User-defined networks").
func Enter(g Globals, network string) (int, error) {
	p, err := paths.Default(g.Root, g.RunRoot)
	if err != nil {
		return 125, err
	}
	if _, err := overlay.ParseMode(g.RootfsMode); err != nil {
		return 125, err
	}
	timing.Mark("cli resolve")
	plan, err := idmap.Resolve()
	if err != nil {
		return 125, fmt.Errorf("resolve user namespace mapping: %w", err)
	}
	if plan.Warning != "" {
		fmt.Fprintln(os.Stderr, plan.Warning)
	}
	if netuser.IsReserved(network) {
		network = ""
	}
	timing.Mark("cli enter")
	code, ctl, err := enterNS(g, p, network, plan)
	timing.Mark("cli engine done")
	if err != nil {
		return code, err
	}
	if code == 0 && ctl.Host != nil {
		// exec and cp into a running container happen here, on the host (nsexec).
		code, err := nsexec.Run(ctl.Host)
		if err != nil && !nsexec.Quiet(err) {
			return code, err
		}
		return code, nil
	}
	return code, nil
}

// enterNS runs the engine: in a user namespace of its own, or, for a container of a user
// network, in that network's keeper's (started here if it is not running), which it holds until
// the engine has exited. `nook start` learns the network only in the engine, which then asks
// for it (userns.RequestNetwork): the engine runs once more, in the keeper's namespace.
func enterNS(g Globals, p paths.Paths, name string, plan *idmap.Plan) (int, userns.Control, error) {
	for again := false; ; again = true {
		var join *userns.Join
		if name != "" {
			k, err := holdNetwork(p, name, plan)
			if err != nil {
				return 125, userns.Control{}, err
			}
			defer k.Close()
			join = &userns.Join{Pid: k.Pid, Network: name}
		}
		o := userns.Options{Join: join}
		if join == nil {
			o.PauseDir, o.PauseLinger = pauseFor(g, p.RunRoot)
		}
		code, ctl, err := userns.EnterWith(plan, o)
		if err == nil && code == 0 && ctl.Network != "" && !again {
			name = ctl.Network
			continue
		}
		return code, ctl, err
	}
}

// pauseFor says whether this command's engine joins the pause process of its run root
// (userns/pause_linux.go), and for how long the pause outlives its last user: not when
// NOOK_PAUSE_LINGER is 0, and not with fuse-overlayfs, whose mounts are served by processes
// that must end with the engine's mount namespace (decisions.md, "The pause process"). With
// --rootfs-mode auto the engine's probe decides, so the first command of a run root, which
// makes the probe, runs in a namespace of its own.
func pauseFor(g Globals, runRoot string) (string, time.Duration) {
	linger, err := userns.PauseLinger()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nook: %v; running without it\n", err)
		return "", 0
	}
	if linger <= 0 {
		return "", 0
	}
	requested := g.RootfsMode
	if requested == "" {
		requested = os.Getenv("NOOK_ROOTFS_MODE")
	}
	mode, err := overlay.ParseMode(requested)
	if err != nil {
		return "", 0
	}
	switch mode {
	case overlay.ModeKernel, overlay.ModeCopy:
	case overlay.ModeAuto:
		if !overlay.KernelProbed(runRoot) {
			return "", 0
		}
	default:
		return "", 0
	}
	return runRoot, linger
}

func holdNetwork(p paths.Paths, name string, plan *idmap.Plan) (*netuser.Keeper, error) {
	n, err := netuser.Load(p.GraphRoot, name)
	if errors.Is(err, netuser.ErrNotFound) {
		return nil, ErrNetworkNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	rt, err := userns.RuntimePath()
	if err != nil {
		return nil, err
	}
	k, err := netuser.Hold(p.RunRoot, n, rt, plan.Apply)
	if err != nil {
		return nil, err
	}
	userns.KeepChild(k.Pid)
	return k, nil
}

// ErrNetworkNotFound is the error for a --network that names no network.
func ErrNetworkNotFound(name string) error {
	return fmt.Errorf("network %s not found: create it with `nook network create %s`, or use slirp4netns, pasta, none or host", name, name)
}
