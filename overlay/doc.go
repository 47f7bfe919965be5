// Package overlay owns a container's root filesystem: it picks how layers are assembled
// (kernel overlayfs in the user namespace, fuse-overlayfs, or a copy) and, inside the
// container, mounts /proc, /dev and /sys, pivots into the root and masks what must stay hidden.
package overlay
