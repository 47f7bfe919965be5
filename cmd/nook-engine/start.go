package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func newStartCmd() *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more created or stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (attach || interactive) && len(args) > 1 {
				return &statusError{125, errors.New("you cannot attach to more than one container: start them one by one")}
			}
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			// A container of a user network starts from that network's user namespace.
			if done, err := rerunInNetwork(e, args); done {
				return err
			}
			var errs []error
			for _, ref := range args {
				if !attach && !interactive {
					if _, _, err := e.Start(context.Background(), ref, nil); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintln(cmd.OutOrStdout(), ref)
					continue
				}
				o := &engine.AttachOptions{Stdout: os.Stdout, Stderr: os.Stderr, DetachKeys: keys}
				if interactive {
					o.Stdin = os.Stdin
				}
				_, code, err := e.Start(context.Background(), ref, o)
				if errors.Is(err, engine.ErrDetached) {
					return nil
				}
				if err != nil {
					return &statusError{code, err}
				}
				if code != 0 {
					return &statusError{code: code}
				}
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "attach to the container's output and wait for it to end")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach the container's standard input")
	addDetachKeysFlag(c.Flags(), &detachKeys)
	return engineCmd(c)
}
