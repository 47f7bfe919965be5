//go:build !nook_lean

package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func init() {
	inspectImage = func(e *engine.Engine, name string) (any, error) {
		return e.InspectImage(context.Background(), name)
	}
}

func newImageInspectCmd() *cobra.Command {
	return inspectCommand("inspect [OPTIONS] IMAGE [IMAGE...]", "Show an image's details as JSON", "image")
}

func newInspectCmd() *cobra.Command {
	c := inspectCommand("inspect [OPTIONS] NAME|ID [NAME|ID...]", "Show the details of images (and containers) as JSON", "")
	return c
}
