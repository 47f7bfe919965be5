package main

import (
	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newLogsCmd() *cobra.Command {
	var o engine.LogsOptions
	var tail string
	c := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Show the output of a container",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Tail = -1
			if tail != "all" {
				n, err := parseCount(tail)
				if err != nil {
					return &statusError{125, err}
				}
				o.Tail = n
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.Logs(args[0], o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().BoolVarP(&o.Follow, "follow", "f", false, "follow the output until the container ends")
	c.Flags().StringVarP(&tail, "tail", "n", "all", "only the last N lines")
	c.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "show each line's time")
	return engineCmd(c)
}
