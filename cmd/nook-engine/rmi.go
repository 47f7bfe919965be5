//go:build !nook_lean

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRmiCmd() *cobra.Command {
	c := rmiCommand("rmi [OPTIONS] IMAGE [IMAGE...]")
	return c
}

func rmiCommand(use string) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   use,
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			var errs []error
			for _, name := range args {
				lines, err := e.RemoveImage(name, force)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove containers that use the image too")
	return engineCmd(c)
}
