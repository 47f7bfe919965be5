package main

import (
	"github.com/spf13/cobra"
)

func newCpCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cp SRC_PATH CONTAINER:DEST_PATH | CONTAINER:SRC_PATH DEST_PATH",
		Short: "Copy files between a container and the host",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.Copy(args[0], args[1])
		},
	}
	return engineCmd(c)
}
