package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
	"github.com/nook-containers/nook/idmap"
	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/userns"
)

// userNetworkOf is the user network `nook run --network NAME` puts its container on, or "".
// Only run starts a container from its flags; `nook start` finds out in the engine, which asks
// for the network (userns.RequestNetwork).
func userNetworkOf(cmd *cobra.Command) string {
	if cmd.Name() != "run" {
		return ""
	}
	v := ""
	for _, name := range []string{"network", "net"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			v = f.Value.String()
		}
	}
	if v == "" || netuser.IsReserved(v) {
		return ""
	}
	return v
}

// enterEngineNS runs the engine: in a user namespace of its own, or, for a container of a user
// network, in that network's keeper's (started here if it is not running), which it holds until
// the engine has exited.
func enterEngineNS(cmd *cobra.Command, plan *idmap.Plan) (int, userns.Control, error) {
	name := userNetworkOf(cmd)
	for again := false; ; again = true {
		var join *userns.Join
		if name != "" {
			k, err := holdNetwork(name, plan)
			if err != nil {
				return 125, userns.Control{}, err
			}
			defer k.Close()
			join = &userns.Join{Pid: k.Pid, Network: name}
		}
		code, ctl, err := userns.EnterControlJoin(plan, join)
		if err == nil && code == 0 && ctl.Network != "" && !again {
			name = ctl.Network
			continue
		}
		return code, ctl, err
	}
}

func holdNetwork(name string, plan *idmap.Plan) (*netuser.Keeper, error) {
	p, err := engine.DefaultPaths(g.root, g.runroot)
	if err != nil {
		return nil, err
	}
	n, err := netuser.Load(p.GraphRoot, name)
	if err != nil {
		return nil, engineNetworkError(name, err)
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

func engineNetworkError(name string, err error) error {
	if errorsIsNotFound(err) {
		return &statusError{125, errNetworkNotFound(name)}
	}
	return err
}

func errorsIsNotFound(err error) bool { return errors.Is(err, netuser.ErrNotFound) }

func errNetworkNotFound(name string) error {
	return fmt.Errorf("network %s not found: create it with `nook network create %s`, or use slirp4netns, pasta, none or host", name, name)
}
