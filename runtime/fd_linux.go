package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// SendFd sends f over the unix socket sock with SCM_RIGHTS; the file's name
// travels as the message body. The caller still owns f and closes it.
func SendFd(sock, f *os.File) error {
	name := f.Name()
	if name == "" {
		name = "fd"
	}
	rights := unix.UnixRights(int(f.Fd()))
	rc, err := sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("send fd: %w", err)
	}
	var serr error
	werr := rc.Write(func(s uintptr) bool {
		serr = unix.Sendmsg(int(s), []byte(name), rights, nil, 0)
		return serr != unix.EAGAIN
	})
	if werr != nil {
		return fmt.Errorf("send fd: %w", werr)
	}
	if serr != nil {
		return fmt.Errorf("send fd: %w", serr)
	}
	return nil
}

// RecvFd receives one file sent by SendFd. The descriptor is close-on-exec.
func RecvFd(sock *os.File) (*os.File, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room for a few, to close extras
	var n, oobn int
	var rerr error
	if err := rc.Read(func(s uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(s), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	if rerr != nil {
		return nil, fmt.Errorf("receive fd: %w", rerr)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	var fds []int
	for i := range msgs {
		rights, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		fds = append(fds, rights...)
	}
	if len(fds) == 0 {
		if n == 0 {
			return nil, fmt.Errorf("receive fd: %w", io.EOF)
		}
		return nil, errors.New("receive fd: the message carried no descriptor")
	}
	for _, extra := range fds[1:] {
		unix.Close(extra)
	}
	name := string(buf[:n])
	if name == "" {
		name = "fd"
	}
	return os.NewFile(uintptr(fds[0]), name), nil
}
