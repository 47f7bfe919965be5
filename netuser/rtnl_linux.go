package netuser

// A small rtnetlink client: the five requests a user network needs (make a bridge, make a veth
// pair with one end in another network namespace, attach and bring up a link, give it an
// address, delete a link). It is written here with x/sys rather than linked from
// vishvananda/netlink because it runs in nook-runtime, which stays lean, and these requests
// are a few fixed byte layouts (rtnetlink(7), include/uapi/linux/if_link.h).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	goruntime "runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// vethInfoPeer is VETH_INFO_PEER (include/uapi/linux/veth.h), which x/sys does not name.
const vethInfoPeer = 1

// rtnl is a NETLINK_ROUTE socket. It acts on the network namespace it was made in, whatever
// namespace its user's thread is in later.
type rtnl struct {
	fd  int
	seq uint32
}

func openRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket netlink", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind netlink", err)
	}
	return &rtnl{fd: fd}, nil
}

// openRtnlIn makes a socket in the network namespace nsfd: from a thread that enters it, makes
// the socket and comes back (the caller must be able to enter both namespaces: root of the
// user namespace that owns them).
func openRtnlIn(nsfd int) (*rtnl, error) {
	goruntime.LockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		goruntime.UnlockOSThread()
		return nil, err
	}
	defer unix.Close(self)
	if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
		goruntime.UnlockOSThread()
		return nil, os.NewSyscallError("setns", err)
	}
	r, err := openRtnl()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so Go retires it with the goroutine: no other goroutine
		// ever runs in the wrong namespace.
		if r != nil {
			r.close()
		}
		return nil, os.NewSyscallError("setns back", err)
	}
	goruntime.UnlockOSThread()
	return r, err
}

func (r *rtnl) close() { unix.Close(r.fd) }

// attr is one rtattr; nested attributes are attrs whose data is other attrs.
type attr struct {
	typ  uint16
	data []byte
}

func attrString(typ uint16, s string) attr { return attr{typ, append([]byte(s), 0)} }
func attrU32(typ uint16, v uint32) attr {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return attr{typ, b}
}
func attrNest(typ uint16, as ...attr) attr { return attr{typ | unix.NLA_F_NESTED, encodeAttrs(as)} }

func align4(n int) int { return (n + 3) &^ 3 }

func encodeAttrs(as []attr) []byte {
	var out []byte
	for _, a := range as {
		b := make([]byte, align4(4+len(a.data)))
		binary.NativeEndian.PutUint16(b[0:], uint16(4+len(a.data)))
		binary.NativeEndian.PutUint16(b[2:], a.typ)
		copy(b[4:], a.data)
		out = append(out, b...)
	}
	return out
}

// ifinfomsg encodes struct ifinfomsg (16 bytes).
func ifinfomsg(index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// do sends one request and waits for its acknowledgement; it returns the replies before it.
func (r *rtnl) do(typ, flags uint16, body []byte) ([][]byte, error) {
	r.seq++
	msg := make([]byte, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], r.seq)
	copy(msg[unix.SizeofNlMsghdr:], body)
	if err := unix.Sendto(r.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto netlink", err)
	}
	var replies [][]byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("recvfrom netlink", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != r.seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("short netlink error")
				}
				if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return nil, syscall.Errno(-e)
				}
				return replies, nil
			case unix.NLMSG_DONE:
				return replies, nil
			default:
				replies = append(replies, append([]byte(nil), m.Data...))
			}
		}
	}
}

// linkIndex returns the index of the link called name.
func (r *rtnl) linkIndex(name string) (int32, error) {
	body := append(ifinfomsg(0, 0, 0), encodeAttrs([]attr{attrString(unix.IFLA_IFNAME, name)})...)
	replies, err := r.do(unix.RTM_GETLINK, 0, body)
	if err != nil {
		return 0, fmt.Errorf("find link %s: %w", name, err)
	}
	for _, m := range replies {
		if len(m) >= unix.SizeofIfInfomsg {
			return int32(binary.NativeEndian.Uint32(m[4:])), nil
		}
	}
	return 0, fmt.Errorf("find link %s: no reply", name)
}

// addBridge makes a bridge.
func (r *rtnl) addBridge(name string) error {
	body := append(ifinfomsg(0, 0, 0), encodeAttrs([]attr{
		attrString(unix.IFLA_IFNAME, name),
		attrNest(unix.IFLA_LINKINFO, attrString(unix.IFLA_INFO_KIND, "bridge")),
	})...)
	if _, err := r.do(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
		return fmt.Errorf("create bridge %s: %w", name, err)
	}
	return nil
}

