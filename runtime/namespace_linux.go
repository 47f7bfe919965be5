package runtime

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// UnshareCgroupNamespace gives the calling thread a new cgroup namespace
// when s asks for one (a "cgroup" namespace without a path). The engine
// does not clone it: a cgroup namespace's root is the cgroup its creator
// is in at that moment (kernel/cgroup/namespace.c), and the kernel creates
// a child's namespaces before it places the child in the cgroup given to
// clone3 (CLONE_INTO_CGROUP), so only the init, already in its cgroup,
// can make the namespace root there. runc does the same.
func UnshareCgroupNamespace(s *specs.Spec) error {
	if s.Linux == nil {
		return nil
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace && ns.Path == "" {
			if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("unshare the cgroup namespace: %w", err)
			}
		}
	}
	return nil
}
