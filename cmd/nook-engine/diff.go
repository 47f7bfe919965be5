//go:build !nook_lean

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDiffCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "List the files a container added (A), changed (C) or deleted (D)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			chs, err := e.Diff(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, ch := range chs {
				fmt.Fprintf(out, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
	return engineCmd(c)
}
