package bypass

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Supported says why the kernel cannot run bypass4netns, or nil: it needs seccomp user
// notification with SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9) and pidfd_getfd (5.6).
func Supported() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !atLeast(release, 5, 9) {
		return fmt.Errorf("bypass4netns needs Linux 5.9 or later (seccomp user notification with ADDFD); this kernel is %s", release)
	}
	// pidfd_getfd(-1, ...) is EBADF where the call exists, ENOSYS where it does not (or where a
	// seccomp filter around nook refuses it).
	if _, err := unix.PidfdGetfd(-1, 0, 0); errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("bypass4netns needs pidfd_getfd, which this system refuses (%v)", err)
	}
	return nil
}

// atLeast says whether a kernel release ("6.1.0-18-amd64") is major.minor or later.
func atLeast(release string, major, minor int) bool {
	f := strings.FieldsFunc(release, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return false
	}
	a, err1 := strconv.Atoi(f[0])
	b, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return a > major || a == major && b >= minor
}
