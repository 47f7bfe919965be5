//go:build !nook_lean

package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/nook-containers/nook/internal/front"
)

// The lean CLI's table (internal/front/table.go) must say exactly what these cobra commands
// say: which run in the engine, which the lean engine has too (leanCommands; lean_test.go
// checks the lean build itself against the table), and which flags take a value.
// NOOK_UPDATE_FRONT_TABLE=1 rewrites it.
func TestFrontTable(t *testing.T) {
	want := frontTableFrom(newRootCmd())
	for path, c := range frontTableFrom(newRoot(leanCommands())) {
		if full, ok := want[path]; ok && full.Engine && !full.Group && full == c {
			full.Lean = true
			want[path] = full
		}
	}
	src := frontTableSource(want)
	if os.Getenv("NOOK_UPDATE_FRONT_TABLE") != "" {
		if err := os.WriteFile(frontTable, src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(frontTable)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, src) {
		t.Fatalf("%s is not what the commands say: run NOOK_UPDATE_FRONT_TABLE=1 go test ./cmd/nook-engine -run TestFrontTable", frontTable)
	}
	if len(front.Table) != len(want) {
		t.Fatalf("front.Table has %d commands, the cobra tree %d", len(front.Table), len(want))
	}
}
