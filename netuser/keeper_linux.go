package netuser

// The keeper: one process per running user network, `nook-runtime netns-keeper`.
//
//	nook CLI (host, network's lock held)          keeper
//	────────────────────────────────────          ──────
//	clone(NEWUSER|NEWNET, setsid) ───────────────► netns-keeper: read(fd 3) ... blocks
//	newuidmap/newgidmap pid (idmap, as for the engine)
//	write(fd 3, "mapped\n") ─────────────────────► exec netns-keeper-run: root of the new user
//	                                               namespace, with its capabilities
//	                                               lo up; bridge nook0 with the gateway address
//	                                               listen on keeper.sock; write keeper.json
//	read(fd 4) ◄────────────────────────────────── "ready\n" (or "error ...\n")
//	connect keeper.sock (a hold); unlock
//	engine = nsenter -U -t KEEPER unshare -m shim ...: root of the KEEPER's user namespace,
//	so CAP_NET_ADMIN over the bridge's namespace and over every container namespace it makes
//	  engine or monitor ── join {member} + SCM_RIGHTS(netns fd) ──► veth pair: nkvN on nook0,
//	                                               eth0 (next free address) in the container;
//	                                               lease; every member's /etc/hosts rewritten
//	  ... container runs ...
//	  leave, or the connection closes (whatever killed its holder) ──► lease and veth gone,
//	                                               the others' /etc/hosts rewritten
//	last connection closed ──────────────────────► take the lock; nothing pending: remove
//	                                               keeper.json, keeper.sock, leases; exit
//
// The keeper lives exactly as long as some process holds a connection to it: the CLI while its
// engine runs, the engine of a foreground container, a detached container's monitor. The kernel
// closes those when their holder dies, however it died, so nothing is left behind: the veth
// pairs go with the containers' namespaces, the bridge with the keeper's.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/internal/proc"
	"github.com/nook-containers/nook/userns"
)

const (
	// Bridge is the bridge's name in the keeper's network namespace.
	Bridge = "nook0"
	// MemberInterface is a member's end of its veth pair, in the container.
	MemberInterface = "eth0"
	// vethMTU is the veth pairs' MTU: as large as slirp4netns' tap0, for fast member traffic.
	vethMTU = 65520

	keeperSyncFd  = 3
	keeperReadyFd = 4
	// firstHoldTimeout is how long a new keeper waits for its first connection.
	firstHoldTimeout = 10 * time.Second
)

// KeeperMain is `nook-runtime netns-keeper DIR ID SUBNET GATEWAY`: it waits until the CLI has
// mapped its user namespace, then executes itself again as netns-keeper-run, which runs as
// root of that namespace (an exec made before the maps exist gets no capabilities, see
// userns/handshake.go).
func KeeperMain(args []string) int {
	if userns.WaitMapped(os.NewFile(keeperSyncFd, "sync")) != nil {
		return 125
	}
	argv := append([]string{"nook-keeper", "netns-keeper-run"}, args...)
	_ = unix.Exec("/proc/self/exe", argv, os.Environ())
	return 125
}

type keeper struct {
	dir    string
	r      *rtnl
	bridge int32
	subnet *net.IPNet
	gw     net.IP
	prefix int
	l      *net.UnixListener

	mu    sync.Mutex
	conns int
	owner map[string]*net.UnixConn // container ID → the connection that joined it
	seq   int
}

