package overlay

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mode is how a container's root filesystem is assembled from its image's layers.
type Mode string

const (
	ModeAuto    Mode = "auto"
	ModeKernel  Mode = "overlay"        // kernel overlayfs mounted inside the user namespace
	ModeFuse    Mode = "fuse-overlayfs" // the FUSE implementation, where the kernel refuses
	ModeCopy    Mode = "copy"           // every layer copied: slow, but works everywhere
	probeFile        = "overlay-probe"
	fuseProgram      = "fuse-overlayfs"
)

// ParseMode accepts the user's spelling of a mode.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModeKernel, ModeFuse, ModeCopy:
		return Mode(s), nil
	case "kernel":
		return ModeKernel, nil
	case "fuse":
		return ModeFuse, nil
	case "vfs":
		return ModeCopy, nil
	}
	return "", fmt.Errorf("unknown rootfs mode %q: use auto, overlay, fuse-overlayfs or copy", s)
}

// Choice is the mode in use and why.
type Choice struct {
	Mode   Mode
	Reason string // why auto picked it, or "requested"
}

// Choose resolves auto to a concrete mode. It must run inside the user namespace (that is
// where overlay has to work). The kernel probe's answer is kept in runRoot, which is lost at
// reboot, so a kernel upgrade is noticed.
func Choose(requested Mode, runRoot string) (Choice, error) {
	switch requested {
	case ModeKernel, ModeCopy:
		return Choice{requested, "requested"}, nil
	case ModeFuse:
		if _, err := FuseProgram(); err != nil {
			return Choice{}, err
		}
		return Choice{requested, "requested"}, nil
	}
	kerr := probeKernel(runRoot)
	if kerr == nil {
		return Choice{ModeKernel, "kernel overlayfs works in the user namespace"}, nil
	}
	if _, err := FuseProgram(); err == nil {
		return Choice{ModeFuse, "kernel overlayfs refused (" + kerr.Error() + ")"}, nil
	}
	return Choice{ModeCopy, "kernel overlayfs refused (" + kerr.Error() + ") and fuse-overlayfs is not usable"}, nil
}

// FuseProgram finds fuse-overlayfs and checks that /dev/fuse can be opened.
func FuseProgram() (string, error) {
	p, err := exec.LookPath(fuseProgram)
	if err != nil {
		return "", errors.New("fuse-overlayfs is not installed (apt-get install fuse-overlayfs)")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("cannot open /dev/fuse (%v): it is usually mode 0666", errors.Unwrap(err))
	}
	f.Close()
	return p, nil
}

// StorageDriver gives the containers/storage driver and its options for a mode.
func StorageDriver(m Mode, singleID bool) (string, []string, error) {
	switch m {
	case ModeKernel:
		opts := []string{}
		if singleID {
			opts = append(opts, "overlay.ignore_chown_errors=true")
		}
		return "overlay", opts, nil
	case ModeFuse:
		p, err := FuseProgram()
		if err != nil {
			return "", nil, err
		}
		opts := []string{"overlay.mount_program=" + p}
		if singleID {
			opts = append(opts, "overlay.ignore_chown_errors=true")
		}
		return "overlay", opts, nil
	case ModeCopy:
		opts := []string{}
		if singleID {
			opts = append(opts, "vfs.ignore_chown_errors=true")
		}
		return "vfs", opts, nil
	}
	return "", nil, fmt.Errorf("rootfs mode %q is not resolved", m)
}

// probeKernel mounts a tiny overlay the way the store will (userxattr, as required inside a
// user namespace) and remembers the answer.
func probeKernel(runRoot string) error {
	release, res, cached := probed(runRoot)
	if cached {
		if res == "ok" {
			return nil
		}
		return errors.New(res)
	}
	cache := filepath.Join(runRoot, probeFile)
	err := mountProbe(runRoot)
	res = "ok"
	if err != nil {
		res = err.Error()
	}
	_ = os.WriteFile(cache, []byte(release+"\n"+res), 0o600)
	return err
}

// probed returns the running kernel's release and the probe's cached answer for it ("ok" or
// why not), if the run root has one.
func probed(runRoot string) (release, res string, cached bool) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release = unix.ByteSliceToString(uts.Release[:])
	b, err := os.ReadFile(filepath.Join(runRoot, probeFile))
	if err != nil {
		return release, "", false
	}
	rel, res, _ := strings.Cut(string(b), "\n")
	return release, res, rel == release
}

// KernelProbed reports whether the run root's cached probe says that kernel overlayfs works in
// the user namespace on this kernel (what auto then picks); false when it has not been probed.
func KernelProbed(runRoot string) bool {
	_, res, cached := probed(runRoot)
	return cached && res == "ok"
}

func mountProbe(runRoot string) error {
	dir, err := os.MkdirTemp(runRoot, "overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work,userxattr", dir, dir, dir)
	if err := unix.Mount("overlay", filepath.Join(dir, "merged"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return unix.Unmount(filepath.Join(dir, "merged"), unix.MNT_DETACH)
}
