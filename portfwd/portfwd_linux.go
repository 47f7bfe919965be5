package portfwd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Port is one published port: HostIP:HostPort on the host to ContainerPort in the container.
type Port struct {
	HostIP        string `json:"hostIP,omitempty"` // "" is every address, IPv4 and IPv6
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Proto         string `json:"proto"` // tcp or udp
}

func (p Port) String() string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("%s:%d->%d/%s", ip, p.HostPort, p.ContainerPort, p.Proto)
}

// ListenAddr is the host address p listens on, for net.Listen and net.ListenPacket with
// Network(p): every address is "[::]:PORT", which the kernel makes dual-stack where the host
// has IPv6, else Go falls back to 0.0.0.0.
func (p Port) ListenAddr() string {
	return net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
}

// Network is the network name p listens with: tcp4/udp4 for an IPv4 address, tcp6/udp6 for
// an IPv6 one, tcp/udp (both families) for every address.
func (p Port) Network() string {
	ip := net.ParseIP(p.HostIP)
	switch {
	case ip == nil:
		return p.Proto
	case ip.To4() != nil:
		return p.Proto + "4"
	default:
		return p.Proto + "6"
	}
}

// UDPIdle is how long a UDP flow (one host-side peer) lives without traffic.
const UDPIdle = 60 * time.Second

// Forwarder serves a set of published ports for one network namespace.
type Forwarder struct {
	netns  *os.File
	dials  chan dialReq
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	socks  []io.Closer  // listeners, packet conns and live connections
	pub    []*published // the host sockets, in the order of Listen's ports
	wg     sync.WaitGroup
	// gate is held around each accept and each datagram read on a host socket, and by Pause:
	// while it holds the gate nothing is taken from a host socket that an exec would lose.
	gate sync.Mutex
	open int       // forwarded TCP connections (under gate)
	last time.Time // last connection accepted or ended, last datagram either way (under gate)
}

type dialReq struct {
	network, addr string
	reply         chan dialRes
}

type dialRes struct {
	c   net.Conn
	err error
}

// Listen binds every port on the host now, so that a port taken fails here, before the
// container runs. Nothing is forwarded until Serve.
func Listen(ports []Port) (*Forwarder, error) {
	f := newForwarder()
	for _, p := range ports {
		var s io.Closer
		var err error
		switch p.Proto {
		case "tcp":
			var l net.Listener
			if l, err = net.Listen(p.Network(), p.ListenAddr()); err == nil {
				s, err = listenerFile(l)
			}
		case "udp":
			s, err = net.ListenPacket(p.Network(), p.ListenAddr())
		default:
			err = fmt.Errorf("protocol %q is not tcp or udp", p.Proto)
		}
		if err != nil {
			f.Close()
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("publish %s: host port %d/%s is already in use", p, p.HostPort, p.Proto)
			}
			return nil, fmt.Errorf("publish %s: %w", p, err)
		}
		f.add(s, p)
	}
	return f, nil
}

// listenerFile turns l into a non-blocking *os.File in Go's poller and closes l: a
// net.Listener's raw connection cannot wait for a pending connection (syscall.RawConn.Read),
// and serveTCP must accept under the gate, not in Accept.
func listenerFile(l net.Listener) (*os.File, error) {
	defer l.Close()
	rc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	if cerr := rc.Control(func(fd uintptr) { nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	return socketFile(nfd, "published")
}

// socketFile makes the socket fd non-blocking and returns it as an *os.File, which puts it in
// Go's poller.
func socketFile(fd int, name string) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

func newForwarder() *Forwarder {
	return &Forwarder{dials: make(chan dialReq), closed: make(chan struct{}), last: time.Now()}
}

func (f *Forwarder) add(s io.Closer, p Port) {
	pb := &published{Closer: s, port: p}
	f.socks = append(f.socks, pb)
	f.pub = append(f.pub, pb)
}

type published struct {
	io.Closer
	port Port
}

// Serve starts forwarding into the network namespace of pid: it returns at once.
//
// Sockets belong to the network namespace of the thread that creates them, and setns(2) with
// CLONE_NEWNET changes only the calling thread's. One goroutine, locked to its own OS thread,
// enters the container's namespace and makes the container-side sockets for the others; it
// never leaves, and its thread ends with it (a goroutine that exits locked takes its thread
// along), so no other goroutine ever runs in the container's namespace.
func (f *Forwarder) Serve(pid int) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return fmt.Errorf("open the container's network namespace: %w", err)
	}
	return f.serve(ns)
}

