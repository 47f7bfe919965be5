package idmap

import (
	"reflect"
	"testing"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name   string
		hostID uint32
		ranges []Range
		want   []Mapping
	}{
		{name: "no ranges", hostID: 1001, ranges: nil,
			want: []Mapping{{0, 1001, 1}}},
		{name: "one range", hostID: 1001, ranges: []Range{{100000, 65536}},
			want: []Mapping{{0, 1001, 1}, {1, 100000, 65536}}},
		{name: "several ranges contiguous in container", hostID: 1001,
			ranges: []Range{{300000, 1000}, {100000, 65536}, {500000, 10}},
			want:   []Mapping{{0, 1001, 1}, {1, 300000, 1000}, {1001, 100000, 65536}, {66537, 500000, 10}}},
		{name: "range starting right after host id stays separate", hostID: 1001,
			ranges: []Range{{1002, 10}},
			want:   []Mapping{{0, 1001, 1}, {1, 1002, 10}}},
		{name: "overlapping ranges trimmed", hostID: 1001,
			ranges: []Range{{100000, 65536}, {150000, 65536}},
			want:   []Mapping{{0, 1001, 1}, {1, 100000, 65536}, {65537, 165536, 50000}}},
		{name: "duplicate and contained ranges dropped", hostID: 1001,
			ranges: []Range{{100000, 65536}, {100000, 65536}, {110000, 5}, {200000, 1}},
			want:   []Mapping{{0, 1001, 1}, {1, 100000, 65536}, {65537, 200000, 1}}},
		{name: "later range covering an earlier one is split", hostID: 1001,
			ranges: []Range{{100010, 10}, {100000, 100}},
			want: []Mapping{{0, 1001, 1}, {1, 100010, 10}, {11, 100000, 10},
				{21, 100020, 80}}},
		{name: "host id inside a range", hostID: 100010,
			ranges: []Range{{100000, 100}},
			want:   []Mapping{{0, 100010, 1}, {1, 100000, 10}, {11, 100011, 89}}},
		{name: "host id at range start", hostID: 100000,
			ranges: []Range{{100000, 100}},
			want:   []Mapping{{0, 100000, 1}, {1, 100001, 99}}},
		{name: "range is only the host id", hostID: 100000,
			ranges: []Range{{100000, 1}},
			want:   []Mapping{{0, 100000, 1}}},
		{name: "zero count ignored", hostID: 1001,
			ranges: []Range{{100000, 0}, {5, 1}},
			want:   []Mapping{{0, 1001, 1}, {1, 5, 1}}},
		{name: "host id 2^32-1 never mapped from a range", hostID: 1001,
			ranges: []Range{{4294967290, 6}},
			want:   []Mapping{{0, 1001, 1}, {1, 4294967290, 5}}},
		{name: "start at 2^32-1 dropped", hostID: 1001,
			ranges: []Range{{4294967295, 1}},
			want:   []Mapping{{0, 1001, 1}}},
		{name: "whole ID space: total stays below 2^32-1", hostID: 1001,
			ranges: []Range{{0, 4294967295}, {5000, 10}},
			want:   []Mapping{{0, 1001, 1}, {1, 0, 1001}, {1002, 1002, 4294966293}}},
		{name: "container IDs run out", hostID: 0,
			ranges: []Range{{1, 4294967000}, {4294967001, 100}, {100, 5}},
			want:   []Mapping{{0, 0, 1}, {1, 1, 4294967000}, {4294967001, 4294967001, 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Build(tt.hostID, tt.ranges)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Build(%d, %v) =\n  %v\nwant\n  %v", tt.hostID, tt.ranges, got, tt.want)
			}
			checkMapping(t, tt.hostID, tt.ranges, got)
		})
	}
}

func TestBuildExtentLimit(t *testing.T) {
	var ranges []Range
	for i := range uint32(500) {
		ranges = append(ranges, Range{Start: 100000 + i*10, Count: 5})
	}
	got := Build(1001, ranges)
	if len(got) != maxExtents {
		t.Fatalf("Build with 500 ranges gave %d lines, want the kernel's limit %d", len(got), maxExtents)
	}
	checkMapping(t, 1001, ranges, got)
}

// checkMapping asserts what the kernel and newuidmap need of any Build result: line 0 maps the
// host ID alone, container IDs are contiguous from 1, no host ID is mapped twice, every
// subordinate host ID lies in a given range, and nothing reaches ID 2^32-1.
func checkMapping(t *testing.T, hostID uint32, ranges []Range, m []Mapping) {
	t.Helper()
	if len(m) == 0 || m[0] != (Mapping{0, hostID, 1}) {
		t.Fatalf("first line = %v, want {0 %d 1}", m, hostID)
	}
	if len(m) > maxExtents {
		t.Fatalf("%d lines, more than the kernel's %d", len(m), maxExtents)
	}
	next := uint64(1)
	var used []span
	for i, x := range m {
		lo, hi := uint64(x.HostID), uint64(x.HostID)+uint64(x.Size)
		if x.Size == 0 {
			t.Fatalf("line %d has size 0: %v", i, m)
		}
		// Line 0 is the caller's own ID, whatever it is; the rest must avoid 2^32-1.
		if i > 0 && (hi > idLimit || uint64(x.ContainerID)+uint64(x.Size) > idLimit) {
			t.Fatalf("line %d reaches ID 2^32-1: %v", i, x)
		}
		for _, u := range used {
			if lo < u.hi && u.lo < hi {
				t.Fatalf("line %d maps host IDs [%d,%d) twice", i, lo, hi)
			}
		}
		used = append(used, span{lo, hi})
		if i == 0 {
			continue
		}
		if uint64(x.ContainerID) != next {
			t.Fatalf("line %d starts at container ID %d, want %d", i, x.ContainerID, next)
		}
		next += uint64(x.Size)
		inside := false
		for _, r := range ranges {
			if lo >= uint64(r.Start) && hi <= uint64(r.Start)+uint64(r.Count) {
				inside = true
				break
			}
		}
		if !inside {
			t.Fatalf("line %d %v is not inside one of the ranges %v", i, x, ranges)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		m    []Mapping
		want string
	}{
		{nil, ""},
		{[]Mapping{{0, 1001, 1}}, "0:1001:1"},
		{[]Mapping{{0, 1001, 1}, {1, 200000, 65536}}, "0:1001:1,1:200000:65536"},
		{[]Mapping{{0, 4294967294, 1}, {1, 0, 4294967293}}, "0:4294967294:1,1:0:4294967293"},
	}
	for _, tt := range tests {
		if got := Format(tt.m); got != tt.want {
			t.Errorf("Format(%v) = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestHelperArgs(t *testing.T) {
	tests := []struct {
		pid  int
		m    []Mapping
		want []string
	}{
		{42, []Mapping{{0, 1001, 1}}, []string{"42", "0", "1001", "1"}},
		{4194304, []Mapping{{0, 1001, 1}, {1, 200000, 65536}, {65537, 300000, 10}},
			[]string{"4194304", "0", "1001", "1", "1", "200000", "65536", "65537", "300000", "10"}},
	}
	for _, tt := range tests {
		if got := HelperArgs(tt.pid, tt.m); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("HelperArgs(%d, %v) = %q, want %q", tt.pid, tt.m, got, tt.want)
		}
	}
}

func TestProcMap(t *testing.T) {
	got := procMap([]Mapping{{0, 1001, 1}, {1, 200000, 65536}})
	if want := "0 1001 1\n1 200000 65536\n"; got != want {
		t.Errorf("procMap = %q, want %q", got, want)
	}
}
