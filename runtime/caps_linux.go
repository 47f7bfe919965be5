package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capSets is the OCI capability sets as bit masks.
type capSets struct {
	bounding, effective, permitted, inheritable, ambient uint64
}

func capSetsFromSpec(c *specs.LinuxCapabilities) (capSets, error) {
	var s capSets
	var err error
	for _, f := range []struct {
		dst   *uint64
		names []string
		set   string
	}{
		{&s.bounding, c.Bounding, "bounding"},
		{&s.effective, c.Effective, "effective"},
		{&s.permitted, c.Permitted, "permitted"},
		{&s.inheritable, c.Inheritable, "inheritable"},
		{&s.ambient, c.Ambient, "ambient"},
	} {
		if *f.dst, err = CapabilityMask(f.names); err != nil {
			return s, fmt.Errorf("%s capabilities: %w", f.set, err)
		}
	}
	return s, nil
}

// lastCap is the highest capability the running kernel knows. Bits above it
// are dropped from every set: the kernel rejects them (runc does the same).
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return LastCapability
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return LastCapability
	}
	return n
}

func capMaskUpTo(last int) uint64 {
	if last >= 63 {
		return ^uint64(0)
	}
	return 1<<uint(last+1) - 1
}

// dropBoundingSet removes from the calling thread's bounding set every
// capability not in keep. It needs CAP_SETPCAP, so it runs before the
// credential change.
func dropBoundingSet(keep uint64, last int) error {
	for c := 0; c <= last; c++ {
		if keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL {
				continue // the kernel does not know this one
			}
			return fmt.Errorf("drop %s from the bounding set: %w", capName(c), err)
		}
	}
	return nil
}

func capName(c int) string {
	if n := CapabilityName(c); n != "" {
		return n
	}
	return "capability " + strconv.Itoa(c)
}

// applyCaps sets the calling thread's permitted, effective and inheritable
// sets (capset, version 3), then its ambient set.
func applyCaps(s capSets, last int) error {
	valid := capMaskUpTo(last)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		shift := uint(32 * i)
		data[i].Effective = uint32((s.effective & valid) >> shift)
		data[i].Permitted = uint32((s.permitted & valid) >> shift)
		data[i].Inheritable = uint32((s.inheritable & valid) >> shift)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		if s.ambient == 0 && err == unix.EINVAL {
			return nil // kernel without ambient capabilities (< 4.3)
		}
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for c := 0; c <= last; c++ {
		if s.ambient&(1<<uint(c)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s (it must be permitted and inheritable too): %w", capName(c), err)
		}
	}
	return nil
}
