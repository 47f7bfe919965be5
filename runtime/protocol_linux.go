package runtime

// The engine ↔ container init protocol, over a SOCK_SEQPACKET socket pair (fd 3 in the init):
//
//	engine                                   init (nook-runtime init, PID 1 of the new namespaces)
//	──────                                   ────
//	clone(NEWPID|NEWNS|NEWUTS|NEWIPC|
//	      NEWNET), into its cgroup ────────► read spec; wait for "go"
//	(network set up against the init's pid)
//	send {go} ─────────────────────────────► unshare(NEWCGROUP), hostname, rlimits, setsid,
//	                                         rootfs, pivot_root
//	                                         terminal: send {console} + master fd (SCM_RIGHTS)
//	                                         BypassAnnotation: send {listener} + the seccomp
//	                                         listener fd (notify_linux.go), for the handler
//	recv ◄───────────────────────────────── either {error, code} and exit(code),
//	                                         or execve(payload): the CLOEXEC socket closes,
//	recv returns EOF: the payload runs        so EOF means "exec succeeded".

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Message types.
const (
	MsgGo      = "go"
	MsgError   = "error"
	MsgConsole = "console"
	// MsgListener carries the seccomp user-notification listener of BypassAnnotation.
	MsgListener = "listener"
)

// Message is one packet of the protocol.
type Message struct {
	Type    string `json:"type"`
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// SyncFd is the init's end of the socket pair.
const SyncFd = 3

// SocketPair returns (engine end, init end), both close-on-exec; the init's end is passed
// through ExtraFiles, which clears the flag for the child.
func SocketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "engine-sync"), os.NewFile(uintptr(fds[1]), "init-sync"), nil
}

// Send writes one message, with an optional fd attached.
func Send(sock *os.File, m Message, fd *os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if fd != nil {
		oob = unix.UnixRights(int(fd.Fd()))
	}
	return unix.Sendmsg(int(sock.Fd()), b, oob, nil, 0)
}

// ErrEOF is returned by Recv when the peer closed its end (for the engine: the init exec'd).
var ErrEOF = errors.New("end of protocol")

// Recv reads one message and the fd attached to it, if any.
func Recv(sock *os.File) (Message, *os.File, error) {
	var m Message
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return m, nil, fmt.Errorf("receive from init: %w", err)
	}
	if n == 0 && oobn == 0 {
		return m, nil, ErrEOF
	}
	var f *os.File
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil && len(cmsgs) > 0 {
			if fds, err := unix.ParseUnixRights(&cmsgs[0]); err == nil && len(fds) > 0 {
				f = os.NewFile(uintptr(fds[0]), "fd")
			}
		}
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return m, f, fmt.Errorf("bad message from init: %w", err)
	}
	return m, f, nil
}
