//go:build !nook_lean

package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newImagePruneCmd() *cobra.Command {
	var all, force bool
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images: dangling ones, or with -a every image no container uses",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				what := "all dangling images"
				if all {
					what = "all images without at least one container associated to them"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] ", what)
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					fmt.Fprintln(cmd.ErrOrStderr())
					return nil
				}
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			rep, err := e.PruneImages(all)
			out := cmd.OutOrStdout()
			if rep != nil {
				if len(rep.Deleted) > 0 {
					fmt.Fprintln(out, "Deleted Images:")
					for _, n := range rep.Untagged {
						fmt.Fprintf(out, "untagged: %s\n", n)
					}
					for _, id := range rep.Deleted {
						fmt.Fprintf(out, "deleted: sha256:%s\n", id)
					}
					fmt.Fprintln(out)
				}
				fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(rep.Freed))
			}
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return engineCmd(c)
}
