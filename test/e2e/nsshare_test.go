package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sharing namespaces with another container or the host: --network container:, --pid, --ipc,
// --uts.

// ifaces lists a container's network interfaces and addresses, as its processes see them.
const ifaces = `ip -o addr | awk '{print $2, $3, $4}'; cut -d: -f1 /proc/net/dev | tail -n +3 | sort`

func TestNsShareNetworkContainer(t *testing.T) {
	s := useMain(t)
	nh := netHelper(t)
	srv := "nsnet" + strconv.Itoa(os.Getpid())
	srvID := runDetached(t, s, "--name", srv, "-h", "srvhost", "-v", nh+":/nh:ro", "demo", "/nh/nh", "tcppeer", "8080")

	// The server listens on the shared namespace's loopback: reached on 127.0.0.1, the peer
	// is 127.0.0.1 too.
	r := s.mustNook(t, "run", "--rm", "--network", "container:"+srv, "demo", "sh", "-c", ncRetry("127.0.0.1", "8080"))
	if !strings.HasPrefix(r.Stdout, "peer 127.0.0.1:") {
		t.Fatalf("a container joining %s's network did not reach its server on 127.0.0.1:8080:\n%s", srv, r)
	}
	// The same interfaces and addresses, and the same namespace.
	want := s.mustNook(t, "exec", srv, "sh", "-c", ifaces+"; readlink /proc/self/ns/net").Stdout
	got := s.mustNook(t, "run", "--rm", "--network", "container:"+srvID[:12], "demo", "sh", "-c", ifaces+"; readlink /proc/self/ns/net").Stdout
	assertEqual(t, "interfaces, addresses and network namespace seen by the joining container", got, want)
	if !strings.Contains(want, "lo") {
		t.Fatalf("no interface listed by %q:\n%s", ifaces, want)
	}
	// Docker's container mode: the other's hostname, /etc/hosts and /etc/resolv.conf.
	etc := "hostname; cat /etc/hosts /etc/resolv.conf"
	assertEqual(t, "hostname and /etc files of the joining container",
		s.mustNook(t, "run", "--rm", "--net", "container:"+srv, "demo", "sh", "-c", etc).Stdout,
		s.mustNook(t, "exec", srv, "sh", "-c", etc).Stdout)

	// Kept in the record: start joins again, and inspect says so as Docker does.
	cli := srv + "-cli"
	s.mustNook(t, "create", "--name", cli, "--network", "container:"+srv, "demo", "sh", "-c", "readlink /proc/self/ns/net")
	t.Cleanup(func() { s.nook(t, "rm", "-f", cli) })
	assertEqual(t, "HostConfig.NetworkMode", field(inspectDoc(t, s, cli), "HostConfig", "NetworkMode"), `"container:`+srvID+`"`)
	s.mustNook(t, "start", "-a", cli)
	assertEqual(t, "network namespace of a started container:", s.mustNook(t, "logs", cli).Stdout,
		s.mustNook(t, "exec", srv, "readlink", "/proc/self/ns/net").Stdout)

	// Refusals: -p (the ports are the other container's), an unknown container, a stopped one.
	r = s.nook(t, "run", "--rm", "--network", "container:"+srv, "-p", "8080", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "conflicting options", "port publishing")
	r = s.nook(t, "run", "--rm", "--network", "container:nosuch"+srv, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "no such container")
	r = s.nook(t, "run", "--rm", "--network", "container:"+srv, "-h", "x", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "conflicting options", "hostname")
	s.mustNook(t, "stop", "-t", "0", srv)
	r = s.nook(t, "run", "--rm", "--network", "container:"+srv, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "non running container", srv, "nook start")
	r = s.nook(t, "start", cli)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "non running container", srv)
}

func TestNsSharePIDContainer(t *testing.T) {
	s := useMain(t)
	a := "nspid" + strconv.Itoa(os.Getpid())
	aID := runDetached(t, s, "--name", a, "demo", "sh", "-c", termTrap)
	waitLog(t, s, a, "ready", 10*time.Second)
	// The other container's processes, its PID 1 first.
	r := s.mustNook(t, "run", "--rm", "--pid", "container:"+a, "demo", "sh", "-c", "ps -o pid,args; readlink /proc/self/ns/pid")
	assertMatch(t, "ps in a container sharing "+a+"'s PID namespace", r.Stdout, `(?m)^\s*1 sh -c trap`)
	assertContains(t, "PID namespace", r.Stdout, strings.TrimSpace(s.mustNook(t, "exec", a, "readlink", "/proc/self/ns/pid").Stdout))
	// And the other way round: a long-lived joiner shows in the first one's ps.
	b := a + "-b"
	runDetached(t, s, "--name", b, "--pid", "container:"+aID, "demo", "sleep", "123.5")
	assertEqual(t, "HostConfig.PidMode", field(inspectDoc(t, s, b), "HostConfig", "PidMode"), `"container:`+aID+`"`)
	var ps string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ps = s.mustNook(t, "exec", a, "ps", "-o", "args").Stdout; strings.Contains(ps, "sleep 123.5") {
			break
		}
	}
	assertContains(t, "ps in "+a+" after another container joined its PID namespace", ps, "sleep 123.5")

	s.mustNook(t, "rm", "-f", b)
	r = s.nook(t, "run", "--rm", "--pid", "container:nosuch"+a, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "no such container")
	r = s.nook(t, "run", "--rm", "--pid", "bogus", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--pid", "host")
	s.mustNook(t, "stop", "-t", "0", a)
	r = s.nook(t, "run", "--rm", "--pid", "container:"+a, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "non running container", a)
}

