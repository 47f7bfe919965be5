package main

import (
	"github.com/spf13/pflag"

	"github.com/nook-containers/nook/engine"
)

// addLimitFlags are `nook run`'s limits and hardening flags, Docker's names.
func addLimitFlags(f *pflag.FlagSet, l *engine.LimitOptions) {
	f.StringArrayVar(&l.CapAdd, "cap-add", nil, "add a capability (NET_ADMIN, CAP_NET_ADMIN or ALL)")
	f.StringArrayVar(&l.CapDrop, "cap-drop", nil, "drop a capability (NET_RAW, CAP_NET_RAW or ALL)")
	f.BoolVar(&l.Privileged, "privileged", false, "every capability of the user namespace, no seccomp, nothing masked (still rootless)")
	f.BoolVar(&l.ReadOnly, "read-only", false, "mount the container's root filesystem read-only")
	f.StringArrayVar(&l.Tmpfs, "tmpfs", nil, "mount a tmpfs: PATH[:OPTIONS]")
	f.StringArrayVarP(&l.Volumes, "volume", "v", nil, "bind mount a host path or a named volume: SOURCE:DESTINATION[:ro|rw|z|Z]")
	f.StringArrayVar(&l.Mounts, "mount", nil, "mount: type=bind|volume|tmpfs,source=...,target=...[,readonly]")
	f.StringArrayVar(&l.Ulimits, "ulimit", nil, "set a resource limit: NAME=SOFT[:HARD] (nofile, nproc, core, ...)")
	f.StringArrayVar(&l.SecurityOpts, "security-opt", nil, "seccomp=PROFILE.json|unconfined, no-new-privileges[=true|false]")
	f.StringVarP(&l.Memory, "memory", "m", "", "memory limit (e.g. 256m; needs cgroup v2 delegation)")
	f.StringVar(&l.MemorySwap, "memory-swap", "", "memory plus swap limit, -1 for unlimited swap (needs cgroup v2 delegation)")
	f.StringVar(&l.CPUs, "cpus", "", "number of CPUs (e.g. 0.5; needs cgroup v2 delegation)")
	f.Int64Var(&l.PidsLimit, "pids-limit", 0, "maximum number of processes, -1 unlimited (needs cgroup v2 delegation)")
	f.StringArrayVar(&l.DeviceReadBps, "device-read-bps", nil, "limit reads from a device: PATH:RATE (needs cgroup v2 delegation)")
	f.StringArrayVar(&l.DeviceWriteBps, "device-write-bps", nil, "limit writes to a device: PATH:RATE (needs cgroup v2 delegation)")
}
