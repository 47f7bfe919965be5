//go:build !nook_lean

package main

import "github.com/spf13/cobra"

func newTagCmd() *cobra.Command { return tagCommand() }

func newImageTagCmd() *cobra.Command { return tagCommand() }

func tagCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Give an image another name",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.Tag(args[0], args[1])
		},
	}
	return engineCmd(c)
}
