package main

import (
	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/netuser"
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
