package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newPsCmd() *cobra.Command {
	c := psCommand("ps [OPTIONS]")
	c.Short = "List containers"
	return c
}

func psCommand(use string) *cobra.Command {
	var all, quiet, noTrunc bool
	c := &cobra.Command{
		Use:  use,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			cs, err := e.Containers()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			w := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
			}
			for _, c := range cs {
				if !all && c.State != engine.StateRunning {
					continue
				}
				id := c.ID
				if !noTrunc {
					id = id[:12]
				}
				if quiet {
					fmt.Fprintln(w, id)
					continue
				}
				command := strings.Join(c.Command, " ")
				if !noTrunc && len(command) > 20 {
					command = command[:19] + "…"
				}
				fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", id, c.Image, command, ago(c.Created), status(c), "", c.Name)
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show container IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	return engineCmd(c)
}

// status renders Docker's STATUS column.
func status(c engine.Container) string {
	switch c.State {
	case engine.StateRunning:
		return "Up " + humanDuration(time.Since(c.Started))
	case engine.StateExited:
		if c.Finished.IsZero() {
			return fmt.Sprintf("Exited (%d)", c.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s", c.ExitCode, ago(c.Finished))
	}
	return "Created"
}

func newContainerCmd() *cobra.Command {
	c := &cobra.Command{Use: "container", Short: "Manage containers", Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	ls := psCommand("ls [OPTIONS]")
	ls.Aliases = []string{"list", "ps"}
	ls.Short = "List containers"
	rm := rmCommand("rm [OPTIONS] CONTAINER [CONTAINER...]")
	c.AddCommand(ls, rm)
	return c
}
