package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newCreateCmd() *cobra.Command {
	var o engine.RunOptions
	var entrypoint string
	c := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container from an image, without starting it",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			completeRunOptions(cmd, args, &o, entrypoint)
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			id, err := e.Create(context.Background(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	addRunFlags(c, &o, &entrypoint)
	return engineCmd(c)
}
