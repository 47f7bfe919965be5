package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newInfoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "info",
		Short: "Show how nook runs containers on this host",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			in := e.Info()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "host:\n  kernel: %s\n  user: %s\n", in.Kernel, in.User)
			fmt.Fprintf(out, "idmap:\n  mode: %s\n  uidmap: %s\n  gidmap: %s\n  source: %s\n", in.IDMap.Mode, in.IDMap.UIDMap, in.IDMap.GIDMap, orNone(in.IDMap.Source))
			if in.IDMap.Warning != "" {
				fmt.Fprintf(out, "  warning: %q\n", strings.TrimPrefix(in.IDMap.Warning, "nook: warning: "))
			}
			fmt.Fprintf(out, "  namespace: %s\n", in.Namespace)
			fmt.Fprintf(out, "storage:\n  driver: %s\n  rootfsMode: %s\n  rootfsReason: %s\n  graphRoot: %s\n  runRoot: %s\n  images: %d\n  containers: %d\n",
				in.Driver, in.Rootfs.Mode, in.Rootfs.Reason, in.Paths.GraphRoot, in.Paths.RunRoot, in.Images, in.Containers)
			fmt.Fprintf(out, "network:\n  backends: %s\n", strings.Join(in.Network, ", "))
			for _, n := range in.NetworkNotes {
				fmt.Fprintf(out, "  # %s\n", n)
			}
			fmt.Fprintf(out, "monitor:\n  idle: %s\n", in.MonitorIdle)
			fmt.Fprintf(out, "cgroups:\n  version: %s\n  delegatedControllers: %s\n", in.Cgroups.Version, orNone(strings.Join(in.Cgroups.Controllers, " ")))
			if in.Cgroups.Note != "" {
				fmt.Fprintf(out, "  # %s\n", in.Cgroups.Note)
			}
			return nil
		},
	}
	return engineCmd(c)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

var _ = os.Stdout
var _ engine.Info
