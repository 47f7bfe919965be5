//go:build nook_lean

package main

import "github.com/spf13/cobra"

// imageCommands: the lean engine has none (images.go has the full engine's).
func imageCommands() []*cobra.Command { return nil }

// systemImageCommands: the lean engine has only `system info` (system_full.go has the rest).
func systemImageCommands() []*cobra.Command { return nil }

// containerImageCommands: none in the lean engine (images.go has the full engine's).
func containerImageCommands() []*cobra.Command { return nil }
