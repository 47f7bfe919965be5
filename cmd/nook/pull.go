package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"

	"github.com/nook-containers/nook/engine"
)

func newPullCmd() *cobra.Command { return pullCommand("pull [OPTIONS] NAME[:TAG|@DIGEST]") }

func newImagePullCmd() *cobra.Command { return pullCommand("pull [OPTIONS] NAME[:TAG|@DIGEST]") }

func pullCommand(use string) *cobra.Command {
	var quiet, tlsOn bool
	c := &cobra.Command{
		Use:   use,
		Short: "Download an image from a registry",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			res, err := e.Pull(context.Background(), engine.PullOptions{
				Name: args[0], TLSVerify: tlsVerify(cmd, tlsOn), Progress: progressWriter(quiet),
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !quiet {
				if res.Digest != "" {
					fmt.Fprintf(out, "Digest: %s\n", res.Digest)
				}
				status := "Downloaded newer image for"
				if !res.Updated {
					status = "Image is up to date for"
				}
				fmt.Fprintf(out, "Status: %s %s\n", status, reference.FamiliarString(res.Ref))
			}
			fmt.Fprintln(out, res.Ref.String())
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image's name, no progress")
	addTLSFlag(c, &tlsOn)
	return engineCmd(c)
}

// addTLSFlag adds --tls-verify. Unset, registries on the loopback interface are trusted
// without TLS (as Docker does), all others need it.
func addTLSFlag(c *cobra.Command, v *bool) {
	c.Flags().BoolVar(v, "tls-verify", true, "require HTTPS and check the registry's certificate (default: yes, except for a registry on localhost)")
}

func tlsVerify(c *cobra.Command, v bool) engine.TLSVerify {
	if !c.Flags().Changed("tls-verify") {
		return engine.TLSDefault
	}
	if v {
		return engine.TLSOn
	}
	return engine.TLSOff
}

// progressWriter is where containers/image reports a transfer: standard error, as bars on a
// terminal and as plain lines otherwise; nowhere with -q.
func progressWriter(quiet bool) io.Writer {
	if quiet {
		return nil
	}
	return os.Stderr
}