// serve starts forwarding into the network namespace ns (a /proc/PID/ns/net file, which f
// keeps and closes).
func (f *Forwarder) serve(ns *os.File) error {
	f.netns = ns
	ready := make(chan error, 1)
	go f.dialer(ready)
	if err := <-ready; err != nil {
		return err
	}
	for _, p := range f.pub {
		f.wg.Add(1)
		switch l := p.Closer.(type) {
		case *os.File:
			go f.serveTCP(l, p.port)
		case *net.UDPConn:
			go f.serveUDP(l, p.port)
		}
	}
	return nil
}

// Handoff is what a process that replaces itself by execve keeps of a Forwarder that is not
// forwarding anything (Pause): the container's network namespace and the host sockets, in the
// order of Listen's ports. The process made them inheritable; Resume takes them over.
type Handoff struct {
	Netns int
	Socks []int
}

// Pause reports whether f has been quiet for quiet: no forwarded TCP connection open, no
// connection accepted or ended and no datagram either way for quiet. If so it returns the fds
// to hand over and stops taking anything from the host sockets: a connection waits in its
// socket's backlog, a datagram in its queue, for the process that Resumes them. A UDP flow
// (one peer's socket in the container) does not cross the exec: a reply the container sends
// after the flow has been quiet for quiet and the process has exec'd is lost, and the peer's
// next datagram opens a new flow. Unpause undoes a Pause whose exec failed.
func (f *Forwarder) Pause(quiet time.Duration) (Handoff, bool) {
	f.gate.Lock()
	if f.open > 0 || time.Since(f.last) < quiet || f.netns == nil {
		f.gate.Unlock()
		return Handoff{}, false
	}
	h := Handoff{Netns: int(f.netns.Fd())}
	for _, p := range f.pub {
		sc, ok := p.Closer.(syscall.Conn)
		if !ok {
			f.gate.Unlock()
			return Handoff{}, false
		}
		rc, err := sc.SyscallConn()
		if err == nil {
			// Control, not Fd: the socket stays non-blocking, as the next process wants it.
			err = rc.Control(func(fd uintptr) { h.Socks = append(h.Socks, int(fd)) })
		}
		if err != nil {
			f.gate.Unlock()
			return Handoff{}, false
		}
	}
	return h, true
}

// Unpause lets a paused f forward again.
func (f *Forwarder) Unpause() { f.gate.Unlock() }

// Resume takes over the host sockets and the network namespace of h, which this process
// inherited from the one that Paused, and forwards them as ports (Listen's, in its order)
// say: what waits in the sockets is served first.
func Resume(h Handoff, ports []Port) (*Forwarder, error) {
	f := newForwarder()
	closeFds := func(from int) {
		for _, fd := range h.Socks[from:] {
			unix.Close(fd)
		}
		if h.Netns >= 0 {
			unix.Close(h.Netns)
		}
	}
	if len(h.Socks) != len(ports) {
		closeFds(0)
		return nil, fmt.Errorf("resume the port forwarder: %d host sockets for %d published ports", len(h.Socks), len(ports))
	}
	for i, fd := range h.Socks {
		p := ports[i]
		var s io.Closer
		var err error
		switch p.Proto {
		case "tcp":
			var port, acc, typ int
			if port, err = boundPort(fd); err == nil {
				acc, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			}
			if err == nil {
				typ, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
			}
			switch {
			case err != nil:
			case typ != unix.SOCK_STREAM || acc != 1 || port != p.HostPort:
				err = fmt.Errorf("not a TCP socket listening on port %d", p.HostPort)
			default:
				unix.CloseOnExec(fd)
				var l *os.File
				if l, err = socketFile(fd, "published"); err == nil {
					s = l
				}
				fd = -1 // the file has it, or socketFile closed it
			}
		case "udp":
			file := os.NewFile(uintptr(fd), "published")
			var c net.PacketConn
			if c, err = net.FilePacketConn(file); err == nil {
				s = c
				if a, ok := c.LocalAddr().(*net.UDPAddr); !ok || a.Port != p.HostPort {
					err = fmt.Errorf("not a UDP socket bound to port %d", p.HostPort)
				}
			}
			file.Close() // net.FilePacketConn made a copy
			fd = -1
		default:
			err = fmt.Errorf("protocol %q is not tcp or udp", p.Proto)
		}
		if err != nil {
			if s != nil {
				s.Close()
			}
			if fd >= 0 {
				unix.Close(fd)
			}
			closeFds(i + 1)
			f.Close()
			return nil, fmt.Errorf("resume the port forwarder: host socket %d for %s: %w", h.Socks[i], p, err)
		}
		f.add(s, p)
	}
	unix.CloseOnExec(h.Netns)
	if err := f.serve(os.NewFile(uintptr(h.Netns), "netns")); err != nil {
		f.Close()
		return nil, fmt.Errorf("resume the port forwarder: %w", err)
	}
	return f, nil
}