// KeeperRun is `nook-runtime netns-keeper-run DIR ID SUBNET GATEWAY`, the keeper proper.
func KeeperRun(args []string) int {
	ready := os.NewFile(keeperReadyFd, "ready")
	fail := func(err error) int {
		fmt.Fprintf(ready, "error %v\n", err)
		return 125
	}
	if len(args) != 4 {
		return fail(errors.New("usage: netns-keeper-run DIR ID SUBNET GATEWAY"))
	}
	dir, id := args[0], args[1]
	_, subnet, err := net.ParseCIDR(args[2])
	if err != nil {
		return fail(err)
	}
	gw := net.ParseIP(args[3]).To4()
	if gw == nil {
		return fail(fmt.Errorf("bad gateway %q", args[3]))
	}
	prefix, _ := subnet.Mask.Size()
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGQUIT)
	k := &keeper{dir: dir, subnet: subnet, gw: gw, prefix: prefix, owner: map[string]*net.UnixConn{}}
	if err := k.setup(); err != nil {
		return fail(err)
	}
	path, closeDir, err := socketPath(dir)
	if err != nil {
		return fail(err)
	}
	_ = os.Remove(filepath.Join(dir, "keeper.sock"))
	k.l, err = net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	closeDir()
	if err != nil {
		return fail(fmt.Errorf("listen on the keeper socket: %w", err))
	}
	k.l.SetUnlinkOnClose(false)
	start, _, err := proc.Start(os.Getpid())
	if err != nil {
		return fail(err)
	}
	b, _ := json.Marshal(keeperInfo{Pid: os.Getpid(), Start: start, ID: id})
	if err := os.WriteFile(filepath.Join(dir, "keeper.json"), b, 0o600); err != nil {
		return fail(err)
	}
	fmt.Fprintln(ready, "ready")
	ready.Close()
	time.AfterFunc(firstHoldTimeout, k.idle)
	for {
		c, err := k.l.AcceptUnix()
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ECONNABORTED) {
				continue
			}
			k.exit()
		}
		k.mu.Lock()
		k.conns++
		k.mu.Unlock()
		go k.serve(c)
	}
}

// setup makes the keeper's network namespace: lo, and the bridge with the gateway address.
func (k *keeper) setup() error {
	r, err := openRtnl()
	if err != nil {
		return err
	}
	k.r = r
	if lo, err := r.linkIndex("lo"); err == nil {
		_ = r.setUp(lo, 0)
	}
	if err := r.addBridge(Bridge); err != nil {
		return err
	}
	if k.bridge, err = r.linkIndex(Bridge); err != nil {
		return err
	}
	if err := r.addAddr(k.bridge, k.gw, k.prefix); err != nil {
		return err
	}
	return r.setUp(k.bridge, 0)
}

// request is one message to the keeper; reply is its answer.
type request struct {
	Op     string  `json:"op"` // join, leave
	Member *Member `json:"member,omitempty"`
	ID     string  `json:"id,omitempty"` // leave
}

type reply struct {
	Addr  string `json:"addr,omitempty"`
	Error string `json:"error,omitempty"`
}

