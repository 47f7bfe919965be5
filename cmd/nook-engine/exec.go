package main

import (
	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newExecCmd() *cobra.Command {
	var o engine.ExecOptions
	c := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Args = args[1:]
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			// The engine checks and describes the process; the CLI runs it on the host
			// (root.go, nsexec).
			return e.Exec(args[0], o)
		},
	}
	f := c.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "keep standard input open")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	f.BoolVarP(&o.Detach, "detach", "d", false, "run the command in the background")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (NAME=VALUE, or NAME to pass it through)")
	f.StringArrayVar(&o.EnvFiles, "env-file", nil, "read environment variables from a file")
	f.BoolVar(&o.Privileged, "privileged", false, "give the command every capability of the container's user namespace, without seccomp")
	f.StringVarP(&o.User, "user", "u", "", "user to run as: UID[:GID] or NAME[:GROUP]")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	return engineCmd(c)
}