// dialer runs on a thread of its own in the container's network namespace.
func (f *Forwarder) dialer(ready chan<- error) {
	goruntime.LockOSThread()
	// No UnlockOSThread: the thread is in another namespace and must not be reused.
	if err := unix.Setns(int(f.netns.Fd()), unix.CLONE_NEWNET); err != nil {
		ready <- fmt.Errorf("enter the container's network namespace: %w", err)
		return
	}
	ready <- nil
	for {
		select {
		case <-f.closed:
			return
		case r := <-f.dials:
			// A literal address: no name lookup, so nothing leaves this thread before the
			// socket exists. Connecting to the container's loopback answers at once.
			c, err := net.DialTimeout(r.network, r.addr, 5*time.Second)
			r.reply <- dialRes{c, err}
		}
	}
}

// dial connects to addr inside the container.
func (f *Forwarder) dial(network, addr string) (net.Conn, error) {
	r := dialReq{network: network, addr: addr, reply: make(chan dialRes, 1)}
	select {
	case f.dials <- r:
	case <-f.closed:
		return nil, net.ErrClosed
	}
	res := <-r.reply
	return res.c, res.err
}

func (f *Forwarder) track(c io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
		c.Close()
		return false
	default:
	}
	f.socks = append(f.socks, c)
	return true
}

func (f *Forwarder) untrack(c io.Closer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.socks {
		if s == c {
			f.socks = append(f.socks[:i], f.socks[i+1:]...)
			break
		}
	}
}

func target(p Port) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.ContainerPort)) }

func (f *Forwarder) serveTCP(l *os.File, p Port) {
	defer f.wg.Done()
	rc, err := l.SyscallConn()
	if err != nil {
		return
	}
	for {
		nfd := -1
		var aerr error
		err := rc.Read(func(fd uintptr) bool {
			f.gate.Lock()
			defer f.gate.Unlock()
			n, _, err := unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			if err == unix.EAGAIN {
				return false
			}
			if err != nil {
				aerr = err
				return true
			}
			nfd = n
			f.open++
			f.last = time.Now()
			return true
		})
		if err != nil {
			return // closed
		}
		if nfd < 0 {
			if aerr == unix.EINTR || aerr == unix.ECONNABORTED {
				continue
			}
			select {
			case <-f.closed:
				return
			case <-time.After(10 * time.Millisecond): // EMFILE and friends: back off
			}
			continue
		}
		file := os.NewFile(uintptr(nfd), "forwarded")
		c, err := net.FileConn(file)
		file.Close()
		tc, ok := c.(*net.TCPConn)
		if err != nil || !ok {
			if c != nil {
				c.Close()
			}
			f.ended()
			continue
		}
		go f.forwardTCP(tc, p)
	}
}

// ended counts a forwarded connection's end.
func (f *Forwarder) ended() {
	f.gate.Lock()
	f.open--
	f.last = time.Now()
	f.gate.Unlock()
}

