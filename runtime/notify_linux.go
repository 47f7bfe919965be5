package runtime

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BypassAnnotation, in a container's config.json, asks the init for a seccomp user-notification
// listener on connect(2) (`--network slirp4netns:bypass4netns=true`): the init loads a second,
// small filter that hands every native connect to a handler outside the container, and sends
// the listener to the engine on the protocol socket (MsgListener). The handler (package bypass)
// connects TCP sockets bound for the host's network there instead of through slirp4netns.
const BypassAnnotation = "nook.bypass4netns"

// notifyProgram is the filter of BypassAnnotation: connect of the native architecture goes to
// the listener, everything else is allowed (the main profile, a filter of its own, still
// decides: the kernel takes the strictest answer of all filters, and ERRNO and KILL rank above
// USER_NOTIF, which ranks above ALLOW — Documentation/userspace-api/seccomp_filter.rst). An x32
// call has another number (the main profile refuses those) and a 32-bit one another
// architecture: both go through slirp4netns as before.
func notifyProgram() (*SeccompProgram, error) {
	if len(seccompArches) == 0 {
		return nil, errors.New("no system call table for this architecture")
	}
	arch := seccompArches[0]
	nr, ok := arch.lookup("connect")
	if !ok {
		return nil, errors.New("connect has no system call number here")
	}
	return &SeccompProgram{
		Insns: []unix.SockFilter{
			stmt(opLd, seccompDataArch),
			jump(opJeq, arch.audit, 0, 3),
			stmt(opLd, seccompDataNr),
			jump(opJeq, uint32(nr), 0, 1),
			stmt(opRet, unix.SECCOMP_RET_USER_NOTIF),
			stmt(opRet, unix.SECCOMP_RET_ALLOW),
		},
		Flags: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
	}, nil
}

// LoadNotifyFilter installs the filter of BypassAnnotation on the calling thread (its children
// and an execve inherit it) and returns its listener, close-on-exec. Like LoadSeccomp it needs
// no_new_privs or CAP_SYS_ADMIN.
func LoadNotifyFilter() (*os.File, error) {
	p, err := notifyProgram()
	if err != nil {
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(p.Insns)), Filter: &p.Insns[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.Flags, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return nil, fmt.Errorf("load seccomp listener filter: %w", errno)
	}
	return os.NewFile(fd, "seccomp-listener"), nil
}
