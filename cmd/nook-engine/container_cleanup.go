package main

import (
	"github.com/spf13/cobra"
)

// newContainerCleanupCmd is run by a container's monitor, inside nook's user namespace, once
// the container has ended for good (as Podman's exit command).
func newContainerCleanupCmd() *cobra.Command {
	c := &cobra.Command{
		Use:    "cleanup CONTAINER_ID",
		Short:  "Record a container's exit and release its resources (run by its monitor)",
		Hidden: true,
		Args:   rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.Cleanup(args[0])
		},
	}
	return engineCmd(c)
}
