//go:build !nook_lean

package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func systemImageCommands() []*cobra.Command {
	return []*cobra.Command{newSystemDfCmd(), newSystemPruneCmd()}
}

// dfRow is one row of `nook system df` for --format templates; the keys are Docker's.
type dfRow struct {
	Type        string `json:"Type"`
	TotalCount  string `json:"TotalCount"`
	Active      string `json:"Active"`
	Size        string `json:"Size"`
	Reclaimable string `json:"Reclaimable"`
}

var dfHeaders = map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}

func newSystemDfCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show disk usage: images, containers, volumes, build cache",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			rows, err := e.DiskUsage()
			if err != nil {
				return err
			}
			list := make([]any, 0, len(rows))
			for _, r := range rows {
				rec := humanSize(r.Reclaimable)
				if r.Size > 0 {
					rec += fmt.Sprintf(" (%d%%)", r.Reclaimable*100/r.Size)
				}
				list = append(list, dfRow{Type: r.Type, TotalCount: fmt.Sprint(r.Total), Active: fmt.Sprint(r.Active),
					Size: humanSize(r.Size), Reclaimable: rec})
			}
			if format == "" {
				format = "table"
			}
			return renderRows(cmd.OutOrStdout(), format, "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", dfHeaders, list)
		},
	}
	c.Flags().StringVar(&format, "format", "", "format the output: table, json, or a Go template such as '{{.Type}} {{.Size}}'")
	return engineCmd(c)
}

func newSystemPruneCmd() *cobra.Command {
	var all, volumes, force bool
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove stopped containers, unused networks, dangling images (with -a unused ones) and, with --volumes, unused volumes",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				w := cmd.OutOrStdout()
				fmt.Fprintln(w, "WARNING! This will remove:")
				fmt.Fprintln(w, "  - all stopped containers")
				fmt.Fprintln(w, "  - all networks not used by at least one container")
				if volumes {
					fmt.Fprintln(w, "  - all volumes not used by at least one container")
				}
				if all {
					fmt.Fprintln(w, "  - all images without at least one container associated to them")
				} else {
					fmt.Fprintln(w, "  - all dangling images")
				}
				fmt.Fprint(w, "\nAre you sure you want to continue? [y/N] ")
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return nil
				}
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			rep, err := e.SystemPrune(all, volumes)
			if rep == nil {
				return err
			}
			out := cmd.OutOrStdout()
			section := func(title string, items []string) {
				if len(items) == 0 {
					return
				}
				fmt.Fprintln(out, title)
				for _, s := range items {
					fmt.Fprintln(out, s)
				}
				fmt.Fprintln(out)
			}
			section("Deleted Containers:", rep.Containers)
			section("Deleted Networks:", rep.Networks)
			section("Deleted Volumes:", rep.Volumes)
			if ir := rep.Images; ir != nil && len(ir.Deleted) > 0 {
				var lines []string
				for _, n := range ir.Untagged {
					lines = append(lines, "untagged: "+n)
				}
				for _, id := range ir.Deleted {
					lines = append(lines, "deleted: sha256:"+id)
				}
				section("Deleted Images:", lines)
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(rep.Freed))
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only dangling ones")
	c.Flags().BoolVar(&volumes, "volumes", false, "also remove every volume no container uses")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return engineCmd(c)
}
