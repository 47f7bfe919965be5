package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newLogsCmd() *cobra.Command {
	var o engine.LogsOptions
	var tail, since, until string
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
			now := time.Now()
			for _, b := range []struct {
				flag, value string
				t           *time.Time
			}{{"since", since, &o.Since}, {"until", until, &o.Until}} {
				if b.value == "" {
					continue
				}
				t, err := engine.ParseLogTime(b.value, now)
				if err != nil {
					return &statusError{125, fmt.Errorf("--%s: %w", b.flag, err)}
				}
				*b.t = t
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
	c.Flags().StringVar(&since, "since", "", "only lines since a time: RFC 3339 (2013-01-02T13:23:37Z), a Unix timestamp, or a duration before now (42m)")
	c.Flags().StringVar(&until, "until", "", "only lines until a time: RFC 3339 (2013-01-02T13:23:37Z), a Unix timestamp, or a duration before now (42m)")
	return engineCmd(c)
}
