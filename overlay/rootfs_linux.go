package overlay

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// This file is the container init's rootfs sequence. SetupRootfs runs as uid
// 0 with every capability of the user namespace, as PID 1 of a new PID
// namespace, in new mount, UTS, IPC, network and cgroup namespaces; its
// mount namespace is a copy of the caller's, where s.Root.Path is already
// the mounted root filesystem. The order is runc's
// (libcontainer/rootfs_linux.go, prepareRootfs and finalizeRootfs).

// MountError is a failed mount(2) (or mount_setattr, umount2, pivot_root)
// with what it was asked to do.
type MountError struct {
	Op     string // "mount", "remount", "pivot_root", ...
	Source string
	Target string
	Type   string
	Flags  uintptr
	Data   string
	Err    error
}

func (e *MountError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Source != "" {
		fmt.Fprintf(&b, " %s", e.Source)
	}
	if e.Target != "" {
		fmt.Fprintf(&b, " on %s", e.Target)
	}
	if e.Type != "" {
		fmt.Fprintf(&b, " type %s", e.Type)
	}
	if e.Flags != 0 {
		fmt.Fprintf(&b, " flags %#x", e.Flags)
	}
	if e.Data != "" {
		fmt.Fprintf(&b, " data %q", e.Data)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *MountError) Unwrap() error { return e.Err }

// sysMount calls mount(2); shown is the target as the error should name it
// (target itself may be a /proc/self/fd path).
func sysMount(source, target, shown, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &MountError{Op: "mount", Source: source, Target: shown, Type: fstype, Flags: flags, Data: data, Err: err}
	}
	return nil
}

// SetupRootfs builds the container's root from s and pivots into it:
// / becomes a recursive slave, the rootfs is bind-mounted onto itself, every
// s.Mounts entry is mounted under it in order (targets resolved inside the
// rootfs, created when missing), the /dev symlinks are made, pivot_root
// switches to it and the old root is detached, then s.Linux.MaskedPaths,
// s.Linux.ReadonlyPaths and a read-only root (s.Root.Readonly) are applied.
// A relative s.Root.Path is taken from the working directory (the bundle).
// On return the working directory is the new "/".
func SetupRootfs(s *specs.Spec) error {
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("setup rootfs: the spec has no root path")
	}
	rootfs, err := filepath.Abs(s.Root.Path)
	if err == nil {
		rootfs, err = filepath.EvalSymlinks(rootfs)
	}
	if err != nil {
		return fmt.Errorf("setup rootfs: %w", err)
	}

	// Nothing done here may propagate back to the caller's namespace.
	if err := sysMount("", "/", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	// pivot_root needs the new root to be a mount point.
	if err := sysMount(rootfs, rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()

	for _, m := range s.Mounts {
		if err := mountEntry(root, m); err != nil {
			return err
		}
	}
	if err := createDevSymlinks(root); err != nil {
		return err
	}
	if err := pivotRoot(rootfs); err != nil {
		return err
	}
	if s.Linux != nil {
		if p := s.Linux.RootfsPropagation; p != "" {
			flag, ok := propagationFlags[p]
			if !ok {
				return fmt.Errorf("rootfs propagation %q: unknown", p)
			}
			if err := sysMount("", "/", "/", "", flag, ""); err != nil {
				return err
			}
		}
		// Before /proc/sys is made read-only, as runc does.
		if err := writeSysctls(s.Linux.Sysctl); err != nil {
			return err
		}
		for _, p := range s.Linux.MaskedPaths {
			if err := maskPath(p); err != nil {
				return err
			}
		}
		for _, p := range s.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return err
			}
		}
	}
	if s.Root.Readonly {
		if err := remountBind("/", unix.MS_RDONLY, true); err != nil {
			return fmt.Errorf("make the root read-only: %w", err)
		}
	}
	return nil
}