func TestNsSharePIDHost(t *testing.T) {
	s := useMain(t)
	// A host process the container must see, by its unique command line.
	marker := "7" + strconv.Itoa(os.Getpid()) + ".25"
	host := exec.Command("sleep", marker)
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	r := s.mustNook(t, "run", "--rm", "--pid", "host", "demo", "sh", "-c", "ps -o pid,args; readlink /proc/self/ns/pid")
	assertMatch(t, "ps in a container in the host's PID namespace", r.Stdout, `(?m)^\s*`+strconv.Itoa(host.Process.Pid)+` sleep `+strings.ReplaceAll(marker, ".", `\.`)+`$`)
	self, _ := os.Readlink("/proc/self/ns/pid")
	assertContains(t, "PID namespace", r.Stdout, self)
	// Without --pid host, it is not there.
	r = s.mustNook(t, "run", "--rm", "demo", "ps", "-o", "args")
	assertNotContains(t, "ps in a container of its own PID namespace", r.Stdout, marker)
}

func TestNsShareIPCAndUTS(t *testing.T) {
	s := useMain(t)
	a := "nsipc" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", a, "--ipc", "shareable", "demo", "sh", "-c", termTrap)
	waitLog(t, s, a, "ready", 10*time.Second)
	assertEqual(t, "HostConfig.IpcMode", field(inspectDoc(t, s, a), "HostConfig", "IpcMode"), `"shareable"`)
	want := s.mustNook(t, "exec", a, "readlink", "/proc/self/ns/ipc").Stdout
	assertEqual(t, "IPC namespace of --ipc container:", s.mustNook(t, "run", "--rm", "--ipc", "container:"+a, "demo", "readlink", "/proc/self/ns/ipc").Stdout, want)
	if got := s.mustNook(t, "run", "--rm", "demo", "readlink", "/proc/self/ns/ipc").Stdout; got == want {
		t.Errorf("a container of its own has the IPC namespace of %s: %s", a, got)
	}
	self, _ := os.Readlink("/proc/self/ns/ipc")
	assertEqual(t, "IPC namespace of --ipc host", s.mustNook(t, "run", "--rm", "--ipc", "host", "demo", "readlink", "/proc/self/ns/ipc").Stdout, self+"\n")

	// A private one (the default) cannot be joined, as in Docker.
	p := a + "-p"
	runDetached(t, s, "--name", p, "demo", "sleep", "600")
	assertEqual(t, "HostConfig.IpcMode", field(inspectDoc(t, s, p), "HostConfig", "IpcMode"), `"private"`)
	r := s.nook(t, "run", "--rm", "--ipc", "container:"+p, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "non-shareable IPC", "--ipc shareable")

	host, _ := os.Hostname()
	selfUTS, _ := os.Readlink("/proc/self/ns/uts")
	r = s.mustNook(t, "run", "--rm", "--uts", "host", "demo", "sh", "-c", "hostname; readlink /proc/self/ns/uts")
	assertEqual(t, "hostname and UTS namespace of --uts host", r.Stdout, host+"\n"+selfUTS+"\n")
	r = s.nook(t, "run", "--rm", "--uts", "host", "-h", "x", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "conflicting options", "hostname")
	_ = context.Background
}

func TestNsShareExecEnvFileAndPrivileged(t *testing.T) {
	s := useMain(t)
	name := execContainer(t, s)
	envFile := t.TempDir() + "/env"
	if err := os.WriteFile(envFile, []byte("# a comment\nFROMFILE=one\nBOTH=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The file first, then -e over it, as run's.
	env := s.mustNook(t, "exec", "--env-file", envFile, "-e", "BOTH=flag", name, "env").Stdout
	assertContains(t, "exec --env-file", env, "FROMFILE=one\n")
	assertContains(t, "exec -e over --env-file", env, "BOTH=flag\n")
	r := s.nook(t, "exec", "--env-file", envFile+".missing", name, "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "env file")

	// --privileged: the capabilities of a privileged container, without seccomp.
	want := s.mustNook(t, "run", "--rm", "--privileged", "demo", "grep", "-E", "^(CapEff|CapBnd|Seccomp):", "/proc/self/status").Stdout
	got := s.mustNook(t, "exec", "--privileged", name, "grep", "-E", "^(CapEff|CapBnd|Seccomp):", "/proc/self/status").Stdout
	assertEqual(t, "capabilities and seccomp of exec --privileged", got, want)
	assertMatch(t, "seccomp of exec --privileged", got, `Seccomp:\s+0`)
	plain := s.mustNook(t, "exec", name, "grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status").Stdout
	assertContains(t, "exec without --privileged", plain, "CapEff:\t00000000a80425fb")
	assertMatch(t, "seccomp of exec without --privileged", plain, `Seccomp:\s+2`)
}
