//go:build !nook_lean

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newImportCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "import FILE|- [REPOSITORY[:TAG]]",
		Short: "Create an image from a root filesystem tarball",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := engine.ImportOptions{Source: args[0], Stdin: os.Stdin}
			if len(args) == 2 {
				o.Name = args[1]
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			id, err := e.Import(context.Background(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sha256:%s\n", id)
			return nil
		},
	}
	return engineCmd(c)
}
