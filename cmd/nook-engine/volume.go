package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newVolumeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "volume",
		Short: "Manage named volumes",
		Args:  rangeArgs(0, 0),
	}
	c.AddCommand(newVolumeCreateCmd(), newVolumeLsCmd(), newVolumeRmCmd(), newVolumeInspectCmd(), newVolumePruneCmd())
	return c
}

// withEngine runs fn with the store open.
func withEngine(fn func(e *engine.Engine) error) error {
	e, err := openEngine()
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(e)
}

func newVolumeCreateCmd() *cobra.Command {
	return engineCmd(&cobra.Command{
		Use:   "create [NAME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return withEngine(func(e *engine.Engine) error {
				v, err := e.VolumeCreate(name)
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), v.Name)
				}
				return err
			})
		},
	})
}

func newVolumeLsCmd() *cobra.Command {
	var quiet bool
	c := engineCmd(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(func(e *engine.Engine) error {
				vs, err := e.Volumes()
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
				if !quiet {
					fmt.Fprintln(w, "DRIVER\tVOLUME NAME")
				}
				for _, v := range vs {
					if quiet {
						fmt.Fprintln(w, v.Name)
					} else {
						fmt.Fprintf(w, "%s\t%s\n", v.Driver, v.Name)
					}
				}
				return w.Flush()
			})
		},
	})
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only the names")
	return c
}

func newVolumeRmCmd() *cobra.Command {
	var force bool
	c := engineCmd(&cobra.Command{
		Use:     "rm VOLUME...",
		Aliases: []string{"remove"},
		Short:   "Remove volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(func(e *engine.Engine) error {
				var first error
				for _, n := range args {
					if err := e.VolumeRemove(n, force); err != nil {
						if first == nil {
							first = err
						} else {
							cmd.PrintErrln("Error:", err)
						}
						continue
					}
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
				return first
			})
		},
	})
	c.Flags().BoolVarP(&force, "force", "f", false, "remove even a volume in use")
	return c
}

func newVolumeInspectCmd() *cobra.Command {
	return engineCmd(&cobra.Command{
		Use:   "inspect VOLUME...",
		Short: "Show volumes in JSON",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(func(e *engine.Engine) error {
				var vs []engine.Volume
				for _, n := range args {
					v, err := e.VolumeInspect(n)
					if err != nil {
						return err
					}
					vs = append(vs, v)
				}
				b, _ := json.MarshalIndent(vs, "", "    ")
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			})
		},
	})
}

func newVolumePruneCmd() *cobra.Command {
	c := engineCmd(&cobra.Command{
		Use:   "prune",
		Short: "Remove every volume no container uses",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(func(e *engine.Engine) error {
				gone, err := e.VolumePrune()
				for _, n := range gone {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
				return err
			})
		},
	})
	c.Flags().BoolP("force", "f", false, "do not ask (nook never asks)")
	return c
}
