package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nook-containers/nook/engine"
	"github.com/nook-containers/nook/monitor"
)

// addDetachKeysFlag adds --detach-keys, Docker's flag, to a command that attaches a terminal.
func addDetachKeysFlag(f *pflag.FlagSet, keys *string) {
	f.StringVar(keys, "detach-keys", monitor.DefaultDetachKeys, "the key sequence that detaches from a container's terminal: comma-separated keys, each a character or ctrl-<value> (\"\" never detaches)")
}

// parseDetachKeys reads --detach-keys; a bad sequence is an error of nook's (exit 125).
func parseDetachKeys(spec string) ([]byte, error) {
	keys, err := monitor.ParseDetachKeys(spec)
	if err != nil {
		return nil, &statusError{125, err}
	}
	return keys, nil
}

func newAttachCmd() *cobra.Command {
	var noStdin bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach to a running container's input and output (Ctrl-P Ctrl-Q detaches, or --detach-keys)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			code, err := e.Attach(args[0], noStdin, engine.AttachOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, DetachKeys: keys})
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
	addDetachKeysFlag(c.Flags(), &detachKeys)
	return engineCmd(c)
}
