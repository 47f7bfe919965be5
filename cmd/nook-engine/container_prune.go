package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newContainerPruneCmd() *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all containers that are not running",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := engine.ParseContainerFilter(filters, true)
			if err != nil {
				return &statusError{125, err}
			}
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
			removed, err := e.Prune(f)
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
	c.Flags().StringArrayVar(&filters, "filter", nil, "only containers created before until=TIMESTAMP (a time or a duration such as 24h), or with label=KEY[=VALUE] (label!= without it)")
	return engineCmd(c)
}
