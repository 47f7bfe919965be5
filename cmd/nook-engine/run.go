package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newRunCmd() *cobra.Command {
	var o engine.RunOptions
	var entrypoint, detachKeys string
	c := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			completeRunOptions(cmd, args, &o, entrypoint)
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
			}
			o.DetachKeys = keys
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			if o.Detach {
				id, err := e.RunDetached(context.Background(), o)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
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
	addRunFlags(c, &o, &entrypoint)
	c.Flags().BoolVarP(&o.Detach, "detach", "d", false, "run the container in the background and print its ID")
	addDetachKeysFlag(c.Flags(), &detachKeys)
	return engineCmd(c)
}

// completeRunOptions fills in what `nook run` and `nook create` take from the arguments and
// the process rather than from flags.
func completeRunOptions(cmd *cobra.Command, args []string, o *engine.RunOptions, entrypoint string) {
	o.Image, o.Args = args[0], args[1:]
	if cmd.Flags().Changed("entrypoint") {
		o.Entrypoint = &entrypoint
	}
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
}

// addRunFlags adds the flags `nook run` and `nook create` share.
func addRunFlags(c *cobra.Command, o *engine.RunOptions, entrypoint *string) {
	f := c.Flags()
	f.SetInterspersed(false)
	f.Bool("help", false, "help for "+c.Name()) // -h is --hostname, as in Docker
	f.BoolVar(&o.Remove, "rm", false, "remove the container when it exits")
	f.StringVar(&o.Restart, "restart", "no", "restart policy while its monitor lives: no, always, unless-stopped, on-failure[:N]")
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "keep standard input open")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (NAME=VALUE, or NAME to pass it through)")
	f.StringArrayVar(&o.EnvFiles, "env-file", nil, "read environment variables from a file")
	f.StringVarP(&o.User, "user", "u", "", "user to run as: UID[:GID] or NAME[:GROUP]")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&o.Hostname, "hostname", "h", "", "container host name")
	f.StringVar(&o.Name, "name", "", "assign a name to the container")
	f.StringArrayVarP(&o.Labels, "label", "l", nil, "set a label on the container: KEY[=VALUE]")
	f.BoolVar(&o.Init, "init", false, "run an init (bin/nook-init) as PID 1 that reaps orphaned processes and passes signals on to the command")
	f.StringVar(&o.Network, "network", "", "network: slirp4netns[:allow_host_loopback=true,port_handler=builtin|slirp4netns,bypass4netns=true (TCP to the host and published TCP ports in the host's namespace)], pasta, none, host or a user network's name (default slirp4netns where it works, else none: see nook info)")
	f.StringVar(&o.Network, "net", "", "network (same as --network)")
	f.StringArrayVar(&o.NetworkAliases, "network-alias", nil, "another name of the container on its user network")
	f.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a container's port on the host: [[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|/udp]; ports may be ranges (8000-8002:80-82)")
	f.BoolVarP(&o.PublishAll, "publish-all", "P", false, "publish the image's exposed ports on free host ports")
	_ = f.MarkHidden("net")
	f.StringVar(entrypoint, "entrypoint", "", "override the image's entrypoint")
	addLimitFlags(f, &o.LimitOptions)
}