// mountOpts is an OCI mount's options split the way mount(2) wants them.
type mountOpts struct {
	flags       uintptr   // mount(2) flags
	propagation []uintptr // applied one by one after the mount
	recursiveRO bool      // "rro": mount_setattr(AT_RECURSIVE) read-only
	data        string    // filesystem options
}

var propagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// mountFlags are the options that are flags; clear is true for the
// options that turn a flag off ("rw", "suid", ...).
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"nosuid":        {false, unix.MS_NOSUID},
	"suid":          {true, unix.MS_NOSUID},
	"nodev":         {false, unix.MS_NODEV},
	"dev":           {true, unix.MS_NODEV},
	"noexec":        {false, unix.MS_NOEXEC},
	"exec":          {true, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"remount":       {false, unix.MS_REMOUNT},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"atime":         {true, unix.MS_NOATIME},
	"noatime":       {false, unix.MS_NOATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"defaults":      {false, 0},
}

func parseMountOptions(options []string) mountOpts {
	var o mountOpts
	var data []string
	for _, opt := range options {
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
			} else {
				o.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[opt]; ok {
			o.propagation = append(o.propagation, p)
			continue
		}
		if opt == "rro" {
			o.recursiveRO = true
			continue
		}
		data = append(data, opt)
	}
	o.data = strings.Join(data, ",")
	return o
}

// mountEntry mounts m under the rootfs opened as root.
func mountEntry(root *os.File, m specs.Mount) error {
	o := parseMountOptions(m.Options)
	if m.Type == "bind" {
		o.flags |= unix.MS_BIND
	}
	bind := o.flags&unix.MS_BIND != 0
	kind := mkDir
	if bind {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
		}
		if !fi.IsDir() {
			kind = mkFile
		}
	}
	// procfs and sysfs may not be mounted through a symlink, as runc
	// refuses it (CVE-2019-19921): the masked and read-only paths are
	// defined under /proc and /sys.
	noSymlinks := m.Type == "proc" || m.Type == "sysfs"
	target, err := openInRoot(root, m.Destination, kind, noSymlinks)
	if err != nil {
		return fmt.Errorf("mount %s: target: %w", m.Destination, err)
	}
	// A target that resolves to the root itself (a symlink to "/" planted
	// in the image or a volume) would hide the whole root filesystem.
	if same, err := sameFile(root, target); err != nil || same {
		target.Close()
		if err == nil {
			err = errors.New("it resolves to the container's root (through a symlink?): refusing to mount over it")
		}
		return fmt.Errorf("mount %s: target: %w", m.Destination, err)
	}
	err = mountOnFd(m, o, target, bind)
	target.Close()
	if err != nil && m.Type == "sysfs" && errors.Is(err, unix.EPERM) {
		// sysfs can only be mounted by the owner of the network namespace.
		// A joined namespace may not be ours: show the caller's /sys
		// instead, recursively read-only (runc does the same).
		fallback := specs.Mount{Destination: m.Destination, Type: "bind", Source: "/sys",
			Options: []string{"rbind", "nosuid", "noexec", "nodev", "rro"}}
		if target, err = openInRoot(root, m.Destination, mkDir, true); err != nil {
			return fmt.Errorf("mount %s: target: %w", m.Destination, err)
		}
		err = mountOnFd(fallback, parseMountOptions(fallback.Options), target, true)
		target.Close()
	}
	return err
}

