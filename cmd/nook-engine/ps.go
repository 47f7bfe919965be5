package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
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
	Labels, Networks, Size                                                 string

	labels map[string]string // for Label
}

// Label is Docker's {{.Label "KEY"}}.
func (r psRow) Label(key string) string { return r.labels[key] }

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES",
	"Labels": "LABELS", "Networks": "NETWORKS", "Size": "SIZE",
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
	var all, quiet, noTrunc, latest, size bool
	var last int
	var format string
	var filters []string
	c := &cobra.Command{
		Use:  use,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := engine.ParseContainerFilter(filters, false)
			if err != nil {
				return &statusError{125, err}
			}
			if latest {
				last = 1
			}
			// Docker: a status filter, -n and -l list every state, not only running containers.
			all = all || f.Has("status") || last >= 0
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			cs, err := e.Containers()
			if err != nil {
				return err
			}
			if cs, err = e.FilterContainers(cs, f); err != nil {
				return &statusError{125, err}
			}
			if !all {
				var running []engine.Container
				for _, c := range cs {
					if c.Active() {
						running = append(running, c)
					}
				}
				cs = running
			}
			cs = engine.LatestContainers(cs, last)
			rows := make([]psRow, 0, len(cs))
			for _, c := range cs {
				id, command := c.ID, strings.Join(c.Command, " ")
				if !noTrunc {
					id = id[:12]
					if len(command) > 20 {
						command = command[:19] + "…"
					}
				}
				r := psRow{ID: id, Image: c.Image, Command: strconv.Quote(command),
					CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: ago(c.Created),
					Status: status(c), State: c.State, Ports: ports(c), Names: c.Name, labels: c.Labels}
				var kv []string
				for k, v := range c.Labels {
					kv = append(kv, k+"="+v)
				}
				sort.Strings(kv)
				r.Labels = strings.Join(kv, ",")
				if c.Net != nil {
					r.Networks = c.Net.Mode
				}
				if size || strings.Contains(format, ".Size") {
					rw, virtual := e.ContainerSize(&c)
					r.Size = humanSize(rw) + " (virtual " + humanSize(virtual) + ")"
				}
				rows = append(rows, r)
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
				return nil
			}
			table := psTable
			if size {
				table += "\t{{.Size}}"
			}
			if format == "" {
				format = "table"
			}
			anyRows := make([]any, len(rows))
			for i := range rows {
				anyRows[i] = rows[i]
			}
			return renderRows(out, format, table, psHeaders, anyRows)
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show container IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	c.Flags().StringVar(&format, "format", "", "format the output: table, json, or a Go template such as '{{.ID}} {{.Names}}'")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter the output by KEY=VALUE: id, name, status, exited, label, label!, ancestor, before, since, volume, network (repeatable: one key's values OR'ed, different keys AND'ed)")
	c.Flags().IntVarP(&last, "last", "n", -1, "show the n last created containers (all states)")
	c.Flags().BoolVarP(&latest, "latest", "l", false, "show the latest created container (all states)")
	c.Flags().BoolVarP(&size, "size", "s", false, "show the containers' sizes: their own layer (virtual: with the image)")
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
		newContainerInspectCmd(), newRenameCmd(), newStatsCmd())
	return c
}
