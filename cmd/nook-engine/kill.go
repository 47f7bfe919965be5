package main

import (
	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newKillCmd() *cobra.Command {
	var signal string
	c := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Send a signal (default SIGKILL) to one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := engine.ParseSignal(signal)
			if err != nil {
				return err
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return eachContainer(cmd, args, func(ref string) error { return e.Kill(ref, sig) })
		},
	}
	c.Flags().StringVarP(&signal, "signal", "s", "KILL", "the signal: a name (TERM, SIGHUP) or a number")
	return engineCmd(c)
}