func sameFile(a, b *os.File) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Fstat(int(a.Fd()), &sa); err != nil {
		return false, err
	}
	if err := unix.Fstat(int(b.Fd()), &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

func mountOnFd(m specs.Mount, o mountOpts, target *os.File, bind bool) error {
	tpath := procFdPath(target)
	if bind {
		// A bind mount ignores every flag but MS_REC; the others need a
		// remount of the new mount.
		if err := sysMount(m.Source, tpath, m.Destination, "", o.flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return err
		}
	} else {
		typ := m.Type
		if err := sysMount(m.Source, tpath, m.Destination, typ, o.flags, o.data); err != nil {
			return err
		}
	}
	rest := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if !(bind && rest != 0) && len(o.propagation) == 0 && !o.recursiveRO {
		return nil
	}
	// The descriptor names the directory under the new mount: open the
	// path again to reach the mount itself.
	mnt, err := reopenPath(target)
	if err != nil {
		return fmt.Errorf("mount %s: reopen: %w", m.Destination, err)
	}
	defer mnt.Close()
	mpath := procFdPath(mnt)
	if bind && rest != 0 {
		if err := remountBind(mpath, rest, false); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	for _, p := range o.propagation {
		if err := sysMount("", mpath, m.Destination, "", p, ""); err != nil {
			return err
		}
	}
	if o.recursiveRO {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return &MountError{Op: "mount_setattr rro", Target: m.Destination, Err: err}
		}
	}
	return nil
}

func procFdPath(f *os.File) string {
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd())
}

// reopenPath opens again the path an O_PATH descriptor was opened with, so
// that the lookup crosses a mount made on it since. The path comes from
// the kernel (/proc/self/fd), which is safe: the rootfs is not yet
// reachable by anything of the container.
func reopenPath(f *os.File) (*os.File, error) {
	p, err := os.Readlink(procFdPath(f))
	if err != nil {
		return nil, err
	}
	return os.OpenFile(p, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
}

// statfsToMount maps the statfs(2) f_flags a remount in a user namespace
// must keep (the kernel locks them on mounts inherited from a more
// privileged namespace: fs/namespace.c, can_change_locked_flags) to
// mount(2) flags.
var statfsToMount = []struct{ st, ms uintptr }{
	{unix.ST_RDONLY, unix.MS_RDONLY},
	{unix.ST_NOSUID, unix.MS_NOSUID},
	{unix.ST_NODEV, unix.MS_NODEV},
	{unix.ST_NOEXEC, unix.MS_NOEXEC},
	{unix.ST_NOATIME, unix.MS_NOATIME},
	{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	{unix.ST_RELATIME, unix.MS_RELATIME},
}

const atimeFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_NODIRATIME

// lockedFlags returns flags with the restrictions and the atime mode the
// mount at path already has added in, so that a remount keeps them.
func lockedFlags(path string, flags uintptr) (uintptr, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	flags &^= atimeFlags
	for _, f := range statfsToMount {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	return flags, nil
}

// remountBind changes the flags of the bind mount at path. In a user namespace
// the kernel refuses (EPERM) to clear a locked flag, so with keep the
// existing flags are added first; without it they are added only after an
// EPERM, so that a mount that may change keeps what was asked.
func remountBind(path string, flags uintptr, keep bool) error {
	var err error
	if keep {
		if flags, err = lockedFlags(path, flags); err != nil {
			return err
		}
	}
	const base = unix.MS_BIND | unix.MS_REMOUNT
	err = unix.Mount("", path, "", base|flags, "")
	if err == unix.EPERM && !keep {
		if flags, err = lockedFlags(path, flags); err != nil {
			return err
		}
		err = unix.Mount("", path, "", base|flags, "")
	}
	if err != nil {
		return &MountError{Op: "remount", Target: path, Flags: base | flags, Err: err}
	}
	return nil
}

// createDevSymlinks makes the links runc makes in /dev (setupDevSymlinks)
// plus /dev/ptmx to the container's own devpts instance.
func createDevSymlinks(root *os.File) error {
	dev, err := openInRoot(root, "/dev", mkDir, false)
	if err != nil {
		return fmt.Errorf("/dev: %w", err)
	}
	defer dev.Close()
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && err != unix.EEXIST {
			return &os.LinkError{Op: "symlink", Old: l[0], New: "/dev/" + l[1], Err: err}
		}
	}
	return nil
}

// pivotRoot makes rootfs the root and detaches the old one, without a
// temporary directory: pivot_root(".", ".") stacks the old root on top of
// the new one at "/", and the umount of "." removes it (runc's trick,
// from the pivot_root(2) man page).
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/", Err: err}
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return &os.PathError{Op: "chdir", Path: rootfs, Err: err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: rootfs, Err: err}
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return &os.PathError{Op: "chdir", Path: "old root", Err: err}
	}
	// The old root must not propagate the umount to the caller's mounts.
	if err := sysMount("", ".", "old root", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &MountError{Op: "umount", Target: "old root", Err: err}
	}
	if err := unix.Chdir("/"); err != nil {
		return &os.PathError{Op: "chdir", Path: "/", Err: err}
	}
	return nil
}

