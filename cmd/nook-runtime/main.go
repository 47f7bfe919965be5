// Command nook-runtime is nook's small helper binary. It is kept lean (standard library,
// x/sys and the OCI spec types only) because it runs on the start path of every container:
//
//	nook-runtime shim ARGS...   enter the user namespace made by nook and exec the engine
//	nook-runtime init CONFIG    become the container: rootfs, security, exec the payload
//	nook-runtime monitor CONFIG watch a detached container (monitor.Run)
//	nook-runtime monitor-resume CONFIG HANDOFF SIGNALS
//	                            the same monitor back from nook-idle (monitor.Resume)
//	nook-runtime exec-init      in a running container's namespaces: security, exec (nook exec)
//	nook-runtime cp-in [-a] [-d] PATH
//	                            in a running container: extract a tar from stdin (nook cp);
//	                            -a keeps its owners, -d: PATH must be a directory (cp -)
//	nook-runtime cp-out [-L] PATH
//	                            in a running container: write PATH as a tar to stdout
//	nook-runtime netns-keeper DIR ID SUBNET GATEWAY
//	                            hold a user network's bridge while it has members (netuser)
//	nook-runtime bypass4netns CONFIG
//	                            connect a container's TCP sockets in the host's network
//	                            namespace (bypass), for as long as the container lives
//
// It is not meant to be run by hand.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/nook-containers/nook/bypass"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/monitor"
	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/userns"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "nook-runtime: this helper is run by nook, not by hand")
		os.Exit(125)
	}
	timing.Mark("runtime " + os.Args[1])
	switch os.Args[1] {
	case "shim":
		err := userns.Shim(os.Args[2:])
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(125)
	case "init":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "nook-runtime: usage: nook-runtime init CONFIG")
			os.Exit(125)
		}
		os.Exit(containerInit(os.Args[2]))
	case "monitor":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "nook-runtime: usage: nook-runtime monitor CONFIG")
			os.Exit(125)
		}
		os.Exit(monitor.Run(os.Args[2]))
	case "monitor-resume":
		if len(os.Args) != 5 {
			fmt.Fprintln(os.Stderr, "nook-runtime: usage: nook-runtime monitor-resume CONFIG HANDOFF SIGNALS (run by nook-idle)")
			os.Exit(125)
		}
		os.Exit(monitor.Resume(os.Args[2], os.Args[3], os.Args[4]))
	case "netns-keeper":
		os.Exit(netuser.KeeperMain(os.Args[2:]))
	case "netns-keeper-run":
		os.Exit(netuser.KeeperRun(os.Args[2:]))
	case "bypass4netns":
		os.Exit(bypass.Main(os.Args[2:]))
	case "exec-init":
		os.Exit(execInit())
	case "cp-in", "cp-out":
		flags := map[string]bool{}
		args := os.Args[2:]
		for len(args) > 1 && strings.HasPrefix(args[0], "-") {
			flags[args[0]] = true
			args = args[1:]
		}
		if len(args) != 1 {
			fmt.Fprintf(os.Stderr, "nook-runtime: usage: nook-runtime %s [-a] [-d] [-L] PATH\n", os.Args[1])
			os.Exit(125)
		}
		if os.Args[1] == "cp-in" {
			os.Exit(copyIn(args[0], flags["-a"], flags["-d"]))
		}
		os.Exit(copyOut(args[0], flags["-L"]))
	default:
		fmt.Fprintf(os.Stderr, "nook-runtime: unknown stage %q\n", os.Args[1])
		os.Exit(125)
	}
}
