package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
	"github.com/nook-containers/nook/internal/front"
	"github.com/nook-containers/nook/overlay"
	"github.com/nook-containers/nook/userns"
)

// globals are the flags every command shares.
type globals struct {
	root, runroot, rootfsMode string
}

var g globals

// needsEngine marks commands that work on the store, inside nook's user namespace.
const needsEngine = "nook.engine"

func newRootCmd() *cobra.Command {
	root := newRoot(append(leanCommands(), imageCommands()...))
	// The system group is in both engines (system info); the full engine adds df and prune.
	if sys, _, err := root.Find([]string{"system"}); err == nil && sys != root {
		sys.AddCommand(systemImageCommands()...)
	}
	// The container commands that only the full engine has (commit, diff, export: images.go)
	// join the `container` group of the lean ones.
	if c, _, err := root.Find([]string{"container"}); err == nil && c != root {
		c.AddCommand(containerImageCommands()...)
	}
	return root
}

// newRoot is the root command with cmds under it.
func newRoot(cmds []*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "nook",
		Short:         "Run Linux containers as an ordinary user: no root, no daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Annotations[needsEngine] == "" || userns.InEngine() {
				return nil
			}
			return enterEngine(cmd)
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &statusError{125, fmt.Errorf("%v\nSee '%s --help'.", err, c.CommandPath())}
	})
	defRoot := os.Getenv("NOOK_ROOTFS_MODE")
	if defRoot == "" {
		defRoot = "auto"
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", "", "storage root directory (default $XDG_DATA_HOME/nook)")
	pf.StringVar(&g.runroot, "runroot", "", "runtime state directory (default $XDG_RUNTIME_DIR/nook)")
	pf.StringVar(&g.rootfsMode, "rootfs-mode", defRoot, "how to assemble root filesystems: auto, overlay, fuse-overlayfs or copy (env NOOK_ROOTFS_MODE)")
	root.AddCommand(cmds...)
	return root
}

// leanCommands are the commands both engines have: containers, volumes, networks; everything
// but images (imageCommands). The lean engine, bin/nook-engine-lean (build tag nook_lean), has
// only these, and starts faster for it (docs/decisions.md, "The binaries").
func leanCommands() []*cobra.Command {
	return []*cobra.Command{
		newRunCmd(), newPsCmd(), newRmCmd(), newContainerCmd(), newInfoCmd(), newVersionCmd(),
		newVolumeCmd(), newStatsCmd(),
		newCreateCmd(), newStartCmd(), newStopCmd(), newRestartCmd(), newKillCmd(), newLogsCmd(),
		newExecCmd(), newWaitCmd(), newPortCmd(), newCpCmd(), newTopCmd(), newAttachCmd(),
		newNetworkCmd(), newRenameCmd(), newSystemCmd(),
	}
}

// enterEngine re-runs nook inside nook's user namespace and ends with the engine's status
// (internal/front, which the lean CLI in cmd/nook calls directly for the commands it knows).
func enterEngine(cmd *cobra.Command) error {
	code, err := front.Enter(front.Globals{Root: g.root, RunRoot: g.runroot, RootfsMode: g.rootfsMode}, userNetworkOf(cmd))
	return &statusError{code, err}
}

// openEngine opens the store; only commands marked needsEngine call it.
func openEngine() (*engine.Engine, error) {
	paths, err := engine.DefaultPaths(g.root, g.runroot)
	if err != nil {
		return nil, err
	}
	mode, err := overlay.ParseMode(g.rootfsMode)
	if err != nil {
		return nil, err
	}
	return engine.Open(engine.Options{Paths: paths, RootfsMode: mode})
}

func engineCmd(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[needsEngine] = "yes"
	c.SilenceUsage = true
	return c
}

// exactArgs and friends make argument errors exit 125 like flag errors.
func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return &statusError{125, fmt.Errorf("%q requires at least %d argument(s)\nSee '%s --help'.", c.CommandPath(), n, c.CommandPath())}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return &statusError{125, fmt.Errorf("%q requires %d to %d arguments\nSee '%s --help'.", c.CommandPath(), lo, hi, c.CommandPath())}
		}
		return nil
	}
}