// addVeth makes a veth pair: name here, peer in the network namespace peerNS, both with mtu.
func (r *rtnl) addVeth(name, peer string, peerNS int, mtu int, peerMAC net.HardwareAddr) error {
	peerAttrs := []attr{
		attrString(unix.IFLA_IFNAME, peer),
		attrU32(unix.IFLA_MTU, uint32(mtu)),
		attrU32(unix.IFLA_NET_NS_FD, uint32(peerNS)),
	}
	if len(peerMAC) > 0 {
		peerAttrs = append(peerAttrs, attr{unix.IFLA_ADDRESS, []byte(peerMAC)})
	}
	peerMsg := append(ifinfomsg(0, 0, 0), encodeAttrs(peerAttrs)...)
	body := append(ifinfomsg(0, 0, 0), encodeAttrs([]attr{
		attrString(unix.IFLA_IFNAME, name),
		attrU32(unix.IFLA_MTU, uint32(mtu)),
		attrNest(unix.IFLA_LINKINFO,
			attrString(unix.IFLA_INFO_KIND, "veth"),
			attrNest(unix.IFLA_INFO_DATA, attr{vethInfoPeer | unix.NLA_F_NESTED, peerMsg}),
		),
	})...)
	if _, err := r.do(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
		return fmt.Errorf("create veth pair %s/%s: %w", name, peer, err)
	}
	return nil
}

// setUp brings link index up and, when master is not 0, attaches it to that bridge.
func (r *rtnl) setUp(index, master int32) error {
	var as []attr
	if master != 0 {
		as = append(as, attrU32(unix.IFLA_MASTER, uint32(master)))
	}
	body := append(ifinfomsg(index, unix.IFF_UP, unix.IFF_UP), encodeAttrs(as)...)
	if _, err := r.do(unix.RTM_NEWLINK, 0, body); err != nil {
		return fmt.Errorf("bring link %d up: %w", index, err)
	}
	return nil
}

// addAddr gives link index the IPv4 address ip/prefix (and the subnet's broadcast address).
func (r *rtnl) addAddr(index int32, ip net.IP, prefix int) error {
	ip4 := ip.To4()
	if ip4 == nil {
		return fmt.Errorf("add address %s: only IPv4 is supported", ip)
	}
	mask := net.CIDRMask(prefix, 32)
	brd := make(net.IP, 4)
	for i := range brd {
		brd[i] = ip4[i] | ^mask[i]
	}
	msg := make([]byte, unix.SizeofIfAddrmsg)
	msg[0] = unix.AF_INET
	msg[1] = byte(prefix)
	msg[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(msg[4:], uint32(index))
	body := append(msg, encodeAttrs([]attr{
		{unix.IFA_LOCAL, []byte(ip4)},
		{unix.IFA_ADDRESS, []byte(ip4)},
		{unix.IFA_BROADCAST, []byte(brd)},
	})...)
	if _, err := r.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
		return fmt.Errorf("add address %s/%d: %w", ip, prefix, err)
	}
	return nil
}

// delLink deletes the link called name (a veth's deletion takes its peer with it).
func (r *rtnl) delLink(name string) error {
	body := append(ifinfomsg(0, 0, 0), encodeAttrs([]attr{attrString(unix.IFLA_IFNAME, name)})...)
	if _, err := r.do(unix.RTM_DELLINK, 0, body); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// Probe says why user networks cannot work here, or returns nil: the helpers the CLI runs
// (nsenter and unshare from util-linux) must be installed, and the kernel must let root of a
// user namespace make a bridge and a veth pair in a network namespace of its own. It runs in
// the engine (root of its user namespace), on a thread that enters a new network namespace and
// is then retired with its goroutine.
func Probe() error {
	for _, bin := range []string{"nsenter", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed (Debian: apt-get install util-linux)", bin)
		}
	}
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread ends in the probe's namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("cannot make a network namespace in nook's user namespace: %w", err)
			return
		}
		r, err := openRtnl()
		if err != nil {
			done <- err
			return
		}
		defer r.close()
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(self)
		if err := r.addBridge(Bridge); err != nil {
			done <- fmt.Errorf("%w (is the kernel's bridge module available?)", err)
			return
		}
		if err := r.addVeth("nkprobe0", "nkprobe1", self, vethMTU, nil); err != nil {
			done <- fmt.Errorf("%w (is the kernel's veth module available?)", err)
			return
		}
		done <- nil
	}()
	return <-done
}
