package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Each rootfs mode, forced by --rootfs-mode (and NOOK_ROOTFS_MODE): nook info
// reports it, the container's root is mounted that way, and files keep their
// mapped owners.
func TestRootfsModes(t *testing.T) {
	for _, c := range []struct {
		mode, driver string
		rootType     func(string) bool
		want         string
	}{
		{"overlay", "overlay", func(s string) bool { return s == "overlay" }, "overlay"},
		{"fuse-overlayfs", "overlay", func(s string) bool { return s == "fuse.fuse-overlayfs" }, "fuse.fuse-overlayfs"},
		{"copy", "vfs", func(s string) bool { return s != "overlay" && !strings.HasPrefix(s, "fuse") }, "neither overlay nor fuse"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			if c.mode == "fuse-overlayfs" {
				if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
					t.Fatalf("fuse-overlayfs is not installed (apt-get install fuse-overlayfs)")
				}
				fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					skipf(t, "/dev/fuse is not usable by this user (%v); distributions ship it mode 0666", err)
				}
				unix.Close(fd)
			}
			requireSubIDs(t)
			s := newStore(t, "mode-"+c.mode, storeOptions{flags: []string{"--rootfs-mode", c.mode}}, false)
			kv := parseInfo(t, s.mustNook(t, "info").Stdout)
			assertEqual(t, "nook info rootfsMode with --rootfs-mode "+c.mode, kv["storage.rootfsMode"], c.mode)
			assertEqual(t, "nook info driver with --rootfs-mode "+c.mode, kv["storage.driver"], c.driver)

			// The environment variable selects the same mode.
			plain := *s
			plain.flags = nil
			plain.env = append(append([]string(nil), s.env...), "NOOK_ROOTFS_MODE="+c.mode)
			assertEqual(t, "nook info rootfsMode with NOOK_ROOTFS_MODE="+c.mode, parseInfo(t, plain.mustNook(t, "info").Stdout)["storage.rootfsMode"], c.mode)

			out := s.sh(t, "cat /proc/mounts")
			var rootType string
			for _, m := range containerMounts(out) {
				if m[1] == "/" {
					rootType = m[2] // the last one is on top
				}
			}
			if !c.rootType(rootType) {
				t.Errorf("--rootfs-mode %s: the container's root is of type %q, want %s\n%s", c.mode, rootType, c.want, out)
			}
			// Writes work and land with the mapped owner.
			assertEqual(t, "write and read back", s.sh(t, "echo hello > /root/f && cat /root/f"), "hello\n")
			checkFileOwnership(t, s)
		})
	}
}
