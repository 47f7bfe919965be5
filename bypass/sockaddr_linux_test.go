package bypass

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func sockaddrBytes(family uint16, a netip.AddrPort) []byte {
	var b []byte
	if family == unix.AF_INET {
		b = make([]byte, unix.SizeofSockaddrInet4)
		ip := a.Addr().As4()
		copy(b[4:8], ip[:])
	} else {
		b = make([]byte, unix.SizeofSockaddrInet6)
		ip := a.Addr().As16()
		copy(b[8:24], ip[:])
	}
	binary.NativeEndian.PutUint16(b, family)
	binary.BigEndian.PutUint16(b[2:4], a.Port())
	return b
}

func TestDecodeSockaddr(t *testing.T) {
	for _, c := range []struct {
		family uint16
		a      string
	}{{unix.AF_INET, "192.0.2.7:8080"}, {unix.AF_INET6, "[2001:db8::1]:443"}, {unix.AF_INET6, "[::ffff:10.0.2.2]:80"}} {
		want := netip.MustParseAddrPort(c.a)
		b := sockaddrBytes(c.family, want)
		family, got, ok := decodeSockaddr(b)
		if !ok || family != c.family || got != want {
			t.Errorf("decodeSockaddr(%s) = %d %v %v, want %d %v true", c.a, family, got, ok, c.family, want)
		}
		if _, _, ok := decodeSockaddr(b[:len(b)-1]); ok {
			t.Errorf("decodeSockaddr of a short %s: ok", c.a)
		}
	}
	unixAddr := make([]byte, 110)
	binary.NativeEndian.PutUint16(unixAddr, unix.AF_UNIX)
	for _, b := range [][]byte{nil, {2}, unixAddr} {
		if _, _, ok := decodeSockaddr(b); ok {
			t.Errorf("decodeSockaddr(%v): ok", b)
		}
	}
}

// FuzzDecodeSockaddr: the handler decodes bytes a container wrote. Any input either is refused
// or decodes into an address of its family that encodes back into the same bytes.
func FuzzDecodeSockaddr(f *testing.F) {
	f.Add(sockaddrBytes(unix.AF_INET, netip.MustParseAddrPort("127.0.0.1:80")))
	f.Add(sockaddrBytes(unix.AF_INET6, netip.MustParseAddrPort("[::1]:80")))
	f.Add([]byte{1, 0, '/', 't', 'm', 'p'})
	f.Fuzz(func(t *testing.T, b []byte) {
		family, a, ok := decodeSockaddr(b)
		if !ok {
			return
		}
		var back []byte
		switch family {
		case unix.AF_INET:
			if !a.Addr().Is4() {
				t.Fatalf("decodeSockaddr(%x): AF_INET with %v", b, a)
			}
			back = sockaddrBytes(family, a)
			if !bytes.Equal(back[:8], b[:8]) {
				t.Fatalf("decodeSockaddr(%x) = %v, which encodes to %x", b, a, back)
			}
		case unix.AF_INET6:
			if !a.Addr().Is6() {
				t.Fatalf("decodeSockaddr(%x): AF_INET6 with %v", b, a)
			}
			back = sockaddrBytes(family, a)
			if !bytes.Equal(back[:4], b[:4]) || !bytes.Equal(back[8:24], b[8:24]) {
				t.Fatalf("decodeSockaddr(%x) = %v, which encodes to %x", b, a, back)
			}
		default:
			t.Fatalf("decodeSockaddr(%x): family %d accepted", b, family)
		}
	})
}
