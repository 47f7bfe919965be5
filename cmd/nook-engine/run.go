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
	if cmd.Flags().Changed("stop-timeout") {
		t, _ := cmd.Flags().GetInt("stop-timeout")
		o.StopTimeout = &t
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
	f.StringVar(&o.Network, "network", "", "network: slirp4netns[:allow_host_loopback=true,port_handler=builtin|slirp4netns,bypass4netns=true (TCP to the host and published TCP ports in the host's namespace)], pasta, none, host, container:NAME|ID (another running container's network namespace) or a user network's name (default slirp4netns where it works, else none: see nook info)")
	f.StringVar(&o.Network, "net", "", "network (same as --network)")
	f.StringArrayVar(&o.NetworkAliases, "network-alias", nil, "another name of the container on its user network")
	f.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a container's port on the host: [[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|/udp]; ports may be ranges (8000-8002:80-82)")
	f.BoolVarP(&o.PublishAll, "publish-all", "P", false, "publish the image's exposed ports on free host ports")
	_ = f.MarkHidden("net")
	f.StringVar(&o.PID, "pid", "", "PID namespace: host, or container:NAME|ID (another running container's)")
	f.StringVar(&o.IPC, "ipc", "", "IPC namespace: private (the default), shareable (others may join it), host, or container:NAME|ID (a shareable running container's)")
	f.StringVar(&o.UTS, "uts", "", "UTS namespace: host (the host's name)")
	f.StringVar(entrypoint, "entrypoint", "", "override the image's entrypoint")
	f.StringArrayVar(&o.AddHosts, "add-host", nil, "add a line to /etc/hosts: HOST:IP (IP may be host-gateway: the host, as the container's network reaches it)")
	f.StringArrayVar(&o.DNS, "dns", nil, "name server of the container's /etc/resolv.conf (replaces the network's)")
	f.StringArrayVar(&o.DNSSearch, "dns-search", nil, "search domain of the container's /etc/resolv.conf (. for none)")
	f.StringArrayVar(&o.DNSOptions, "dns-option", nil, "option of the container's /etc/resolv.conf (e.g. ndots:2)")
	f.StringArrayVar(&o.DNSOptions, "dns-opt", nil, "same as --dns-option")
	_ = f.MarkHidden("dns-opt")
	f.StringVar(&o.StopSignal, "stop-signal", "", "signal to stop the container (default: the image's STOPSIGNAL, else SIGTERM)")
	f.Int("stop-timeout", engine.DefaultStopTimeout, "seconds nook stop waits before killing the container, -1 for ever")
	f.StringVar(&o.CIDFile, "cidfile", "", "write the container's ID to this file (which must not exist)")
	f.StringVar(&o.Pull, "pull", "missing", "pull the image before creating the container: always, missing or never")
	f.StringArrayVar(&o.Expose, "expose", nil, "expose a port or a range of ports: PORT[/PROTO] (-P publishes it)")
	f.StringArrayVar(&o.GroupAdd, "group-add", nil, "add a supplementary group: a name of the image's /etc/group, or a number")
	f.StringVar(&o.ShmSize, "shm-size", "", "size of /dev/shm (e.g. 128m; default 64m)")
	f.StringArrayVar(&o.Sysctls, "sysctl", nil, "set a namespaced kernel parameter: KEY=VALUE (net.*, kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*)")
	addLimitFlags(f, &o.LimitOptions)
}
