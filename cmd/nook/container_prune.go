package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newContainerPruneCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all containers that are not running",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(cmd.OutOrStdout(), "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
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
			removed, err := e.Prune()
			if len(removed) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Containers:")
				for _, id := range removed {
					fmt.Fprintln(cmd.OutOrStdout(), id)
				}
			}
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return engineCmd(c)
}