// maskPath hides p (after pivot_root): /dev/null over a file, an empty
// read-only tmpfs over a directory. A missing path is not an error.
func maskPath(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if fi.IsDir() {
		err = sysMount("tmpfs", p, p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755")
	} else {
		err = sysMount("/dev/null", p, p, "", unix.MS_BIND, "")
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil // gone meanwhile (a /proc entry of a process)
	}
	return err
}

// readonlyPath bind-mounts p onto itself and makes it read-only (after
// pivot_root), keeping the flags the kernel locks. A missing path is not
// an error.
func readonlyPath(p string) error {
	if err := sysMount(p, p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := remountBind(p, unix.MS_RDONLY|unix.MS_REC, true); err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	return nil
}

// SetupConsole gives the caller a terminal, after SetupRootfs: it opens a
// pseudo-terminal on the container's /dev/ptmx, bind-mounts its slave onto
// /dev/console, starts a new session (unless the caller leads one) with
// the slave as controlling terminal and makes it fds 0, 1 and 2. It returns
// the master, close-on-exec, for the caller to send to the parent (see
// runtime.SendFd) and then close.
func SetupConsole() (master *os.File, err error) {
	ptmx, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
	}
	master = os.NewFile(uintptr(ptmx), "/dev/ptmx")
	defer func() {
		if err != nil {
			master.Close()
			master = nil
		}
	}()
	if err := unix.IoctlSetPointerInt(ptmx, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(ptmx, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("get pty number: %w", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	// TIOCGPTPEER (Linux 4.13) opens the slave without a path lookup.
	slave, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ptmx), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		fd, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: slavePath, Err: err}
		}
		slave = uintptr(fd)
	}
	defer unix.Close(int(slave))

	c, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: "/dev/console", Err: err}
	}
	unix.Close(c)
	if err := sysMount(slavePath, "/dev/console", "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return nil, err
	}
	if sid, err := unix.Getsid(0); err != nil || sid != unix.Getpid() {
		if _, err := unix.Setsid(); err != nil {
			return nil, fmt.Errorf("setsid: %w", err)
		}
	}
	if err := unix.IoctlSetInt(int(slave), unix.TIOCSCTTY, 0); err != nil {
		return nil, fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(int(slave), fd, 0); err != nil {
			return nil, fmt.Errorf("dup pty slave to fd %d: %w", fd, err)
		}
	}
	return master, nil
}

// mkKind says what openInRoot creates when the path is missing.
type mkKind int

const (
	mkNone mkKind = iota // create nothing
	mkDir                // directories all the way
	mkFile               // directories, then an empty file as the last component
)

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// inRootHow resolves a path as if root were "/" (symlinks, absolute or with
// "..", cannot leave it), refusing magic links such as /proc/self/root.
var inRootHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
}

func openat2(dirfd int, p string, how unix.OpenHow) (int, error) {
	if p == "" {
		p = "."
	}
	for {
		fd, err := unix.Openat2(dirfd, p, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue // EAGAIN: a concurrent rename, retry as the man page says
		}
		if err == unix.ENOSYS {
			return -1, fmt.Errorf("openat2: %w (nook needs Linux 5.6 or later)", err)
		}
		return fd, err
	}
}

