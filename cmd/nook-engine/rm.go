package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRmCmd() *cobra.Command { return rmCommand("rm [OPTIONS] CONTAINER [CONTAINER...]") }

func rmCommand(use string) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   use,
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			var errs []error
			for _, ref := range args {
				if err := e.RemoveContainer(ref, force); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill and remove a running container")
	return engineCmd(c)
}
