package bypass

// The handler, `nook-runtime bypass4netns CONFIG`:
//
//	starter (engine or monitor)             handler (host network namespace, root of the
//	───────                                  container's user namespace: it may ptrace the
//	Start: fork+exec, SIGKILL as              container's processes, as pidfd_getfd needs)
//	parent-death signal ───────────────────► wait on the control socket (fd 3)
//	init sends {listener} + fd; the
//	starter passes it on: Serve ───────────► poll(listener, control):
//	                                          a notification: connect(2) or bind(2) of a
//	                                            container thread → a goroutine answers it
//	                                            (connect below, bind in bind_linux.go)
//	Close: the control socket closes ──────► exit; so does a listener with no process left
//	                                          (POLLHUP: the container has ended)

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/runtime"
)

// ctlFd is the control socket in the handler.
const ctlFd = 3

// seccomp_notif, seccomp_notif_resp and seccomp_notif_addfd (linux/seccomp.h).
type notif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type notifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

type notifAddfd struct {
	id         uint64
	flags      uint32
	srcfd      uint32
	newfd      uint32
	newfdFlags uint32
}

// Main is `nook-runtime bypass4netns CONFIG`: it serves the listener its starter sends on fd 3
// until the container or the starter is gone.
func Main(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "nook-runtime: usage: nook-runtime bypass4netns CONFIG")
		return 125
	}
	var c Config
	if err := json.Unmarshal([]byte(args[0]), &c); err != nil {
		fmt.Fprintf(os.Stderr, "nook-runtime bypass4netns: %v\n", err)
		return 125
	}
	ctl := os.NewFile(ctlFd, "control")
	m, l, err := runtime.Recv(ctl)
	if err != nil || m.Type != runtime.MsgListener || l == nil {
		return 0 // the starter closed the socket: the container did not start
	}
	s := &server{cfg: c, fd: int(l.Fd()), res: newReservations(c)}
	if err := s.serve(int(ctl.Fd())); err != nil {
		fmt.Fprintf(os.Stderr, "nook-runtime bypass4netns: %v\n", err)
		return 125
	}
	return 0
}

type server struct {
	cfg Config
	fd  int // the listener
	res *reservations
}

func (s *server) serve(ctl int) error {
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(ctl), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		if fds[1].Revents != 0 || fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			return nil
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			continue
		}
		n := new(notif) // the kernel wants it zeroed
		if err := s.ioctl(unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n)); err != nil {
			// ENOENT: the thread was interrupted or killed before we read it.
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("receive seccomp notification: %w", err)
		}
		// Each on its own goroutine: a blocking connect waits for the peer.
		if n.nr == unix.SYS_BIND {
			go s.bind(n)
		} else {
			go s.connect(n)
		}
	}
}

func (s *server) ioctl(req uint, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd), uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// valid says whether the notification id still waits for an answer: its thread has not been
// interrupted, and a pid read from it still names that thread.
func (s *server) valid(id uint64) bool {
	return s.ioctl(unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

// reply answers a notification: the system call returns errno (when not 0) or 0.
func (s *server) reply(id uint64, errno unix.Errno) {
	r := notifResp{id: id, error: -int32(errno)}
	_ = s.ioctl(unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
}

// proceed lets the system call run in the container as if nothing had stopped it.
func (s *server) proceed(id uint64) {
	r := notifResp{id: id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	_ = s.ioctl(unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
}

// connect answers connect(fd, addr, len) of a container thread. CONTINUE is safe for what the
// container's namespace handles: the kernel then runs the call on the container's socket, in
// the container's namespace, with whatever address it reads then. A bypassed connect is made
// by the handler with the address it checked, never by the kernel on the container's word.
func (s *server) connect(n *notif) {
	fd, pid := int(int32(n.args[0])), int(n.pid)
	family, a, ok := s.readSockaddr(n)
	if !ok {
		return
	}
	dst, port := a.Addr(), a.Port()
	to, ok := s.cfg.Route(dst)
	if !ok {
		s.proceed(n.id)
		return
	}
	if errno, ok := s.bypass(n, pid, fd, family, to, port); ok {
		s.reply(n.id, errno)
	} else if s.valid(n.id) {
		s.proceed(n.id)
	}
}

// readSockaddr reads the socket address that n's connect(2) or bind(2) passes (arguments 1 and
// 2) from the calling thread, once. ok false means the call is dealt with: handed back to the
// kernel (a unix socket, AF_UNSPEC, a short or unreadable address: the kernel answers it as
// usual), or no longer waiting for an answer (the thread is gone or was interrupted).
func (s *server) readSockaddr(n *notif) (family uint16, a netip.AddrPort, ok bool) {
	ptr, alen := uintptr(n.args[1]), int(n.args[2])
	if alen < 2 || alen > unix.SizeofSockaddrAny || ptr == 0 {
		s.proceed(n.id) // the kernel's EINVAL or EFAULT
		return 0, a, false
	}
	buf := make([]byte, alen)
	got, err := unix.ProcessVMReadv(int(n.pid), []unix.Iovec{{Base: &buf[0], Len: uint64(alen)}},
		[]unix.RemoteIovec{{Base: ptr, Len: alen}}, 0)
	if !s.valid(n.id) {
		return 0, a, false
	}
	if err == nil && got == alen {
		family, a, ok = decodeSockaddr(buf)
	}
	if !ok {
		s.proceed(n.id)
	}
	return family, a, ok
}

// decodeSockaddr reads an AF_INET or AF_INET6 socket address as connect(2) and bind(2) take
// it (family in host order, port in network order); ok is false for any other family and for
// an address too short for its family.
func decodeSockaddr(b []byte) (family uint16, a netip.AddrPort, ok bool) {
	if len(b) < 2 {
		return 0, a, false
	}
	family = binary.NativeEndian.Uint16(b)
	switch {
	case family == unix.AF_INET && len(b) >= unix.SizeofSockaddrInet4:
		return family, netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4])), true
	case family == unix.AF_INET6 && len(b) >= unix.SizeofSockaddrInet6:
		return family, netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), binary.BigEndian.Uint16(b[2:4])), true
	}
	return family, a, false
}

