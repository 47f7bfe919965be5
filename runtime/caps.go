package runtime

import (
	"fmt"
	"strings"
)

// LastCapability is the highest capability number this package knows
// (CAP_CHECKPOINT_RESTORE, Linux 5.9). Kernels may know fewer; see lastCap.
const LastCapability = 40

// capNames maps a capability number to its name, as in
// include/uapi/linux/capability.h.
var capNames = [LastCapability + 1]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is Docker's default capability set, in Docker's order.
var DefaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// ParseCapability returns the number of a capability named "CAP_NET_RAW",
// "NET_RAW" or "net_raw" (Docker's --cap-add accepts all three).
func ParseCapability(name string) (int, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range capNames {
		if c == n {
			return i, nil
		}
	}
	return -1, fmt.Errorf("unknown capability %q", name)
}

// CapabilityName returns the canonical name ("CAP_CHOWN") of capability c,
// or "" when c is unknown.
func CapabilityName(c int) string {
	if c < 0 || c > LastCapability {
		return ""
	}
	return capNames[c]
}

// AllCapabilities returns the names of every capability this package knows.
func AllCapabilities() []string {
	return append([]string(nil), capNames[:]...)
}

// CapabilityMask returns the bit mask (bit n = capability n) of names.
func CapabilityMask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		c, err := ParseCapability(n)
		if err != nil {
			return 0, err
		}
		m |= 1 << uint(c)
	}
	return m, nil
}