// openInRoot opens unsafePath inside root (an O_PATH directory) with
// RESOLVE_IN_ROOT, so that no symlink in the container's tree can lead the
// lookup outside of it, and returns an O_PATH file. With kind other than
// mkNone the missing components are created inside root, following a
// dangling symlink to create its target as chroot(2) would (an image's
// /etc/resolv.conf is often a link into /run). With noSymlinks a path
// through any symlink is refused.
func openInRoot(root *os.File, unsafePath string, kind mkKind, noSymlinks bool) (*os.File, error) {
	rootFd := int(root.Fd())
	rest := splitPath(unsafePath)
	var done []string // components resolved so far, as written
	links, creates := 0, 0
	for kind != mkNone && len(rest) > 0 {
		name := rest[0]
		cur := append(done[:len(done):len(done)], name)
		fd, err := openat2(rootFd, strings.Join(cur, "/"), inRootHow)
		if err == nil {
			unix.Close(fd)
			done, rest = cur, rest[1:]
			continue
		}
		if err != unix.ENOENT {
			return nil, &os.PathError{Op: "openat2", Path: unsafePath, Err: err}
		}
		parent, err := openat2(rootFd, strings.Join(done, "/"), unix.OpenHow{
			Flags: inRootHow.Flags | unix.O_DIRECTORY, Resolve: inRootHow.Resolve})
		if err != nil {
			return nil, &os.PathError{Op: "openat2", Path: unsafePath, Err: err}
		}
		if target, err := readlinkat(parent, name); err == nil {
			unix.Close(parent)
			if links++; links > maxSymlinks {
				return nil, &os.PathError{Op: "resolve", Path: unsafePath, Err: unix.ELOOP}
			}
			if path.IsAbs(target) {
				done = nil
			}
			rest = append(splitPath(target), rest[1:]...)
			continue
		}
		if len(rest) == 1 && kind == mkFile {
			var fd int
			fd, err = unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
		} else {
			err = unix.Mkdirat(parent, name, 0o755)
		}
		unix.Close(parent)
		if err != nil && err != unix.EEXIST {
			return nil, &os.PathError{Op: "create", Path: "/" + strings.Join(cur, "/"), Err: err}
		}
		// Loop to open what was created (or raced in); bound the retries.
		if creates++; creates > 255 {
			return nil, &os.PathError{Op: "create", Path: unsafePath, Err: unix.ELOOP}
		}
	}
	how := inRootHow
	if noSymlinks {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	p := strings.Join(append(done, rest...), "/")
	if noSymlinks {
		p = strings.Join(splitPath(unsafePath), "/") // as written, not as followed
	}
	fd, err := openat2(rootFd, p, how)
	if err == unix.ELOOP && noSymlinks {
		return nil, &os.PathError{Op: "open", Path: unsafePath, Err: errors.New("refusing a path through a symlink")}
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: unsafePath, Err: err}
	}
	f := os.NewFile(uintptr(fd), unsafePath)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: unsafePath, Err: err}
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case kind == mkDir && !isDir:
		f.Close()
		return nil, &os.PathError{Op: "open", Path: unsafePath, Err: unix.ENOTDIR}
	case kind == mkFile && isDir:
		f.Close()
		return nil, &os.PathError{Op: "open", Path: unsafePath, Err: unix.EISDIR}
	}
	return f, nil
}

// splitPath splits p into its components, dropping empty ones and ".";
// ".." stays, for openat2 to resolve against symlinks.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// writeSysctls sets the container's sysctls (--sysctl) through its own /proc, so each lands in
// the container's namespaces (IPC, network); the engine has allowed only namespaced ones.
func writeSysctls(sysctls map[string]string) error {
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := os.WriteFile("/proc/sys/"+strings.ReplaceAll(k, ".", "/"), []byte(sysctls[k]), 0); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", k, sysctls[k], err)
		}
	}
	return nil
}
