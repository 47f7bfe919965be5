package slirp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PastaDNS is the address a pasta container sends its DNS queries to; pasta hands them to the
// host's first resolver (--dns-forward), which may be on the host's loopback.
const PastaDNS = "169.254.1.1"

// PastaAvailable says why pasta cannot serve a container here, or returns its path.
func PastaAvailable() (string, error) {
	path, err := exec.LookPath("pasta")
	if err != nil {
		return "", errors.New("pasta is not installed (Debian: apt-get install passt)")
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return path, fmt.Errorf("/dev/net/tun cannot be opened (%v%s): an administrator can run `chmod 0666 /dev/net/tun`, as distributions ship it", err, tunModeNote())
	}
	unix.Close(fd)
	return path, nil
}

// Pasta is a running pasta (from passt).
type Pasta struct {
	cmd    *exec.Cmd
	output *tail
	done   chan struct{}
	once   sync.Once
}

// pastaPorts is pasta's -t or -u argument for the ports of proto: "none", or a comma-separated
// list of [ADDR/]HOST:CONTAINER.
func pastaPorts(ports []Port, proto string) string {
	var specs []string
	for _, p := range ports {
		if p.Proto != proto {
			continue
		}
		s := strconv.Itoa(p.HostPort) + ":" + strconv.Itoa(p.ContainerPort)
		if p.HostIP != "" {
			s = p.HostIP + "/" + s
		}
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return "none"
	}
	return strings.Join(specs, ",")
}

// StartPasta runs pasta for the network namespace of pid: it copies the host's addresses and
// routes into it (--config-net) and forwards ports itself (-t, -u), splicing connections
// between sockets where both ends are local. The host's loopback stays closed (-T none -U none
// --no-map-gw) unless allowHostLoopback, as with slirp4netns. pasta runs in the foreground with SIGKILL as its
// parent-death signal, so it never outlives its caller; Start returns once the namespace has
// its default route.
//
// With allowHostLoopback the container reaches the host's loopback through its default
// gateway (pasta maps the gateway address to the host).
func StartPasta(ctx context.Context, pid int, ports []Port, allowHostLoopback bool, timeout time.Duration) (*Pasta, error) {
	bin, err := PastaAvailable()
	if err != nil {
		return nil, err
	}
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	args := []string{
		"--config-net", "--foreground", "--quiet",
		"-t", pastaPorts(ports, "tcp"), "-u", pastaPorts(ports, "udp"),
		"-T", "none", "-U", "none",
		"--dns-forward", PastaDNS,
		// A path and no --userns: pasta joins only the network namespace (--netns-only), whose
		// owner, our user namespace, we are root of. Joining our own user namespace would fail.
		//
		// The namespace is handed over as an open file: the init is not dumpable, and pasta drops
		// the capabilities it would need to open /proc/PID/ns/net of such a process itself.
		"--netns", "/proc/self/fd/3",
	}
	if !allowHostLoopback {
		args = append(args, "--no-map-gw")
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("open the container's network namespace: %w", err)
	}
	defer ns.Close()
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{ns}
	cmd.Env = []string{}
	out := &tail{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pasta: %w", err)
	}
	p := &Pasta{cmd: cmd, output: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()

	// pasta in the foreground has no ready signal: its last step is the default route.
	deadline := time.Now().Add(timeout)
	for {
		if hasDefaultRoute(pid) {
			return p, nil
		}
		var why error
		select {
		case <-p.done:
			why = errors.New("it exited")
		case <-ctx.Done():
			why = ctx.Err()
		case <-time.After(5 * time.Millisecond):
			if time.Now().After(deadline) {
				why = fmt.Errorf("not ready after %v", timeout)
			}
		}
		if why != nil {
			p.Close()
			return nil, fmt.Errorf("pasta: %w%s", why, out.suffix())
		}
	}
}

// hasDefaultRoute says whether pid's network namespace has an IPv4 or IPv6 default route.
func hasDefaultRoute(pid int) bool {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/route", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(l); len(f) > 2 && f[1] == "00000000" {
				return true
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/ipv6_route", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 9 && f[0] == strings.Repeat("0", 32) && f[1] == "00" && f[9] != "lo" {
				return true
			}
		}
	}
	return false
}

// Close ends pasta and waits for it.
func (p *Pasta) Close() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return nil
}
