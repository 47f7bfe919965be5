package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nook-containers/nook/monitor"
)

// TopProcess is one line of `nook top`.
type TopProcess struct {
	UID, PID, PPID, Cmd string
}

// Top lists the processes of a running container: its init and every descendant, with host
// PIDs as Docker shows them.
func (e *Engine) Top(ref string) ([]TopProcess, error) {
	c, err := e.FindContainer(ref)
	if err != nil {
		return nil, err
	}
	if c.State != StateRunning || c.InitPid <= 0 {
		return nil, fmt.Errorf("container %s is not running", ref)
	}
	type proc struct {
		ppid int
		uid  string
	}
	procs := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/status")
		if err != nil {
			continue
		}
		var p proc
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "PPid:" {
				p.ppid, _ = strconv.Atoi(f[1])
			}
			if len(f) >= 2 && f[0] == "Uid:" {
				p.uid = f[1]
			}
		}
		procs[pid] = p
	}
	in := map[int]bool{c.InitPid: true}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if !in[pid] && in[p.ppid] {
				in[pid], changed = true, true
			}
		}
	}
	var pids []int
	for pid := range in {
		if _, ok := procs[pid]; ok {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	var out []TopProcess
	for _, pid := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		line := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		out = append(out, TopProcess{UID: procs[pid].uid, PID: strconv.Itoa(pid), PPID: strconv.Itoa(procs[pid].ppid), Cmd: line})
	}
	return out, nil
}

// Ports returns a container's published ports.
func (e *Engine) Ports(ref string) ([]PortMapping, error) {
	c, err := e.FindContainer(ref)
	if err != nil {
		return nil, err
	}
	if c.Net == nil {
		return nil, nil
	}
	return c.Net.Ports, nil
}

// ContainerInspect is `nook inspect`'s document of a container, in Docker's field names.
type ContainerInspect struct {
	ID              string                 `json:"Id"`
	Created         time.Time              `json:"Created"`
	Path            string                 `json:"Path"`
	Args            []string               `json:"Args"`
	State           ContainerInspectState  `json:"State"`
	Image           string                 `json:"Image"`
	ImageName       string                 `json:"ImageName"`
	Name            string                 `json:"Name"`
	RestartCount    int                    `json:"RestartCount"`
	LogPath         string                 `json:"LogPath"`
	Config          ContainerInspectConfig `json:"Config"`
	HostConfig      ContainerHostConfig    `json:"HostConfig"`
	NetworkSettings ContainerNetSettings   `json:"NetworkSettings"`
}

// ContainerInspectState is the State of ContainerInspect.
type ContainerInspectState struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

// ContainerInspectConfig is the Config of ContainerInspect.
type ContainerInspectConfig struct {
	Hostname     string              `json:"Hostname"`
	User         string              `json:"User"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Image        string              `json:"Image"`
	WorkingDir   string              `json:"WorkingDir"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	StopTimeout  *int                `json:"StopTimeout,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Entrypoint   []string            `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	AttachStdin  bool                `json:"AttachStdin"`
}

// ContainerHostConfig is the HostConfig of ContainerInspect.
type ContainerHostConfig struct {
	NetworkMode     string                   `json:"NetworkMode"`
	PidMode         string                   `json:"PidMode"` // "", host or container:ID
	IpcMode         string                   `json:"IpcMode"` // private, shareable, host or container:ID
	UTSMode         string                   `json:"UTSMode"` // "" or host
	AutoRemove      bool                     `json:"AutoRemove"`
	RestartPolicy   map[string]any           `json:"RestartPolicy"`
	PortBindings    map[string][]PortBinding `json:"PortBindings"`
	ContainerIDFile string                   `json:"ContainerIDFile"`
	Dns             []string                 `json:"Dns"`
	DnsOptions      []string                 `json:"DnsOptions"`
	DnsSearch       []string                 `json:"DnsSearch"`
	ExtraHosts      []string                 `json:"ExtraHosts"`
	GroupAdd        []string                 `json:"GroupAdd"`
	ShmSize         int64                    `json:"ShmSize"`
	Sysctls         map[string]string        `json:"Sysctls,omitempty"`
	Init            *bool                    `json:"Init"` // --init; null when not given, as Docker's
}

