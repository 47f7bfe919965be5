package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nook-containers/nook/engine"
)

func newCpCmd() *cobra.Command {
	var o engine.CopyOptions
	var quiet bool
	c := &cobra.Command{
		Use: "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n" +
			"  nook cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files between a container and the host",
		Long: "Copy files between a container and the host. \"-\" as DEST_PATH writes a tar archive of SRC_PATH to\n" +
			"standard output; \"-\" as SRC_PATH reads a tar archive from standard input and extracts it into the\n" +
			"directory DEST_PATH. What is copied into a container belongs to its root, unless -a keeps the\n" +
			"source's uid/gid.",
		Args: rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[1] == "-" && term.IsTerminal(int(os.Stdout.Fd())) {
				return errors.New("refusing to write a tar archive to a terminal: redirect standard output, or give a destination path")
			}
			// As docker cp: a progress line on a terminal only, never into a pipe or a file,
			// and never when the archive itself is standard output.
			o.Progress = !quiet && args[1] != "-" &&
				term.IsTerminal(int(os.Stdout.Fd())) && term.IsTerminal(int(os.Stderr.Fd()))
			o.Stdin, o.Stdout, o.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.Copy(args[0], args[1], o)
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.Archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	f.BoolVarP(&o.FollowLink, "follow-link", "L", false, "always follow a symbolic link in SRC_PATH")
	f.BoolVarP(&quiet, "quiet", "q", false, "suppress the progress line on a terminal")
	return engineCmd(c)
}
