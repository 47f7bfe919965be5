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
	socks  []io.Closer // listeners, packet conns and live connections
	wg     sync.WaitGroup
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
	f := &Forwarder{dials: make(chan dialReq), closed: make(chan struct{})}
	for _, p := range ports {
		var s io.Closer
		var err error
		switch p.Proto {
		case "tcp":
			s, err = net.Listen(p.Network(), p.ListenAddr())
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
		f.socks = append(f.socks, &published{Closer: s, port: p})
	}
	return f, nil
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
	f.netns = ns
	ready := make(chan error, 1)
	go f.dialer(ready)
	if err := <-ready; err != nil {
		return err
	}
	f.mu.Lock()
	socks := append([]io.Closer{}, f.socks...)
	f.mu.Unlock()
	for _, s := range socks {
		p := s.(*published)
		f.wg.Add(1)
		switch l := p.Closer.(type) {
		case net.Listener:
			go f.serveTCP(l, p.port)
		case net.PacketConn:
			go f.serveUDP(l, p.port)
		}
	}
	return nil
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

func (f *Forwarder) serveTCP(l net.Listener, p Port) {
	defer f.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-f.closed:
				return
			case <-time.After(10 * time.Millisecond): // EMFILE and friends: back off
			}
			continue
		}
		go f.forwardTCP(c.(*net.TCPConn), p)
	}
}

// forwardTCP splices one connection both ways. Copies between two TCP sockets go through
// splice(2) (TCPConn.ReadFrom), so the payload never enters this process.
func (f *Forwarder) forwardTCP(h *net.TCPConn, p Port) {
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
func (f *Forwarder) serveUDP(pc net.PacketConn, p Port) {
	defer f.wg.Done()
	type flow struct {
		c    net.Conn
		last time.Time
	}
	var mu sync.Mutex
	flows := map[string]*flow{}
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				mu.Lock()
				for _, fl := range flows {
					fl.c.Close()
				}
				mu.Unlock()
				return
			}
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
