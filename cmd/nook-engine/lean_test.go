//go:build nook_lean

package main

import (
	"testing"

	"github.com/nook-containers/nook/internal/front"
)

// The lean CLI sends a command to the lean engine where internal/front/table.go says Lean: the
// lean engine must have each such command with the same flags, and no engine command that the
// table leaves to the full engine (the table is written from the full build, which knows the
// lean engine's commands as leanCommands; this is the lean build itself).
func TestLeanFrontTable(t *testing.T) {
	lean := frontTableFrom(newRootCmd())
	for path, c := range front.Table {
		if !c.Lean {
			continue
		}
		got, ok := lean[path]
		if !ok {
			t.Errorf("%q is Lean in the table, but the lean engine has no such command", path)
			continue
		}
		got.Lean = true
		if got != c {
			t.Errorf("%q: the lean engine's command is %+v, the table's %+v", path, got, c)
		}
	}
	for path, c := range lean {
		if c.Engine && !c.Group && !front.Table[path].Lean {
			t.Errorf("the lean engine has %q, which the table does not mark Lean: NOOK_UPDATE_FRONT_TABLE=1 make test-unit", path)
		}
	}
}
