//go:build !nook_lean

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newCommitCmd() *cobra.Command {
	var o engine.CommitOptions
	c := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Container = args[0]
			if len(args) == 2 {
				o.Name = args[1]
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			id, err := e.Commit(context.Background(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sha256:%s\n", id)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&o.Author, "author", "a", "", `author (e.g. "Jane Doe <jane@example.com>")`)
	f.StringArrayVarP(&o.Changes, "change", "c", nil, "apply a Dockerfile instruction to the image's configuration (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)")
	f.StringVarP(&o.Message, "message", "m", "", "commit message")
	f.BoolVarP(&o.Pause, "pause", "p", false, "freeze a running container while its changes are read (needs a delegated cgroup v2)")
	return engineCmd(c)
}
