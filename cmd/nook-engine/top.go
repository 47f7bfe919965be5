package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newTopCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "top CONTAINER",
		Short: "Show the processes of a running container",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			ps, err := e.Top(args[0])
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
			fmt.Fprintln(w, "UID\tPID\tPPID\tCMD")
			for _, p := range ps {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.UID, p.PID, p.PPID, p.Cmd)
			}
			return w.Flush()
		},
	}
	return engineCmd(c)
}
