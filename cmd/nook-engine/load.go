//go:build !nook_lean

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"

	"github.com/nook-containers/nook/engine"
)

func newLoadCmd() *cobra.Command { return loadCommand() }

func newImageLoadCmd() *cobra.Command { return loadCommand() }

func loadCommand() *cobra.Command {
	var o engine.LoadOptions
	var quiet bool
	c := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Add the images of a tar archive (docker-archive or oci-archive; standard input by default)",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Stdin = os.Stdin
			o.Progress = progressWriter(quiet)
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			loaded, err := e.Load(context.Background(), o)
			out := cmd.OutOrStdout()
			for _, li := range loaded {
				if len(li.Names) == 0 {
					fmt.Fprintf(out, "Loaded image ID: sha256:%s\n", li.ID)
				}
				for _, n := range li.Names {
					fmt.Fprintf(out, "Loaded image: %s\n", reference.FamiliarString(n))
				}
			}
			return err
		},
	}
	c.Flags().StringVarP(&o.Input, "input", "i", "", "read from this file instead of standard input")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return engineCmd(c)
}
