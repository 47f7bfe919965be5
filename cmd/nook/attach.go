package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newAttachCmd() *cobra.Command {
	var noStdin bool
	c := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach to a running container's input and output (Ctrl-P Ctrl-Q detaches)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			code, err := e.Attach(args[0], noStdin, engine.AttachOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			if errors.Is(err, engine.ErrDetached) {
				return nil
			}
			if err != nil {
				return &statusError{code, err}
			}
			if code != 0 {
				return &statusError{code: code}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach standard input")
	return engineCmd(c)
}