// bypass makes the connection in the handler's (the host's) network namespace and puts its
// socket in place of the container's fd. ok false leaves the call to the container (not a TCP
// socket, already bound, or the socket could not be fetched).
func (s *server) bypass(n *notif, pid, fd int, family uint16, to netip.Addr, port uint16) (errno unix.Errno, ok bool) {
	pidfd, err := openPidfd(pid)
	if err != nil {
		return 0, false
	}
	defer unix.Close(pidfd)
	if !s.valid(n.id) { // the pid was still this thread's when pidfd_open ran
		return 0, false
	}
	orig, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return 0, false // EBADF and the like: the kernel says it again
	}
	defer unix.Close(orig)
	domain, err1 := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_DOMAIN)
	typ, err2 := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_TYPE)
	proto, err3 := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err1 != nil || err2 != nil || err3 != nil || typ != unix.SOCK_STREAM || int(family) != domain ||
		(domain != unix.AF_INET && domain != unix.AF_INET6) {
		return 0, false
	}
	if bound(orig) {
		return 0, false // bound, connected or connecting: the container's namespace answers
	}
	fl, err := unix.FcntlInt(uintptr(orig), unix.F_GETFL, 0)
	if err != nil {
		return 0, false
	}
	nonblock := fl&unix.O_NONBLOCK != 0
	fdFlags := 0
	if cloexec(pid, fd) {
		fdFlags = unix.O_CLOEXEC
	}

	nfd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return errnoOf(err), true
	}
	defer unix.Close(nfd)
	copyOptions(orig, nfd, domain)
	var sa unix.Sockaddr
	if domain == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(port), Addr: to.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(port), Addr: to.As16()}
	}
	err = unix.Connect(nfd, sa)
	if errors.Is(err, unix.EINPROGRESS) && !nonblock {
		err = s.wait(n.id, nfd, sendTimeout(orig))
	}
	pending := errors.Is(err, unix.EINPROGRESS)
	if err != nil && !pending {
		if errors.Is(err, errGone) {
			return 0, false
		}
		return errnoOf(err), true
	}
	if !nonblock {
		if err := unix.SetNonblock(nfd, false); err != nil {
			return errnoOf(err), true
		}
	}
	a := notifAddfd{id: n.id, flags: unix.SECCOMP_ADDFD_FLAG_SETFD, srcfd: uint32(nfd), newfd: uint32(fd), newfdFlags: uint32(fdFlags)}
	if err := s.ioctl(unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&a)); err != nil {
		return 0, false // the thread is gone (ENOENT)
	}
	if pending {
		return unix.EINPROGRESS, true
	}
	return 0, true
}

var errGone = errors.New("the calling thread is gone")

