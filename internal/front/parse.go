// Package front is the lean side of the nook CLI (cmd/nook): it reads just enough of the
// command line to know whether the command runs in the engine, and if so enters nook's user
// namespace and runs the engine there (Enter), without starting the engine's heavy binary
// outside it first. Anything it does not recognise for certain (help, an unknown flag, a
// command that runs outside the engine) it leaves to the engine binary, which parses the whole
// command line with cobra and does everything itself: the lean side is only a short cut.
//
// Which commands run in the engine, and which of their flags take a value, is in table.go,
// which the engine binary's tests write from its cobra commands and check on every run.
package front

import "strings"

// Command is what the lean CLI knows of one command.
type Command struct {
	Engine       bool   `json:"engine,omitempty"`       // it runs in the engine, in the user namespace
	Lean         bool   `json:"lean,omitempty"`         // the lean engine, bin/nook-engine-lean, has it
	Group        bool   `json:"group,omitempty"`        // it only holds subcommands
	Interspersed bool   `json:"interspersed,omitempty"` // flags may follow its arguments
	Values       string `json:"values,omitempty"`       // " --long -s ... " of the flags that take a value
	Bools        string `json:"bools,omitempty"`        // " --long -s ... " of the flags that do not
}

// Invocation is a command line the lean CLI can run itself.
type Invocation struct {
	Path    string // "run", "container ls", ...
	Lean    bool   // the lean engine has the command (Command.Lean)
	Globals Globals
	Network string // run's --network, if given
}

// Globals are the flags every command shares.
type Globals struct {
	Root, RunRoot, RootfsMode string
}

// Parse reads args (without the program name). ok is false when the engine binary must do it
// all: a command the table does not name, one that runs outside the engine, help, or a flag it
// does not know.
func Parse(args []string) (inv Invocation, ok bool) {
	i := 0
	global := func(a string) (handled, ok bool) {
		name, val, hasVal := strings.Cut(a, "=")
		var dst *string
		switch name {
		case "--root":
			dst = &inv.Globals.Root
		case "--runroot":
			dst = &inv.Globals.RunRoot
		case "--rootfs-mode":
			dst = &inv.Globals.RootfsMode
		default:
			return false, true
		}
		if !hasVal {
			if i+1 >= len(args) {
				return true, false
			}
			i++
			val = args[i]
		}
		*dst = val
		return true, true
	}
	// Global flags before the command.
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		handled, good := global(args[i])
		if !handled || !good {
			return inv, false
		}
	}
	var cmd Command
	for i < len(args) {
		word := args[i]
		if strings.HasPrefix(word, "-") {
			return inv, false
		}
		path := strings.TrimSpace(inv.Path + " " + word)
		c, found := Table[path]
		if !found {
			return inv, false
		}
		inv.Path, cmd = path, c
		i++
		if !c.Group {
			break
		}
	}
	if inv.Path == "" || cmd.Group || !cmd.Engine {
		return inv, false
	}
	inv.Lean = cmd.Lean
	// The command's own flags, up to its first argument unless flags may follow arguments. Help
	// (--help, and -h where it is not a flag of the command) is in no list: it goes to cobra.
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if cmd.Interspersed {
				continue
			}
			break
		}
		handled, good := global(a)
		if !good {
			return inv, false
		}
		if handled {
			continue
		}
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a, "=")
			if !strings.Contains(cmd.Values, " "+name+" ") {
				if known(cmd, name) {
					continue // a flag without a value
				}
				return inv, false
			}
			if !hasVal {
				if i+1 >= len(args) {
					return inv, false
				}
				i++
				val = args[i]
			}
			if (name == "--network" || name == "--net") && (inv.Path == "run" || inv.Path == "container run") {
				inv.Network = val // only run starts a container from its flags (front.Enter)
			}
			continue
		}
		// Shorthands: -it, -p8080:80, -e K=V.
		for j := 1; j < len(a); j++ {
			s := "-" + a[j:j+1]
			if strings.Contains(cmd.Values, " "+s+" ") {
				if j+1 == len(a) {
					i++ // the value is the next argument
					if i >= len(args) {
						return inv, false
					}
				}
				break // the rest of this argument is the value
			}
			if !known(cmd, s) {
				return inv, false
			}
		}
	}
	return inv, true
}

// known reports whether the command has the flag name ("--quiet" or "-q") that takes no value.
func known(cmd Command, name string) bool {
	return strings.Contains(cmd.Bools, " "+name+" ")
}
