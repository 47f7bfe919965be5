package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newWaitCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Wait until containers end, and print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			var errs []error
			for _, ref := range args {
				code, err := e.Wait(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), code)
			}
			return errors.Join(errs...)
		},
	}
	return engineCmd(c)
}
