package netuser

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nook-containers/nook/userns"
	"golang.org/x/sys/unix"
)

// Member is a container joining a network: what the engine writes into the container's network
// config for whoever starts it (the engine, or the monitor at every restart).
type Member struct {
	Network  string   `json:"network"`
	Dir      string   `json:"dir"` // StateDir of the network
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Hostname string   `json:"hostname,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	Hosts    string   `json:"hosts"`
	// ExtraHosts are the member's own /etc/hosts lines (--add-host), after the localhost lines.
	ExtraHosts string `json:"extraHosts,omitempty"`
	Subnet     string `json:"subnet,omitempty"` // the network's, for what stays off bypass4netns
}

// client is this process's connection to a keeper. It stays open for the process's life, so a
// monitor that restarts its container keeps the network alive in between.
type client struct {
	mu sync.Mutex
	c  *net.UnixConn
}

var (
	clientsMu sync.Mutex
	clients   = map[string]*client{}
)

func dial(dir string) (*net.UnixConn, error) {
	path, closeDir, err := socketPath(dir)
	if err != nil {
		return nil, err
	}
	defer closeDir()
	return net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
}

func clientFor(dir string) (*client, error) {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c := clients[dir]; c != nil {
		return c, nil
	}
	c, err := dial(dir)
	if err != nil {
		return nil, err
	}
	clients[dir] = &client{c: c}
	return clients[dir], nil
}

func (c *client) call(req request, fd int) (reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(req)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	if _, _, err := c.c.WriteMsgUnix(b, oob, nil); err != nil {
		return reply{}, err
	}
	_ = c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.c.Read(buf)
	if err != nil {
		return reply{}, err
	}
	var rep reply
	if err := json.Unmarshal(buf[:n], &rep); err != nil {
		return reply{}, err
	}
	return rep, nil
}

// Joined is a container's membership of a network.
type Joined struct {
	c    *client
	id   string
	Addr string
}

// Join makes the container whose init is pid a member of m.Network: eth0 with an address on the
// network's bridge, and its name in every member's /etc/hosts. The caller must be in the
// keeper's user namespace (the CLI entered it) and the keeper must be running (the CLI holds it).
func Join(m Member, pid int) (*Joined, error) {
	c, err := clientFor(m.Dir)
	if err != nil {
		return nil, fmt.Errorf("join network %s: its keeper is not running (%v): start the container again", m.Network, err)
	}
	ns, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("join network %s: open the container's network namespace: %w", m.Network, err)
	}
	defer unix.Close(ns)
	rep, err := c.call(request{Op: "join", Member: &m}, ns)
	if err == nil && rep.Error != "" {
		err = errors.New(rep.Error)
	}
	if err != nil {
		return nil, fmt.Errorf("join network %s: %w", m.Network, err)
	}
	return &Joined{c: c, id: m.ID, Addr: rep.Addr}, nil
}

// Leave ends the membership (the connection stays, holding the keeper, until the process ends).
func (j *Joined) Leave() {
	if j == nil {
		return
	}
	_, _ = j.c.call(request{Op: "leave", ID: j.id}, -1)
}

// Keeper is a running keeper held by this process.
type Keeper struct {
	Pid int
	c   *net.UnixConn
}

// Close releases the hold.
func (k *Keeper) Close() {
	if k != nil && k.c != nil {
		k.c.Close()
	}
}

// Hold finds network n's keeper, or starts it, and holds it (a connection) until Close or the
// end of this process. It runs in the CLI, on the host: the new keeper's user namespace is
// mapped by mapIDs (newuidmap/newgidmap, with the mapping every engine gets). runtime is
// nook-runtime's path.
func Hold(runRoot string, n *Network, runtime string, mapIDs func(pid int) error) (*Keeper, error) {
	dir := StateDir(runRoot, n.Name)
	unlock, err := lockState(runRoot, n.Name)
	if err != nil {
		return nil, fmt.Errorf("lock network %s: %w", n.Name, err)
	}
	defer unlock()
	if k, alive := readKeeper(dir); alive {
		if k.ID != n.ID {
			return nil, fmt.Errorf("network %s was removed and created again while containers of the old one run: stop them first", n.Name)
		}
		if c, err := dial(dir); err == nil {
			return &Keeper{Pid: k.Pid, c: c}, nil
		}
	}
	// No keeper, or a dead one's files: a new keeper is a new namespace, with no members yet.
	for _, f := range []string{"keeper.sock", "keeper.json", "leases.json"} {
		_ = os.Remove(filepath.Join(dir, f))
	}
	pid, err := startKeeper(dir, n, runtime, mapIDs)
	if err != nil {
		return nil, fmt.Errorf("start network %s: %w", n.Name, err)
	}
	c, err := dial(dir)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("start network %s: connect to its keeper: %w", n.Name, err)
	}
	return &Keeper{Pid: pid, c: c}, nil
}

func startKeeper(dir string, n *Network, runtime string, mapIDs func(pid int) error) (int, error) {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer syncW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		syncR.Close()
		return 0, err
	}
	defer readyR.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		syncR.Close()
		readyW.Close()
		return 0, err
	}
	defer null.Close()
	cmd := exec.Command(runtime, "netns-keeper", dir, n.ID, n.Subnet, n.Gateway)
	cmd.Args[0] = "nook-keeper"
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{syncR, readyW} // fds 3 and 4
	// Its own session: a Ctrl-C in the user's terminal is not for it. No parent-death
	// signal: it outlives this CLI while detached members hold it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET, Setsid: true}
	err = cmd.Start()
	syncR.Close()
	readyW.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s netns-keeper: %w", runtime, err)
	}
	pid := cmd.Process.Pid
	kill := func(err error) (int, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, err
	}
	if err := mapIDs(pid); err != nil {
		return kill(fmt.Errorf("map the keeper's user namespace: %w", err))
	}
	if _, err := syncW.Write([]byte(userns.MsgMapped)); err != nil {
		return kill(err)
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case line := <-got:
		if line != "ready" {
			if msg, ok := strings.CutPrefix(line, "error "); ok {
				return kill(errors.New(msg))
			}
			return kill(errors.New("the keeper ended before it was ready"))
		}
	case <-time.After(10 * time.Second):
		return kill(errors.New("the keeper was not ready within 10 s"))
	}
	// Reaped whenever it ends, should this CLI still run then.
	go func() { _ = cmd.Wait() }()
	return pid, nil
}
