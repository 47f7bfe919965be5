package main

import (
	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
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

// rerunInNetwork asks the CLI to run this command again in a user network's keeper's user
// namespace when starting refs needs it (userns.RequestNetwork); done says the request was
// made (or failed) and this engine has nothing more to do.
func rerunInNetwork(e *engine.Engine, refs []string) (done bool, err error) {
	need, err := e.UserNetworkFor(refs)
	if err != nil {
		return true, err
	}
	if need == "" {
		return false, nil
	}
	return true, userns.RequestNetwork(need)
}
