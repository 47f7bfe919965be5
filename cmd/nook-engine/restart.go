package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newRestartCmd() *cobra.Command {
	var timeout int
	c := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			if done, err := rerunInNetwork(e, args); done {
				return err
			}
			return eachContainer(cmd, args, func(ref string) error { return e.Restart(context.Background(), ref, stopTimeout(cmd, timeout)) })
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", engine.DefaultStopTimeout, "seconds to wait before killing the container (default: the container's --stop-timeout, else 10; -1 waits for ever)")
	return engineCmd(c)
}
