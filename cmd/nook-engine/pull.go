//go:build !nook_lean

package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/term"

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

// progressWriter is where containers/image reports a transfer: standard error, with
// progress bars when the user watches a terminal (standard output and standard error both
// are one), and as plain lines otherwise ("Copying blob sha256:..."); nowhere with -q.
// containers/image draws bars (vbauerster/mpb) only when it is given the terminal's *os.File
// itself, so the plain case hides the file behind another writer.
func progressWriter(quiet bool) io.Writer {
	if quiet {
		return nil
	}
	if term.IsTerminal(int(os.Stdout.Fd())) && term.IsTerminal(int(os.Stderr.Fd())) {
		return os.Stderr
	}
	return plainWriter{os.Stderr}
}

// plainWriter is a writer that is not a file, hence never a terminal to containers/image.
type plainWriter struct{ w io.Writer }

func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