// forwardTCP splices one connection both ways. Copies between two TCP sockets go through
// splice(2) (TCPConn.ReadFrom), so the payload never enters this process.
func (f *Forwarder) forwardTCP(h *net.TCPConn, p Port) {
	defer f.ended()
	c, err := f.dial("tcp4", target(p))
	if err != nil {
		// Nothing listens in the container (yet): the client sees the connection closed, as
		// with Docker's proxy.
		h.Close()
		return
	}
	ct := c.(*net.TCPConn)
	if !f.track(h) {
		ct.Close()
		return
	}
	if !f.track(ct) {
		f.untrack(h)
		h.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src *net.TCPConn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = dst.CloseWrite() // pass the half-close on
	}
	go pipe(ct, h)
	go pipe(h, ct)
	wg.Wait()
	f.untrack(h)
	f.untrack(ct)
	h.Close()
	ct.Close()
}

// serveUDP relays datagrams: each host-side peer gets a socket of its own in the container,
// connected to the port, so that replies find their way back; it ends after UDPIdle without
// traffic.
func (f *Forwarder) serveUDP(pc *net.UDPConn, p Port) {
	defer f.wg.Done()
	type flow struct {
		c    net.Conn
		last time.Time
	}
	var mu sync.Mutex
	flows := map[string]*flow{}
	buf := make([]byte, 65536)
	rc, err := pc.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var sa unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			f.gate.Lock()
			defer f.gate.Unlock()
			n, sa, rerr = unix.Recvfrom(int(fd), buf, 0)
			if rerr == unix.EAGAIN {
				return false
			}
			if rerr == nil {
				f.last = time.Now()
			}
			return true
		})
		if err != nil {
			mu.Lock()
			for _, fl := range flows {
				fl.c.Close()
			}
			mu.Unlock()
			return
		}
		from := udpAddr(sa)
		if rerr != nil || from == nil {
			continue
		}
		key := from.String()
		mu.Lock()
		fl := flows[key]
		mu.Unlock()
		if fl == nil {
			c, err := f.dial("udp4", target(p))
			if err != nil {
				continue
			}
			fl = &flow{c: c, last: time.Now()}
			mu.Lock()
			flows[key] = fl
			mu.Unlock()
			go func() {
				rb := make([]byte, 65536)
				for {
					_ = c.SetReadDeadline(time.Now().Add(UDPIdle))
					m, err := c.Read(rb)
					if err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							mu.Lock()
							idle := time.Since(fl.last) >= UDPIdle
							mu.Unlock()
							if !idle {
								continue
							}
						} else if errors.Is(err, syscall.ECONNREFUSED) {
							continue // nothing listened yet for an earlier datagram
						}
						break
					}
					mu.Lock()
					fl.last = time.Now()
					mu.Unlock()
					f.gate.Lock()
					f.last = time.Now() // no Pause until the reply is out
					f.gate.Unlock()
					if _, err := pc.WriteTo(rb[:m], from); err != nil && errors.Is(err, net.ErrClosed) {
						break
					}
				}
				mu.Lock()
				if flows[key] == fl {
					delete(flows, key)
				}
				mu.Unlock()
				c.Close()
			}()
		}
		mu.Lock()
		fl.last = time.Now()
		mu.Unlock()
		_, _ = fl.c.Write(buf[:n])
	}
}

// boundPort is the local port of the socket fd.
func boundPort(fd int) (int, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port, nil
	case *unix.SockaddrInet6:
		return a.Port, nil
	}
	return 0, errors.New("not an IP socket")
}

// udpAddr is sa as a *net.UDPAddr (nil for anything but an IPv4 or IPv6 address).
func udpAddr(sa unix.Sockaddr) *net.UDPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.UDPAddr{IP: net.IP(append([]byte{}, a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		u := &net.UDPAddr{IP: net.IP(append([]byte{}, a.Addr[:]...)), Port: a.Port}
		if a.ZoneId != 0 {
			u.Zone = strconv.Itoa(int(a.ZoneId))
		}
		return u
	}
	return nil
}

// Close stops forwarding: the host ports are released and every forwarded connection ends.
func (f *Forwarder) Close() error {
	f.once.Do(func() {
		close(f.closed)
		f.mu.Lock()
		socks := f.socks
		f.socks = nil
		f.mu.Unlock()
		for _, s := range socks {
			s.Close()
		}
		f.wg.Wait()
		if f.netns != nil {
			f.netns.Close()
		}
	})
	return nil
}
