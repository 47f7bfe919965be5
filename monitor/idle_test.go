package monitor

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nook-containers/nook/slirp"
)

func TestHandoffRoundTrip(t *testing.T) {
	for _, h := range []handoff{
		{Pid: 42, Out: 5, Err: 6, Console: -1, Stdin: 7, StdinR: 8, Listener: 9, Cgroup: 4,
			Slirp: slirp.Handoff{Pid: 43, ExitFd: 10, OutFd: 11}, Fwd: slirp.ForwarderHandoff{Netns: -1},
			NoRestart: true, Backoff: 800 * time.Millisecond},
		{Pid: 42, Out: 5, Err: 6, Console: -1, Stdin: -1, StdinR: -1, Listener: 9, Cgroup: -1,
			Slirp: slirp.Handoff{Pid: 43, ExitFd: 10, OutFd: 11}, Fwd: slirp.ForwarderHandoff{Netns: 12, Socks: []int{13, 14}},
			Backoff: time.Millisecond},
	} {
		got, err := parseHandoff(h.String())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Fatalf("parseHandoff(%q) = %+v, want %+v", h.String(), got, h)
		}
	}
	for _, bad := range []string{"", "pid=1", "pid=x,lst=3", "pid=1,lst=3,what=2", "lst=3",
		"pid=1,lst=3,fwd=4", "pid=1,lst=3,fwdns=4", "pid=1,lst=3,fwdns=4,fwd=", "pid=1,lst=3,fwdns=4,fwd=5::6",
		"pid=1,lst=3,fwdns=4,fwd=-5", "pid=1,lst=3,fwdns=4,fwd=" + strings.Repeat("5:", idleMaxFds) + "5"} {
		if _, err := parseHandoff(bad); err == nil {
			t.Errorf("parseHandoff(%q): no error", bad)
		}
	}
}

func TestSigmask(t *testing.T) {
	// SIGHUP 1, SIGINT 2, SIGQUIT 3, SIGUSR1 10, SIGUSR2 12, SIGTERM 15, SIGCHLD 17: what
	// nook-idle's signalfd watches (monitor/idle/idle.c).
	want := uint64(1<<0 | 1<<1 | 1<<2 | 1<<9 | 1<<11 | 1<<14 | 1<<16)
	if got := sigmask(); got != want {
		t.Fatalf("sigmask() = %#x, want %#x", got, want)
	}
}

// nook-idle polls as many fds as the Go side may hand it.
func TestIdleMaxFds(t *testing.T) {
	b, err := os.ReadFile("idle/idle.c")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`MAXFDS = (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no MAXFDS in idle/idle.c")
	}
	if n, _ := strconv.Atoi(string(m[1])); n != idleMaxFds {
		t.Fatalf("idle.c's MAXFDS is %d, idleMaxFds %d", n, idleMaxFds)
	}
}

// FuzzParseHandoff: any string either fails to parse or parses into a hand-over that prints
// back to a string parsing into the same hand-over, with an init and an attach socket.
func FuzzParseHandoff(f *testing.F) {
	f.Add("pid=42,out=5,err=6,con=-1,in=7,inr=8,lst=9,cg=4,slirp=43,slirpexit=10,slirpout=11,norestart=1,backoff=800")
	f.Add("pid=1,lst=3")
	f.Add("")
	f.Add("pid=1,lst=3,backoff=-5,norestart=7")
	f.Add("pid=1,lst=3,backoff=9223372036854775807")
	f.Add("pid=42,lst=9,slirp=43,slirpexit=10,slirpout=11,fwdns=12,fwd=13:14:15")
	f.Add("pid=42,lst=9,fwdns=12,fwd=13:,fwd=4")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHandoff(s)
		if err != nil {
			return
		}
		if h.Pid <= 0 || h.Listener < 0 || h.Backoff <= 0 {
			t.Fatalf("parseHandoff(%q) = %+v: accepted without an init, an attach socket or a backoff", s, h)
		}
		if (len(h.Fwd.Socks) > 0) != (h.Fwd.Netns >= 0) || len(h.Fwd.Socks) > idleMaxFds {
			t.Fatalf("parseHandoff(%q) = %+v: a forwarder without its netns or sockets, or too many", s, h)
		}
		for _, fd := range h.Fwd.Socks {
			if fd < 0 {
				t.Fatalf("parseHandoff(%q) = %+v: a negative host socket", s, h)
			}
		}
		again, err := parseHandoff(h.String())
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("parseHandoff(%q) = %+v; its String %q parses to %+v, %v", s, h, h.String(), again, err)
		}
	})
}
