package main

import "github.com/spf13/cobra"

func newRenameCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container (created, stopped or running)",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.Rename(args[0], args[1])
		},
	}
	return engineCmd(c)
}
