//go:build !nook_lean

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"

	"github.com/nook-containers/nook/engine"
)

func newPushCmd() *cobra.Command { return pushCommand() }

func newImagePushCmd() *cobra.Command { return pushCommand() }

func pushCommand() *cobra.Command {
	var quiet, tlsOn bool
	c := &cobra.Command{
		Use:   "push [OPTIONS] IMAGE [DESTINATION]",
		Short: "Upload an image to a registry (to DESTINATION, or to the registry its name says)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := engine.PushOptions{Image: args[0], TLSVerify: tlsVerify(cmd, tlsOn), Progress: progressWriter(quiet)}
			if len(args) == 2 {
				o.Destination = args[1]
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			named, d, size, err := e.Push(context.Background(), o)
			if err != nil {
				return err
			}
			tag := "latest"
			if t, ok := named.(reference.Tagged); ok {
				tag = t.Tag()
			}
			if !quiet {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: digest: %s size: %d\n", tag, d, size)
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), named.String())
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	addTLSFlag(c, &tlsOn)
	return engineCmd(c)
}
