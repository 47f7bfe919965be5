package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newRunCmd() *cobra.Command {
	var o engine.RunOptions
	var entrypoint string
	c := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Image, o.Args = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				o.Entrypoint = &entrypoint
			}
			o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			code, err := e.Run(context.Background(), o)
			if err != nil {
				return &statusError{code, err}
			}
			if code != 0 {
				return &statusError{code: code}
			}
			return nil
		},
	}
	f := c.Flags()
	f.SetInterspersed(false)
	f.Bool("help", false, "help for run") // -h is --hostname, as in Docker
	f.BoolVar(&o.Remove, "rm", false, "remove the container when it exits")
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "keep standard input open")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (NAME=VALUE, or NAME to pass it through)")
	f.StringArrayVar(&o.EnvFiles, "env-file", nil, "read environment variables from a file")
	f.StringVarP(&o.User, "user", "u", "", "user to run as: UID[:GID] or NAME[:GROUP]")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&o.Hostname, "hostname", "h", "", "container host name")
	f.StringVar(&o.Name, "name", "", "assign a name to the container")
	f.StringVar(&o.Network, "network", "none", "network: none or host")
	f.StringVar(&o.Network, "net", "none", "network (same as --network)")
	_ = f.MarkHidden("net")
	f.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint")
	return engineCmd(c)
}
