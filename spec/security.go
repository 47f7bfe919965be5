package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SeccompUnconfined is the --security-opt seccomp= value for no filter.
const SeccompUnconfined = "unconfined"

// seccompProfile is the filter of s (whose capabilities are set: Docker's
// profile allows some system calls only with the capability that governs
// them). A privileged container has none, as with Docker.
func seccompProfile(o Options, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	switch {
	case o.Privileged, o.Seccomp == SeccompUnconfined:
		return nil, nil
	case o.Seccomp == "":
		p, err := mobyseccomp.GetDefaultProfile(s)
		if err != nil {
			return nil, fmt.Errorf("seccomp default profile: %w", err)
		}
		return p, nil
	}
	p, err := mobyseccomp.LoadProfile(o.Seccomp, s)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return p, nil
}

// userMounts orders the user's mounts so that a parent is mounted before
// what is mounted under it (Docker sorts them the same way); the order
// given is kept otherwise.
func userMounts(ms []specs.Mount) []specs.Mount {
	out := slices.Clone(ms)
	depth := func(m specs.Mount) int {
		return strings.Count(path.Clean("/"+m.Destination), "/")
	}
	slices.SortStableFunc(out, func(a, b specs.Mount) int { return depth(a) - depth(b) })
	return out
}
