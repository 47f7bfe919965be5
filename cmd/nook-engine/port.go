package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newPortCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List a container's published ports",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			ports, err := e.Ports(args[0])
			if err != nil {
				return err
			}
			found := false
			for _, p := range ports {
				priv := strconv.Itoa(p.ContainerPort) + "/" + p.Proto
				ip := p.HostIP
				if ip == "" {
					ip = "0.0.0.0"
				}
				host := net.JoinHostPort(ip, strconv.Itoa(p.HostPort)) // [::1]:8080 for IPv6
				if len(args) == 2 {
					want := args[1]
					if !strings.Contains(want, "/") {
						want += "/tcp"
					}
					if want != priv {
						continue
					}
					fmt.Fprintln(cmd.OutOrStdout(), host)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s\n", priv, host)
				}
				found = true
			}
			if len(args) == 2 && !found {
				return fmt.Errorf("no public port %s published for %s", args[1], args[0])
			}
			return nil
		},
	}
	return engineCmd(c)
}
