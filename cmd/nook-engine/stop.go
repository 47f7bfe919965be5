package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newStopCmd() *cobra.Command {
	var timeout int
	c := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers: the stop signal, then SIGKILL after a grace period",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return eachContainer(cmd, args, func(ref string) error { return e.Stop(ref, stopTimeout(cmd, timeout)) })
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", engine.DefaultStopTimeout, "seconds to wait before killing the container (default: the container's --stop-timeout, else 10; -1 waits for ever)")
	c.Flags().IntVar(&timeout, "timeout", engine.DefaultStopTimeout, "same as --time")
	_ = c.Flags().MarkHidden("timeout")
	return engineCmd(c)
}

// eachContainer runs fn for every argument, prints the names that worked, and joins the errors.
func eachContainer(cmd *cobra.Command, refs []string, fn func(string) error) error {
	var errs []error
	for _, ref := range refs {
		if err := fn(ref); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
	}
	return errors.Join(errs...)
}

// stopTimeout is -t when given; nil lets the container's --stop-timeout decide.
func stopTimeout(cmd *cobra.Command, timeout int) *int {
	if cmd.Flags().Changed("time") || cmd.Flags().Changed("timeout") {
		return &timeout
	}
	return nil
}
