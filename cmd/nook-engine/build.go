//go:build !nook_lean

package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newBuildCmd() *cobra.Command {
	var o engine.BuildOptions
	c := &cobra.Command{
		Use:   "build [OPTIONS] [CONTEXT]",
		Short: "Build an image from a Dockerfile",
		Long: "Build an image from a Dockerfile (CONTEXT/Dockerfile unless -f; -f - reads it from standard input).\n" +
			"RUN steps run as `nook run` runs containers, with the same isolation and network;\n" +
			"every step's result is kept as an image, and a rebuild reuses them (--no-cache does not).",
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ContextDir = "."
			if len(args) == 1 {
				o.ContextDir = args[0]
			}
			o.Stdin, o.Out, o.Err = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			_, err = e.Build(context.Background(), o)
			return err
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&o.Tags, "tag", "t", nil, "name the image NAME[:TAG] (repeatable)")
	f.StringVarP(&o.Dockerfile, "file", "f", "", "the Dockerfile (default CONTEXT/Dockerfile; - for standard input)")
	f.StringArrayVar(&o.BuildArgs, "build-arg", nil, "set a build argument NAME=VALUE (NAME alone takes it from the environment)")
	f.StringVar(&o.Target, "target", "", "build the stages up to this one")
	f.BoolVar(&o.NoCache, "no-cache", false, "run every step, not reusing earlier results")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "print only the image ID")
	f.StringVar(&o.Network, "network", "", "network of RUN steps, as for nook run (default: nook run's)")
	f.StringArrayVar(&o.Labels, "label", nil, "set a label KEY=VALUE on the image (repeatable)")
	f.StringVar(&o.IIDFile, "iidfile", "", "write the image's ID to the file")
	f.BoolVar(&o.Pull, "pull", false, "always pull the FROM images again, even when present")
	f.StringArrayVar(&o.AddHosts, "add-host", nil, "add a line to /etc/hosts of RUN steps: HOST:IP (as nook run --add-host)")
	f.StringArrayVarP(&o.Outputs, "output", "o", nil, "export the final stage's files instead of storing an image: type=local,dest=DIR, type=tar,dest=FILE, DIR, or - (a tar on standard output)")
	f.StringArrayVar(&o.Secrets, "secret", nil, "a secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR (repeatable)")
	f.Bool("rm", true, "accepted for compatibility: nook never keeps a step's container")
	f.Bool("force-rm", false, "accepted for compatibility: nook never keeps a step's container")
	return engineCmd(c)
}
