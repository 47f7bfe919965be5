// Command nook runs Linux containers as an ordinary user: no root, no daemon.
//
// This is the lean front of the CLI (standard library, x/sys and nook's own small packages):
// for a command that runs in the engine it enters nook's user namespace and runs the engine
// there itself (internal/front); everything else — help, login, network, version, a flag it
// does not know — it hands whole to the engine binary, bin/nook-engine, which parses the
// command line with cobra. So the heavy engine binary starts once per command, not twice. The
// container commands (front.Command.Lean) it runs with the lean engine, bin/nook-engine-lean,
// which starts sooner still.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/nook-containers/nook/internal/front"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/userns"
)

func main() {
	timing.Mark("main")
	engine, err := userns.EnginePath()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(125)
	}
	args := os.Args[1:]
	if inv, ok := front.Parse(args); ok && !userns.InEngine() {
		userns.EngineExe = engine
		if inv.Lean {
			// The lean engine starts sooner; it hands the command to the full one if it must.
			if lean, err := userns.LeanEnginePath(); err == nil {
				userns.EngineExe = lean
			}
		}
		code, err := front.Enter(inv.Globals, inv.Network)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		}
		timing.Mark("exit")
		os.Exit(code)
	}
	err = syscall.Exec(engine, append([]string{"nook"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "Error: cannot run the engine %s: %v: install nook-engine next to nook, or set NOOK_ENGINE\n", engine, err)
	os.Exit(125)
}
