package cgroups

import (
	"os"

	"golang.org/x/sys/unix"
)

// Mount is where the host's cgroup file system is.
const Mount = "/sys/fs/cgroup"

// DetectHost is Detect for this process on this host.
func DetectHost() Delegation {
	var st unix.Statfs_t
	isV2 := unix.Statfs(Mount, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	isHybrid := !isV2 && unix.Statfs(Mount+"/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	self, _ := os.ReadFile("/proc/self/cgroup")
	return Detect(Mount, string(self), os.Getuid(), isV2, isHybrid)
}