// wait waits for a non-blocking connect to finish, for a caller whose socket blocks: its result,
// EINPROGRESS when the socket's send timeout (SO_SNDTIMEO, which bounds a blocking connect)
// passed, errGone when the caller was interrupted or killed meanwhile.
func (s *server) wait(id uint64, fd int, timeout time.Duration) error {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		step := time.Second
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return unix.EINPROGRESS
			}
			step = min(step, left)
		}
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		k, err := unix.Poll(p, int(step/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if k > 0 {
			e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err != nil {
				return err
			}
			if e != 0 {
				return unix.Errno(e)
			}
			return nil
		}
		if !s.valid(id) {
			return errGone
		}
	}
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

// openPidfd opens a pidfd of the process of thread tid (pidfd_open takes a thread-group
// leader's pid only before Linux 6.9's PIDFD_THREAD).
func openPidfd(tid int) (int, error) {
	fd, err := unix.PidfdOpen(tid, 0)
	if err == nil || !errors.Is(err, unix.EINVAL) {
		return fd, err
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return -1, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Tgid:"); ok {
			tgid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return -1, err
			}
			return unix.PidfdOpen(tgid, 0)
		}
	}
	return -1, unix.ESRCH
}

// cloexec says whether the container's fd is close-on-exec (fdinfo's flags, in octal), which
// the fd put in its place keeps.
func cloexec(pid, fd int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "flags:"); ok {
			f, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && f&unix.O_CLOEXEC != 0
		}
	}
	return false
}

// bound says whether the socket has a local address or a peer: the container bound it
// itself (its source address means its own namespace), or it is connected or connecting.
func bound(fd int) bool {
	if _, err := unix.Getpeername(fd); err == nil {
		return true
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return true
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port != 0 || a.Addr != [4]byte{}
	case *unix.SockaddrInet6:
		return a.Port != 0 || a.Addr != [16]byte{}
	}
	return true
}

// sendTimeout is the socket's SO_SNDTIMEO, 0 for none.
func sendTimeout(fd int) time.Duration {
	tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO)
	if err != nil {
		return 0
	}
	return time.Duration(tv.Nano())
}

// Default buffer sizes of a TCP socket in a new network namespace (tcp_sk_init: tcp_rmem[1],
// tcp_wmem[1]). A container's socket reports these unless its program set SO_RCVBUF or
// SO_SNDBUF; only a size set by the program is copied, since setting one turns the kernel's
// autotuning off for that socket.
const (
	defaultRcvbuf = 131072
	defaultSndbuf = 16384
)

// copyOptions gives the new socket the options the program set on its socket before connect.
func copyOptions(from, to, domain int) {
	type opt struct{ level, name int }
	opts := []opt{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE}, {unix.SOL_SOCKET, unix.SO_OOBINLINE},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY}, {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}, {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}, {unix.IPPROTO_TCP, unix.TCP_SYNCNT},
		{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT}, {unix.IPPROTO_TCP, unix.TCP_QUICKACK},
	}
	if domain == unix.AF_INET {
		opts = append(opts, opt{unix.IPPROTO_IP, unix.IP_TOS})
	} else {
		opts = append(opts, opt{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}, opt{unix.IPPROTO_IPV6, unix.IPV6_TCLASS})
	}
	for _, o := range opts {
		v, err := unix.GetsockoptInt(from, o.level, o.name)
		if err != nil {
			continue
		}
		if w, err := unix.GetsockoptInt(to, o.level, o.name); err == nil && w == v {
			continue
		}
		_ = unix.SetsockoptInt(to, o.level, o.name, v)
	}
	for _, b := range []struct{ name, def int }{{unix.SO_RCVBUF, defaultRcvbuf}, {unix.SO_SNDBUF, defaultSndbuf}} {
		// The kernel reports twice what was set (its bookkeeping overhead) and doubles again.
		if v, err := unix.GetsockoptInt(from, unix.SOL_SOCKET, b.name); err == nil && v != b.def {
			_ = unix.SetsockoptInt(to, unix.SOL_SOCKET, b.name, v/2)
		}
	}
	if l, err := unix.GetsockoptLinger(from, unix.SOL_SOCKET, unix.SO_LINGER); err == nil && l.Onoff != 0 {
		_ = unix.SetsockoptLinger(to, unix.SOL_SOCKET, unix.SO_LINGER, l)
	}
	for _, name := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if tv, err := unix.GetsockoptTimeval(from, unix.SOL_SOCKET, name); err == nil && (tv.Sec != 0 || tv.Usec != 0) {
			_ = unix.SetsockoptTimeval(to, unix.SOL_SOCKET, name, tv)
		}
	}
}
