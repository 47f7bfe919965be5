package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BypassAnnotation, in a container's config.json, asks the init for a seccomp user-notification
// listener (`--network slirp4netns:bypass4netns=true`): the init loads a second, small filter
// that hands every native call of the system calls the annotation names, comma-separated
// ("connect" or "connect,bind"; connect when empty), to a handler outside the container, and
// sends the listener to the engine on the protocol socket (MsgListener). The handler (package
// bypass) connects TCP sockets bound for the host's network there instead of through
// slirp4netns, and binds published TCP ports on the host.
const BypassAnnotation = "nook.bypass4netns"

// BypassCalls are the system calls the value of BypassAnnotation names.
func BypassCalls(v string) []string {
	var calls []string
	for _, c := range strings.Split(v, ",") {
		if c = strings.TrimSpace(c); c != "" {
			calls = append(calls, c)
		}
	}
	if len(calls) == 0 {
		calls = []string{"connect"}
	}
	return calls
}

// notifyProgram is the filter of BypassAnnotation: the calls named (connect, bind) of the native
// architecture go to the listener, everything else is allowed (the main profile, a filter of its own, still
// decides: the kernel takes the strictest answer of all filters, and ERRNO and KILL rank above
// USER_NOTIF, which ranks above ALLOW — Documentation/userspace-api/seccomp_filter.rst). An x32
// call has another number (the main profile refuses those) and a 32-bit one another
// architecture: both go through slirp4netns as before.
func notifyProgram(calls []string) (*SeccompProgram, error) {
	if len(seccompArches) == 0 {
		return nil, errors.New("no system call table for this architecture")
	}
	if len(calls) == 0 || len(calls) > 8 {
		return nil, fmt.Errorf("%d system calls to notify", len(calls))
	}
	arch := seccompArches[0]
	k := len(calls)
	// arch; nr; one test per call (a match jumps to the USER_NOTIF return); ALLOW; USER_NOTIF.
	insns := []unix.SockFilter{
		stmt(opLd, seccompDataArch),
		jump(opJeq, arch.audit, 0, uint8(k+1)),
		stmt(opLd, seccompDataNr),
	}
	for i, c := range calls {
		nr, ok := arch.lookup(c)
		if !ok {
			return nil, fmt.Errorf("%s has no system call number here", c)
		}
		insns = append(insns, jump(opJeq, uint32(nr), uint8(k-i), 0))
	}
	insns = append(insns, stmt(opRet, unix.SECCOMP_RET_ALLOW), stmt(opRet, unix.SECCOMP_RET_USER_NOTIF))
	return &SeccompProgram{Insns: insns, Flags: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER}, nil
}

// LoadNotifyFilter installs the filter of BypassAnnotation on the calling thread (its children
// and an execve inherit it) and returns its listener, close-on-exec. Like LoadSeccomp it needs
// no_new_privs or CAP_SYS_ADMIN.
func LoadNotifyFilter(calls []string) (*os.File, error) {
	p, err := notifyProgram(calls)
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
