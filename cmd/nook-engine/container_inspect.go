package main

import (
	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

func init() {
	inspectContainer = func(e *engine.Engine, name string) (any, error) { return e.InspectContainer(name) }
}

func newContainerInspectCmd() *cobra.Command {
	return inspectCommand("inspect [OPTIONS] CONTAINER [CONTAINER...]", "Show a container's details as JSON", "container")
}