// ContainerNetSettings is the NetworkSettings of ContainerInspect. The top-level address
// fields are those of the default network (slirp4netns or pasta), empty for a member of a
// user network, as Docker's are for its default bridge only; Networks has every network.
type ContainerNetSettings struct {
	Ports       map[string][]PortBinding    `json:"Ports"`
	IPAddress   string                      `json:"IPAddress"`
	IPPrefixLen int                         `json:"IPPrefixLen"`
	Gateway     string                      `json:"Gateway"`
	MacAddress  string                      `json:"MacAddress"`
	Networks    map[string]EndpointSettings `json:"Networks"`
}

// PortBinding is Docker's host side of a published port.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// InspectContainer describes a container.
func (e *Engine) InspectContainer(ref string) (*ContainerInspect, error) {
	c, err := e.FindContainer(ref)
	if err != nil {
		return nil, err
	}
	d := &ContainerInspect{
		ID: c.ID, Created: c.Created, Args: []string{}, Image: "sha256:" + c.ImageID, ImageName: c.Image,
		Name: c.Name, RestartCount: c.Restarts,
		State: ContainerInspectState{Status: c.State, Running: c.State == StateRunning, Pid: c.InitPid, ExitCode: c.ExitCode,
			StartedAt: c.Started, FinishedAt: c.Finished},
		Config: ContainerInspectConfig{Env: c.Env, Cmd: c.Command, Image: c.Image, StopSignal: c.StopSignal, Labels: c.Labels},
	}
	if len(c.Command) > 0 {
		d.Path, d.Args = c.Command[0], c.Command[1:]
	}
	if d.Config.Labels == nil {
		d.Config.Labels = map[string]string{} // Docker's {} rather than null
	}
	if dir, err := e.Store.ContainerDirectory(c.ID); err == nil {
		d.LogPath = filepath.Join(dir, monitor.LogFile)
	}
	restart := "no"
	ports := map[string][]PortBinding{}
	if o := c.Options; o != nil {
		d.Config.Hostname, d.Config.User, d.Config.WorkingDir = o.Hostname, o.User, o.Workdir
		d.Config.Tty, d.Config.OpenStdin, d.Config.AttachStdin = o.TTY, o.Interactive, o.Interactive && !o.Detach
		if d.Config.Hostname == "" {
			d.Config.Hostname = c.ID[:12]
		}
		if o.Restart != "" {
			restart = o.Restart
		}
		d.HostConfig.AutoRemove = o.Remove
		if o.Init {
			d.HostConfig.Init = &o.Init
		}
		d.Config.StopTimeout = o.StopTimeout
		h := &d.HostConfig
		h.ContainerIDFile, h.ExtraHosts, h.GroupAdd = o.CIDFile, o.AddHosts, o.GroupAdd
		h.Dns, h.DnsOptions, h.DnsSearch = nonNil(o.DNS), nonNil(o.DNSOptions), nonNil(o.DNSSearch)
		h.ShmSize, _ = parseShmSize(o.ShmSize)
		h.PidMode, h.IpcMode, h.UTSMode = o.PID, o.IPC, o.UTS
		if len(o.Sysctls) > 0 {
			h.Sysctls = map[string]string{}
			for _, kv := range o.Sysctls {
				k, v, _ := strings.Cut(kv, "=")
				h.Sysctls[strings.ReplaceAll(k, "/", ".")] = v
			}
		}
	}
	if d.HostConfig.IpcMode == "" {
		d.HostConfig.IpcMode = nsPrivate // Docker's default since 20.10
	}
	if d.HostConfig.ShmSize == 0 {
		d.HostConfig.ShmSize = 64 << 20 // Docker's default
	}
	if d.HostConfig.Dns == nil {
		d.HostConfig.Dns, d.HostConfig.DnsOptions, d.HostConfig.DnsSearch = []string{}, []string{}, []string{}
	}
	if len(c.ExposedPorts) > 0 {
		d.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			d.Config.ExposedPorts[p] = struct{}{}
		}
	}
	name, max, _ := ParseRestart(restart)
	d.HostConfig.RestartPolicy = map[string]any{"Name": name, "MaximumRetryCount": max}
	if c.Net != nil {
		d.HostConfig.NetworkMode = c.Net.Mode
		if c.Net.Bridge != "" {
			d.HostConfig.NetworkMode = c.Net.Bridge // Docker names the user network
		}
		if c.Net.Mode == NetContainer {
			d.HostConfig.NetworkMode = NetContainer + ":" + c.Net.Container
		}
		for _, p := range c.Net.Ports {
			k := fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)
			ports[k] = append(ports[k], PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(p.HostPort)})
		}
	}
	d.HostConfig.PortBindings = ports
	d.NetworkSettings.Ports = ports
	e.containerNetworks(c, &d.NetworkSettings)
	return d, nil
}
