package main

import "github.com/spf13/cobra"

// newSystemCmd is Docker's `system` group: info, in both engines; df and prune need the image
// code, so only the full engine has them (newRootCmd adds systemImageCommands).
func newSystemCmd() *cobra.Command {
	c := &cobra.Command{Use: "system", Short: "Manage nook: disk usage, prune, info", Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	c.AddCommand(newInfoCmd())
	return c
}