func (k *keeper) serve(c *net.UnixConn) {
	defer k.drop(c)
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return // the holder closed it, or died
		}
		fds := receivedFds(oob[:oobn])
		var req request
		var rep reply
		if err := json.Unmarshal(buf[:n], &req); err != nil {
			rep.Error = "bad request: " + err.Error()
		} else {
			switch req.Op {
			case "join":
				if req.Member == nil || len(fds) != 1 {
					rep.Error = "bad join request"
					break
				}
				addr, err := k.join(c, *req.Member, fds[0])
				if err != nil {
					rep.Error = err.Error()
				}
				rep.Addr = addr
			case "leave":
				k.leave(c, req.ID)
			case "hold":
			default:
				rep.Error = fmt.Sprintf("unknown request %q", req.Op)
			}
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		b, _ := json.Marshal(rep)
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

func receivedFds(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

// drop ends a connection: the members it joined leave, and the keeper exits after its last.
func (k *keeper) drop(c *net.UnixConn) {
	k.mu.Lock()
	var ids []string
	for id, o := range k.owner {
		if o == c {
			ids = append(ids, id)
		}
	}
	k.mu.Unlock()
	for _, id := range ids {
		k.leave(c, id)
	}
	c.Close()
	k.mu.Lock()
	k.conns--
	idle := k.conns == 0
	k.mu.Unlock()
	if idle {
		k.idle()
	}
}

// join gives the container whose network namespace is nsfd a veth pair on the bridge and the
// next free address, records its lease and rewrites every member's /etc/hosts.
func (k *keeper) join(c *net.UnixConn, m Member, nsfd int) (string, error) {
	unlock, err := lockPath(filepath.Join(k.dir, "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	leases, err := readLeases(k.dir)
	if err != nil {
		return "", err
	}
	kept := leases[:0]
	for _, l := range leases {
		if l.ID == m.ID {
			// The same container again (restarted by its monitor): its old pair went with its
			// old namespace, or goes now.
			_ = k.r.delLink(l.Veth)
			continue
		}
		kept = append(kept, l)
	}
	leases = kept
	addr, err := k.freeAddr(leases)
	if err != nil {
		return "", err
	}
	k.seq++
	veth := fmt.Sprintf("nkv%d", k.seq)
	mac := MACFor(addr)
	if err := k.r.addVeth(veth, MemberInterface, nsfd, vethMTU, mac); err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		_ = k.r.delLink(veth)
		return "", err
	}
	idx, err := k.r.linkIndex(veth)
	if err != nil {
		return fail(err)
	}
	if err := k.r.setUp(idx, k.bridge); err != nil {
		return fail(err)
	}
	cr, err := openRtnlIn(nsfd)
	if err != nil {
		return fail(fmt.Errorf("enter the container's network namespace: %w", err))
	}
	defer cr.close()
	eth, err := cr.linkIndex(MemberInterface)
	if err != nil {
		return fail(err)
	}
	if err := cr.addAddr(eth, addr, k.prefix); err != nil {
		return fail(err)
	}
	if err := cr.setUp(eth, 0); err != nil {
		return fail(err)
	}
	if lo, err := cr.linkIndex("lo"); err == nil {
		_ = cr.setUp(lo, 0)
	}
	leases = append(leases, Lease{ID: m.ID, Name: m.Name, Hostname: m.Hostname, Aliases: m.Aliases,
		Addr: addr.String(), MAC: mac.String(), Hosts: m.Hosts, ExtraHosts: m.ExtraHosts, Veth: veth})
	if err := writeLeases(k.dir, leases); err != nil {
		return fail(err)
	}
	rewriteHosts(leases)
	k.owner[m.ID] = c
	return addr.String(), nil
}

// freeAddr is the subnet's first address that is neither the gateway nor leased.
func (k *keeper) freeAddr(leases []Lease) (net.IP, error) {
	used := map[string]bool{k.gw.String(): true}
	for _, l := range leases {
		used[l.Addr] = true
	}
	base := k.subnet.IP.To4()
	ones, bits := k.subnet.Mask.Size()
	size := uint32(1) << (bits - ones)
	b := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := uint32(1); i < size-1; i++ {
		v := b + i
		ip := net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
		if !used[ip.String()] {
			return ip, nil
		}
	}
	return nil, fmt.Errorf("no free address left in %s", k.subnet)
}

// leave ends container id's membership, if connection c holds it.
func (k *keeper) leave(c *net.UnixConn, id string) {
	unlock, err := lockPath(filepath.Join(k.dir, "lock"))
	if err != nil {
		return
	}
	defer unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.owner[id] != c {
		return // joined again through another connection since
	}
	delete(k.owner, id)
	leases, err := readLeases(k.dir)
	if err != nil {
		return
	}
	kept := leases[:0]
	for _, l := range leases {
		if l.ID == id {
			_ = k.r.delLink(l.Veth) // usually gone already, with the container's namespace
			continue
		}
		kept = append(kept, l)
	}
	_ = writeLeases(k.dir, kept)
	rewriteHosts(kept)
}

// idle exits the keeper if nothing holds it. Under the network's lock, so that a CLI that found
// this keeper alive has connected by then; a connection it made that is not accepted yet shows
// as the listening socket being readable.
func (k *keeper) idle() {
	unlock, err := lockPath(filepath.Join(k.dir, "lock"))
	if err != nil {
		return
	}
	k.mu.Lock()
	if k.conns > 0 || k.pending() {
		k.mu.Unlock()
		unlock()
		return
	}
	k.exit() // the lock goes with the process
}

func (k *keeper) pending() bool {
	rc, err := k.l.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	_ = rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)
		ready = err == nil && n > 0
	})
	return ready
}

func (k *keeper) exit() {
	for _, f := range []string{"keeper.sock", "keeper.json", "leases.json", "leases.json.tmp"} {
		_ = os.Remove(filepath.Join(k.dir, f))
	}
	os.Exit(0)
}
