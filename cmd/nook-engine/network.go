package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
	"github.com/nook-containers/nook/netuser"
)

// The network commands work on plain files (records in the graph root, leases in the run root)
// and run in the CLI, without a user namespace, but connect and disconnect, which change a
// container's record in the store and so run in the engine. Their errors exit 1, as Docker's do.

func newNetworkCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "network",
		Short: "Manage user-defined networks",
		Args:  rangeArgs(0, 0),
	}
	c.AddCommand(newNetworkCreateCmd(), newNetworkLsCmd(), newNetworkRmCmd(), newNetworkInspectCmd(), newNetworkPruneCmd(),
		newNetworkConnectCmd(), newNetworkDisconnectCmd())
	return c
}

func networkPaths() (engine.Paths, error) { return engine.DefaultPaths(g.root, g.runroot) }

// networkError is a network command's failure: exit 1, as Docker's.
func networkError(err error) error {
	if err == nil {
		return nil
	}
	return &statusError{1, err}
}

func newNetworkCreateCmd() *cobra.Command {
	var o netuser.CreateOptions
	var labels []string
	c := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := networkPaths()
			if err != nil {
				return err
			}
			o.Name = args[0]
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if o.Labels == nil {
					o.Labels = map[string]string{}
				}
				o.Labels[k] = v
			}
			n, err := netuser.Create(p.GraphRoot, o)
			if err != nil {
				return networkError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&o.Driver, "driver", "d", "bridge", "driver (bridge)")
	f.StringVar(&o.Subnet, "subnet", "", "IPv4 subnet in CIDR form (default: the first free 10.89.N.0/24)")
	f.StringVar(&o.Gateway, "gateway", "", "the bridge's address (default: the subnet's first)")
	f.BoolVar(&o.Internal, "internal", false, "no outbound traffic: members reach each other only")
	f.StringArrayVar(&labels, "label", nil, "set metadata (KEY=VALUE)")
	return c
}

func newNetworkLsCmd() *cobra.Command {
	var quiet, noTrunc bool
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := networkPaths()
			if err != nil {
				return err
			}
			ns, err := netuser.List(p.GraphRoot)
			if err != nil {
				return networkError(err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(w, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
			}
			for _, n := range ns {
				id := n.ID
				if !noTrunc {
					id = id[:12]
				}
				if quiet {
					fmt.Fprintln(w, id)
				} else {
					fmt.Fprintf(w, "%s\t%s\t%s\tlocal\n", id, n.Name, n.Driver)
				}
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only the IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "full IDs")
	return c
}

func newNetworkRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove networks that have no running container",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := networkPaths()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				n, err := netuser.Find(p.GraphRoot, ref)
				if err == nil {
					err = netuser.Remove(p.GraphRoot, p.RunRoot, n)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return networkError(errors.Join(errs...))
		},
	}
}

// networkInspect is Docker's `network inspect` document.
type networkInspect struct {
	Name       string                     `json:"Name"`
	ID         string                     `json:"Id"`
	Created    time.Time                  `json:"Created"`
	Scope      string                     `json:"Scope"`
	Driver     string                     `json:"Driver"`
	EnableIPv6 bool                       `json:"EnableIPv6"`
	IPAM       networkIPAM                `json:"IPAM"`
	Internal   bool                       `json:"Internal"`
	Attachable bool                       `json:"Attachable"`
	Containers map[string]networkEndpoint `json:"Containers"`
	Options    map[string]string          `json:"Options"`
	Labels     map[string]string          `json:"Labels"`
}

type networkIPAM struct {
	Driver  string              `json:"Driver"`
	Options map[string]string   `json:"Options"`
	Config  []map[string]string `json:"Config"`
}

type networkEndpoint struct {
	Name        string   `json:"Name"`
	EndpointID  string   `json:"EndpointID"`
	MacAddress  string   `json:"MacAddress"`
	IPv4Address string   `json:"IPv4Address"`
	IPv6Address string   `json:"IPv6Address"`
	Aliases     []string `json:"Aliases,omitempty"`
}

func newNetworkInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NETWORK [NETWORK...]",
		Short: "Show networks in JSON",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := networkPaths()
			if err != nil {
				return err
			}
			out := []networkInspect{}
			var errs []error
			for _, ref := range args {
				n, err := netuser.Find(p.GraphRoot, ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				members, err := netuser.Members(p.RunRoot, n.Name)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				prefix := n.Subnet[strings.IndexByte(n.Subnet, '/'):]
				in := networkInspect{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
					IPAM:     networkIPAM{Driver: "default", Options: map[string]string{}, Config: []map[string]string{{"Subnet": n.Subnet, "Gateway": n.Gateway}}},
					Internal: n.Internal, Containers: map[string]networkEndpoint{}, Options: map[string]string{}, Labels: n.Labels}
				if in.Labels == nil {
					in.Labels = map[string]string{}
				}
				for _, m := range members {
					in.Containers[m.ID] = networkEndpoint{Name: m.Name, EndpointID: engine.EndpointID(n.ID, m.ID),
						MacAddress: m.MAC, IPv4Address: m.Addr + prefix, Aliases: m.Aliases}
				}
				out = append(out, in)
			}
			b, _ := json.MarshalIndent(out, "", "    ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return networkError(errors.Join(errs...))
		},
	}
}

func newNetworkPruneCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "prune",
		Short: "Remove every network that has no running container",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := networkPaths()
			if err != nil {
				return err
			}
			gone, err := netuser.Prune(p.GraphRoot, p.RunRoot, nil)
			if err != nil {
				return networkError(err)
			}
			if len(gone) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Networks:")
				for _, n := range gone {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			return nil
		},
	}
	c.Flags().BoolP("force", "f", false, "do not ask (nook never asks)")
	return c
}

func newNetworkConnectCmd() *cobra.Command {
	var aliases []string
	c := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a stopped or created container to a network: it joins at its next start",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return networkError(e.ConnectNetwork(args[0], args[1], aliases))
		},
	}
	c.Flags().StringArrayVar(&aliases, "alias", nil, "another name the container has on the network")
	return engineCmd(c)
}

func newNetworkDisconnectCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a stopped or created container from a network",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return networkError(e.DisconnectNetwork(args[0], args[1]))
		},
	}
	c.Flags().BoolP("force", "f", false, "accepted for Docker's scripts; a running container is refused all the same")
	return engineCmd(c)
}
