package main

import (
	"fmt"
	"strconv"
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

// psRow is one container as `ps --format` templates see it (Docker's field names).
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Status, State, Ports, Names string
}

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
}

const psTable = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

// ports renders Docker's PORTS column.
func ports(c engine.Container) string {
	if c.Net == nil {
		return ""
	}
	return engine.FormatPorts(c.Net.Ports)
}

func psCommand(use string) *cobra.Command {
	var all, quiet, noTrunc bool
	var format string
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
			if format != "" && !quiet {
				var rows []any
				for _, c := range cs {
					if !all && !c.Active() {
						continue
					}
					id, command := c.ID, strings.Join(c.Command, " ")
					if !noTrunc {
						id = id[:12]
						if len(command) > 20 {
							command = command[:19] + "…"
						}
					}
					rows = append(rows, psRow{ID: id, Image: c.Image, Command: strconv.Quote(command),
						CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: ago(c.Created),
						Status: status(c), State: c.State, Ports: ports(c), Names: c.Name})
				}
				return renderRows(out, format, psTable, psHeaders, rows)
			}
			w := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
			}
			for _, c := range cs {
				if !all && !c.Active() {
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
				fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", id, c.Image, command, ago(c.Created), status(c), ports(c), c.Name)
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show container IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	c.Flags().StringVar(&format, "format", "", "format the output: table, json, or a Go template such as '{{.ID}} {{.Names}}'")
	return engineCmd(c)
}

// status renders Docker's STATUS column.
func status(c engine.Container) string {
	switch c.State {
	case engine.StateRunning:
		return "Up " + humanDuration(time.Since(c.Started))
	case engine.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s", c.ExitCode, ago(c.Finished))
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
	c.AddCommand(ls, rm, newContainerPruneCmd(), newContainerCleanupCmd(),
		newCreateCmd(), newStartCmd(), newStopCmd(), newRestartCmd(), newKillCmd(), newLogsCmd(),
		newExecCmd(), newWaitCmd(), newPortCmd(), newCpCmd(), newTopCmd(), newAttachCmd(),
		newContainerInspectCmd())
	return c
}
