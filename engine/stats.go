package engine

import (
	"time"

	"github.com/nook-containers/nook/cgroups"
	"github.com/nook-containers/nook/internal/proc"
)

// ContainerStats is one row of `nook stats`: Docker's columns.
type ContainerStats struct {
	ID, Name   string
	Ref        string // how the user named it, "" when listed without names
	Running    bool
	CPUPercent float64 // since the sampler's previous sample: 100 is one CPU's time
	MemUsage   uint64
	MemLimit   uint64 // the cgroup's memory.max, else the machine's memory (as Docker shows it)
	NetRx      uint64 // the container's network namespace, loopback left out (0 with --network host)
	NetTx      uint64
	BlockRead  uint64
	BlockWrite uint64
	Pids       uint64 // tasks (threads), as pids.current counts them
	Source     string // "cgroup" or "proc": where the figures come from
}

// StatsSampler samples containers' usage again and again: CPU % is the CPU time used between
// two samples over the time between them.
//
// A container with a cgroup of its own (a host that delegates cgroup v2 to the user) is read
// from it, as Docker and Podman do. Any other is read from /proc: the processes in its PID
// namespace (utime and stime, and the times of the children each has reaped, so that what
// ended in between still counts; proportional set size; read_bytes and write_bytes of
// /proc/PID/io; threads) and its network namespace's /proc/net/dev. So `nook stats` works on
// hosts without delegation (cgroup v1, hybrid, no systemd), where rootless Podman refuses.
// The /proc figures miss what a `nook exec` process's children used after they ended (their
// reaper is outside), and PSS is not the cgroup's charge (no page cache).
type StatsSampler struct {
	e    *Engine
	refs []string
	all  bool
	prev map[string]cpuMark
}

type cpuMark struct {
	usec uint64
	at   time.Time
}

// NewStatsSampler samples the containers refs names (each must exist), or, with none, the
// running ones (all of them with all), as they come and go.
func (e *Engine) NewStatsSampler(refs []string, all bool) (*StatsSampler, error) {
	for _, r := range refs {
		if _, err := e.FindContainer(r); err != nil {
			return nil, err
		}
	}
	return &StatsSampler{e: e, refs: refs, all: all, prev: map[string]cpuMark{}}, nil
}

// Sample reads every container once. A container named that has ended shows zeros, as in
// Docker; one removed meanwhile is left out.
func (s *StatsSampler) Sample() ([]ContainerStats, error) {
	var cs []Container
	var refs []string
	if len(s.refs) == 0 {
		all, err := s.e.Containers()
		if err != nil {
			return nil, err
		}
		for _, c := range all {
			if s.all || c.State == StateRunning {
				cs = append(cs, c)
			}
		}
	} else {
		for _, r := range s.refs {
			if c, err := s.e.FindContainer(r); err == nil {
				cs = append(cs, *c)
				refs = append(refs, r)
			}
		}
	}
	now := time.Now()
	out := make([]ContainerStats, 0, len(cs))
	seen := map[string]bool{}
	for i, c := range cs {
		seen[c.ID] = true
		st := ContainerStats{ID: c.ID, Name: c.Name}
		if i < len(refs) {
			st.Ref = refs[i]
		}
		var cpu uint64
		if c.State == StateRunning && c.InitPid > 0 {
			cpu = s.e.readUsage(&c, &st)
		}
		if st.Running {
			if p, ok := s.prev[c.ID]; ok && now.After(p.at) {
				st.CPUPercent = float64(cpu-min(cpu, p.usec)) / float64(now.Sub(p.at).Microseconds()) * 100
			}
			s.prev[c.ID] = cpuMark{cpu, now}
		} else {
			delete(s.prev, c.ID)
		}
		out = append(out, st)
	}
	for id := range s.prev {
		if !seen[id] {
			delete(s.prev, id)
		}
	}
	return out, nil
}

// readUsage fills st for a running container and returns its CPU time in microseconds.
func (e *Engine) readUsage(c *Container, st *ContainerStats) uint64 {
	var cpu uint64
	if d := e.cgroups(); d.Usable() {
		if cg, err := cgroups.ReadStats(cgroups.PathFor(d, c.ID)); err == nil {
			st.Running, st.Source = true, "cgroup"
			cpu, st.MemUsage, st.MemLimit, st.Pids = cg.CPUUsec, cg.MemoryUsage, cg.MemoryLimit, cg.Pids
			st.BlockRead, st.BlockWrite = cg.IORead, cg.IOWrite
		}
	}
	if !st.Running {
		// Its PID namespace, or, when it shares the host's or another container's (--pid),
		// the processes descended from its first one.
		in := proc.InPidNamespace
		if c.Options != nil && c.Options.PID != "" {
			in = proc.Tree
		}
		pids, err := in(c.InitPid)
		if err != nil {
			return 0 // ended meanwhile
		}
		st.Running, st.Source = true, "proc"
		var ticks uint64
		for _, p := range pids {
			u, err := proc.ReadUsage(p)
			if err != nil {
				continue // ended meanwhile
			}
			ticks += u.CPUTicks
			st.MemUsage += u.Memory
			st.Pids += u.Threads
			st.BlockRead += u.ReadBytes
			st.BlockWrite += u.WriteBytes
		}
		cpu = ticks * (1_000_000 / proc.ClockTicks)
	}
	if st.MemLimit == 0 {
		st.MemLimit = proc.MemTotal()
	}
	if c.Net == nil || c.Net.Mode != NetHost {
		st.NetRx, st.NetTx, _ = proc.NetDev(c.InitPid)
	}
	return cpu
}
