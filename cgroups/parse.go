package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCPUPeriod is the CFS period nook uses for --cpus, as Docker.
const DefaultCPUPeriod = 100000

// ParseBytes reads a size the way Docker does for --memory: a number with
// an optional unit b, k, m, g, t or p (powers of 1024, any case, an
// optional trailing "b": "512m", "1GB", "1048576").
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "ib")
	mult := int64(1)
	if n := len(t); n > 1 && t[n-1] == 'b' && strings.ContainsRune("kmgtp", rune(t[n-2])) {
		t = t[:n-1]
	}
	if n := len(t); n > 0 {
		if i := strings.IndexByte("bkmgtp", t[n-1]); i >= 0 {
			mult = 1 << (10 * i)
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("invalid size %q: use a number with an optional unit b, k, m, g (e.g. 256m)", s)
	}
	b := v * float64(mult)
	if b > math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(b), nil
}

// ParseCPUs turns --cpus (a decimal number of CPUs, "0.5") into a CFS
// quota for DefaultCPUPeriod.
func ParseCPUs(s string) (quota int64, period uint64, err error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, 0, fmt.Errorf("invalid --cpus %q: use a positive number of CPUs (e.g. 0.5)", s)
	}
	quota = int64(math.Round(v * DefaultCPUPeriod))
	if quota < 1000 {
		return 0, 0, fmt.Errorf("invalid --cpus %q: the minimum is 0.01", s)
	}
	return quota, DefaultCPUPeriod, nil
}

// CPUMax is the text of cpu.max: "QUOTA PERIOD", "max PERIOD" without a quota.
func CPUMax(quota int64, period uint64) string {
	if period == 0 {
		period = DefaultCPUPeriod
	}
	if quota <= 0 {
		return fmt.Sprintf("max %d", period)
	}
	return fmt.Sprintf("%d %d", quota, period)
}

// File is one cgroup interface file to write and its content.
type File struct{ Name, Value string }

// Files maps OCI resources to the cgroup v2 files that enforce them, in
// the order to write them, and names the controllers they need. Memory
// swap follows Docker: memory.swap.max is the swap limit minus the memory
// limit (-1 unlimited).
func Files(r *specs.LinuxResources) (files []File, controllers []string, err error) {
	if r == nil {
		return nil, nil, nil
	}
	need := func(c string) {
		for _, x := range controllers {
			if x == c {
				return
			}
		}
		controllers = append(controllers, c)
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			need("memory")
			files = append(files, File{"memory.max", limitText(*m.Limit)})
		}
		if m.Swap != nil {
			need("memory")
			swap := *m.Swap
			if swap > 0 {
				if m.Limit == nil || *m.Limit <= 0 {
					return nil, nil, fmt.Errorf("--memory-swap needs --memory")
				}
				if swap < *m.Limit {
					return nil, nil, fmt.Errorf("--memory-swap (%d) must be at least --memory (%d): it is memory plus swap", swap, *m.Limit)
				}
				swap -= *m.Limit
			}
			files = append(files, File{"memory.swap.max", limitText(swap)})
		}
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil || c.Period != nil {
			need("cpu")
			var q int64
			var p uint64
			if c.Quota != nil {
				q = *c.Quota
			}
			if c.Period != nil {
				p = *c.Period
			}
			files = append(files, File{"cpu.max", CPUMax(q, p)})
		}
		if c.Cpus != "" {
			need("cpuset")
			files = append(files, File{"cpuset.cpus", c.Cpus})
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		need("pids")
		files = append(files, File{"pids.max", limitText(*p.Limit)})
	}
	if b := r.BlockIO; b != nil {
		lines := map[string][]string{}
		var order []string
		add := func(devs []specs.LinuxThrottleDevice, key string) {
			for _, d := range devs {
				dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
				if _, ok := lines[dev]; !ok {
					order = append(order, dev)
				}
				lines[dev] = append(lines[dev], fmt.Sprintf("%s=%d", key, d.Rate))
			}
		}
		add(b.ThrottleReadBpsDevice, "rbps")
		add(b.ThrottleWriteBpsDevice, "wbps")
		add(b.ThrottleReadIOPSDevice, "riops")
		add(b.ThrottleWriteIOPSDevice, "wiops")
		for _, dev := range order {
			need("io")
			files = append(files, File{"io.max", dev + " " + strings.Join(lines[dev], " ")})
		}
		if b.Weight != nil {
			need("io")
			files = append(files, File{"io.weight", fmt.Sprintf("default %d", *b.Weight)})
		}
	}
	return files, controllers, nil
}

// limitText is a cgroup v2 limit: "max" for none (-1 or 0 as Docker's
// "unlimited" for pids), the number otherwise.
func limitText(v int64) string {
	if v <= 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
