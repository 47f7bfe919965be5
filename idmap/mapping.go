package idmap

import (
	"slices"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/PID/uid_map: ContainerID HostID Size.
type Mapping struct{ ContainerID, HostID, Size uint32 }

// idLimit is the exclusive end of mappable IDs on both sides: the kernel rejects an extent whose
// first+count wraps a u32 (kernel/user_namespace.c, map_write), so ID 2^32-1 ((uid_t)-1, the
// "no ID" value) is never mapped.
const idLimit = idSpace - 1

// maxExtents is the most lines a uid_map/gid_map may have (UID_GID_MAP_MAX_EXTENTS, Linux 4.15+);
// a longer map fails to write as a whole, so Build stops there instead.
const maxExtents = 340

// span is a half-open interval of host IDs, wide enough to hold the end 2^32.
type span struct{ lo, hi uint64 }

// Build returns the mapping: container 0 -> hostID (size 1), then container 1.. contiguous over
// the ranges in order (ranges that overlap each other or contain hostID are trimmed so no host ID
// is mapped twice; the total stays < 2^32-1). No ranges -> just the single line.
//
// The hostID line stays on its own even when a range starts at hostID+1: newuidmap allows the
// caller's own ID only as a line of size 1, and everything else must lie in the ranges.
func Build(hostID uint32, ranges []Range) []Mapping {
	out := []Mapping{{ContainerID: 0, HostID: hostID, Size: 1}}
	used := []span{{uint64(hostID), uint64(hostID) + 1}}
	next := uint64(1)
	for _, r := range ranges {
		lo := uint64(r.Start)
		hi := min(lo+uint64(r.Count), idLimit)
		for _, p := range freeSpans(span{lo, hi}, used) {
			if len(out) >= maxExtents || next >= idLimit {
				return out
			}
			size := min(p.hi-p.lo, idLimit-next)
			out = append(out, Mapping{ContainerID: uint32(next), HostID: uint32(p.lo), Size: uint32(size)})
			next += size
			used = addSpan(used, span{p.lo, p.lo + size})
		}
	}
	return out
}

// freeSpans returns the parts of s not covered by used (sorted, disjoint), in ascending order.
func freeSpans(s span, used []span) []span {
	var out []span
	cur := s.lo
	for _, u := range used {
		if cur >= s.hi || u.lo >= s.hi {
			break
		}
		if u.hi <= cur {
			continue
		}
		if u.lo > cur {
			out = append(out, span{cur, u.lo})
		}
		cur = u.hi
	}
	if cur < s.hi {
		out = append(out, span{cur, s.hi})
	}
	return out
}

// addSpan inserts s into the sorted, disjoint list used, merging neighbours.
func addSpan(used []span, s span) []span {
	used = append(used, s)
	slices.SortFunc(used, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	merged := used[:1]
	for _, u := range used[1:] {
		last := &merged[len(merged)-1]
		if u.lo <= last.hi {
			last.hi = max(last.hi, u.hi)
			continue
		}
		merged = append(merged, u)
	}
	return merged
}

// Format formats as "0:1001:1,1:200000:65536" (used by `nook info`).
func Format(m []Mapping) string {
	parts := make([]string, len(m))
	for i, x := range m {
		parts[i] = strconv.FormatUint(uint64(x.ContainerID), 10) + ":" +
			strconv.FormatUint(uint64(x.HostID), 10) + ":" +
			strconv.FormatUint(uint64(x.Size), 10)
	}
	return strings.Join(parts, ",")
}

// HelperArgs returns newuidmap/newgidmap arguments: pid then triples.
func HelperArgs(pid int, m []Mapping) []string {
	args := make([]string, 0, 1+3*len(m))
	args = append(args, strconv.Itoa(pid))
	for _, x := range m {
		args = append(args,
			strconv.FormatUint(uint64(x.ContainerID), 10),
			strconv.FormatUint(uint64(x.HostID), 10),
			strconv.FormatUint(uint64(x.Size), 10))
	}
	return args
}

// procMap renders m in the /proc/PID/uid_map write format: one "container host size" per line.
func procMap(m []Mapping) string {
	var b strings.Builder
	for _, x := range m {
		b.WriteString(strconv.FormatUint(uint64(x.ContainerID), 10))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(uint64(x.HostID), 10))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(uint64(x.Size), 10))
		b.WriteByte('\n')
	}
	return b.String()
}
