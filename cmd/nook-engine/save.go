//go:build !nook_lean

package main

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nook-containers/nook/engine"
)

func newSaveCmd() *cobra.Command { return saveCommand() }

func newImageSaveCmd() *cobra.Command { return saveCommand() }

func saveCommand() *cobra.Command {
	var o engine.SaveOptions
	var quiet bool
	c := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Write images to a tar archive (standard output by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Images = args
			if o.Output == "" {
				if term.IsTerminal(int(os.Stdout.Fd())) {
					return errors.New("refusing to write an archive to a terminal: use -o FILE, or redirect standard output")
				}
				o.Stdout = cmd.OutOrStdout()
			}
			// The archive may be standard output: progress goes to standard error, and only
			// when asked for (it is noise in a pipe).
			if !quiet && o.Output != "" {
				o.Progress = progressWriter(false)
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.Save(context.Background(), o)
		},
	}
	c.Flags().StringVarP(&o.Output, "output", "o", "", "write to this file instead of standard output")
	c.Flags().StringVar(&o.Format, "format", engine.FormatDocker, "archive format: docker-archive or oci-archive")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return engineCmd(c)
}
