package bypass

// Published TCP ports (Config.Published): the starter binds each one's host socket before the
// container starts (Reserve), which is where a host port in use fails, and the handler keeps
// them. When the container binds a published container port, the handler puts a host socket
// bound to the published host address and port in place of the container's:
//
//	container: bind(fd, 0.0.0.0:80) ───────► handler: the reserved socket, when it is of the
//	  (notification)                           socket's kind (domain, IPV6_V6ONLY); else a new
//	                                           one, SO_REUSEADDR, bound to HOSTIP:HOSTPORT
//	                                         ADDFD+SETFD over fd, answer 0 or bind's error
//	listen, accept: on the host socket
//
// The reserved socket is bound, not listening: until the container listens, a client is
// refused, as by a server that has not started; nothing else can take the port meanwhile.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reservedFd is the first reserved host socket in the handler (after the control socket).
const reservedFd = ctlFd + 1

// Reserve binds the host socket of each published port (not listening), for Start to pass to
// the handler: an error is the port's ("already in use"), before the container starts.
func Reserve(ports []Published) ([]*os.File, error) {
	var out []*os.File
	for _, p := range ports {
		f, err := reserve(p)
		if err != nil {
			for _, f := range out {
				f.Close()
			}
			ip := p.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			name := fmt.Sprintf("%s:%d->%d/tcp", ip, p.HostPort, p.ContainerPort) // as portfwd says it
			if errors.Is(err, unix.EADDRINUSE) {
				return nil, fmt.Errorf("publish %s: host port %d/tcp is already in use", name, p.HostPort)
			}
			return nil, fmt.Errorf("publish %s: %w", name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// reserve binds one published port's host socket: for every address, an IPv6 socket that takes
// IPv4 too ([::], as portfwd listens), or 0.0.0.0 where the host has no IPv6.
func reserve(p Published) (*os.File, error) {
	var addrs []netip.Addr
	if p.HostIP == "" {
		addrs = []netip.Addr{netip.IPv6Unspecified(), netip.AddrFrom4([4]byte{})}
	} else {
		a, err := netip.ParseAddr(p.HostIP)
		if err != nil {
			return nil, err
		}
		addrs = []netip.Addr{a.Unmap()}
	}
	var err error
	for _, a := range addrs {
		var fd int
		if fd, err = bindHost(netip.AddrPortFrom(a, uint16(p.HostPort)), false); err == nil {
			return os.NewFile(uintptr(fd), "published"), nil
		}
		if !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EADDRNOTAVAIL) {
			break
		}
	}
	return nil, err
}

// bindHost makes a TCP socket of a's family, close-on-exec, and binds it to a; an IPv6 socket
// for [::] takes IPv4 too.
func bindHost(a netip.AddrPort, reuse bool) (int, error) {
	domain := unix.AF_INET
	if a.Addr().Is6() {
		domain = unix.AF_INET6
	}
	sa := sockaddr(a)
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if domain == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if reuse {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// reservations are the handler's reserved host sockets, by container port; each is handed to
// the container once, or closed when the container binds the port with another kind of socket.
type reservations struct {
	mu  sync.Mutex
	fds map[int]int
}

func newReservations(c Config) *reservations {
	r := &reservations{fds: map[int]int{}}
	for i, p := range c.Published {
		fd := reservedFd + i
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue
		}
		unix.CloseOnExec(fd)
		r.fds[p.ContainerPort] = fd
	}
	return r
}

// bind answers bind(fd, addr, len) of a container thread. Like connect, it reads the address
// once and binds the host socket with the address it checked.
func (s *server) bind(n *notif) {
	fd, pid := int(int32(n.args[0])), int(n.pid)
	family, a, ok := s.readSockaddr(n)
	if !ok {
		return
	}
	addr, port := a.Addr(), a.Port()
	if errno, ok := s.bindHost(n, pid, fd, family, addr, port); ok {
		s.reply(n.id, errno)
	} else if s.valid(n.id) {
		s.proceed(n.id)
	}
}

// bindHost puts a host socket bound to the published address in place of the container's fd;
// ok false leaves the call to the container.
func (s *server) bindHost(n *notif, pid, fd int, family uint16, addr netip.Addr, port uint16) (errno unix.Errno, ok bool) {
	if !s.cfg.published(int(port)) {
		return 0, false // most binds: nothing to fetch
	}
	pidfd, err := openPidfd(pid)
	if err != nil {
		return 0, false
	}
	defer unix.Close(pidfd)
	if !s.valid(n.id) {
		return 0, false
	}
	orig, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(orig)
	domain, err1 := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_DOMAIN)
	typ, err2 := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_TYPE)
	proto, err3 := unix.GetsockoptInt(orig, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err1 != nil || err2 != nil || err3 != nil || typ != unix.SOCK_STREAM || int(family) != domain ||
		(domain != unix.AF_INET && domain != unix.AF_INET6) || bound(orig) {
		return 0, false
	}
	v6only := false
	if domain == unix.AF_INET6 {
		v, err := unix.GetsockoptInt(orig, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return 0, false
		}
		v6only = v != 0
	}
	to, ok := s.cfg.BindTo(domain == unix.AF_INET6, v6only, addr, port)
	if !ok {
		return 0, false
	}
	fl, err := unix.FcntlInt(uintptr(orig), unix.F_GETFL, 0)
	if err != nil {
		return 0, false
	}
	fdFlags := 0
	if cloexec(pid, fd) {
		fdFlags = unix.O_CLOEXEC
	}

	// The reserved socket, when it is what the container asked for; else a new one, bound
	// once the reserved one is closed. Taking it out of the map claims it.
	s.res.mu.Lock()
	rfd, reserved := s.res.fds[int(port)]
	delete(s.res.fds, int(port))
	s.res.mu.Unlock()
	nfd := -1
	if reserved && sameKind(rfd, domain, v6only, to) {
		nfd = rfd
	} else {
		if reserved {
			unix.Close(rfd)
			reserved = false
		}
		sa := sockaddr(to)
		nfd, err = unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return errnoOf(err), true
		}
		defer unix.Close(nfd)
		copyOptions(orig, nfd, domain)
		_ = unix.SetsockoptInt(nfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(nfd, sa); err != nil {
			return errnoOf(err), true
		}
	}
	if reserved {
		copyOptions(orig, nfd, domain)
		_ = unix.SetsockoptInt(nfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := unix.SetNonblock(nfd, fl&unix.O_NONBLOCK != 0); err != nil {
		return errnoOf(err), true
	}
	a := notifAddfd{id: n.id, flags: unix.SECCOMP_ADDFD_FLAG_SETFD, srcfd: uint32(nfd), newfd: uint32(fd), newfdFlags: uint32(fdFlags)}
	if err := s.ioctl(unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&a)); err != nil {
		if reserved { // the thread is gone: the socket stays reserved
			s.res.mu.Lock()
			s.res.fds[int(port)] = rfd
			s.res.mu.Unlock()
		}
		return 0, false
	}
	if reserved {
		unix.Close(rfd) // the container has it now
	}
	return 0, true
}

// sockaddr is a's socket address: IPv4 for an IPv4 address, IPv6 (IPv4-mapped or not) else.
func sockaddr(a netip.AddrPort) unix.Sockaddr {
	if a.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

func (c Config) published(cport int) bool {
	for _, p := range c.Published {
		if p.ContainerPort == cport {
			return true
		}
	}
	return false
}

// sameKind says whether the reserved socket fd is what the container's socket would be bound
// to: same domain, same IPV6_V6ONLY, bound to to.
func sameKind(fd, domain int, v6only bool, to netip.AddrPort) bool {
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || d != domain {
		return false
	}
	if domain == unix.AF_INET6 {
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil || (v != 0) != v6only {
			return false
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return domain == unix.AF_INET && netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)) == to
	case *unix.SockaddrInet6:
		return domain == unix.AF_INET6 && netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)) == to
	}
	return false
}
