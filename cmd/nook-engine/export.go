//go:build !nook_lean

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newExportCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Write a container's root filesystem as a tar archive (standard output by default)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && term.IsTerminal(int(os.Stdout.Fd())) {
				return errors.New("refusing to write a tar archive to a terminal: use -o FILE, or redirect standard output")
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			if output == "" {
				return e.Export(args[0], cmd.OutOrStdout())
			}
			f, err := os.Create(output)
			if err != nil {
				return fmt.Errorf("create %s: %w", output, errors.Unwrap(err))
			}
			if err = e.Export(args[0], f); err == nil {
				err = f.Close()
			} else {
				f.Close()
			}
			if err != nil {
				os.Remove(output)
			}
			return err
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return engineCmd(c)
}
