package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newStatsCmd() *cobra.Command {
	return engineCmd(&cobra.Command{
		Use:   "stats [CONTAINER...]",
		Short: "Show running containers' resource usage (one sample)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(func(e *engine.Engine) error {
				st, err := e.Stats(args, 500*time.Millisecond)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
				fmt.Fprintln(w, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tPIDS")
				for _, s := range st {
					limit := "unlimited"
					if s.MemoryLimit > 0 {
						limit = humanSize(int64(s.MemoryLimit))
					}
					fmt.Fprintf(w, "%s\t%s\t%.2f%%\t%s / %s\t%d\n", s.ID[:12], s.Name, s.CPUPercent, humanSize(int64(s.MemoryUsage)), limit, s.Pids)
				}
				return w.Flush()
			})
		},
	})
}
