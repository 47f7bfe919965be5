//go:build !nook_lean

package engine

import (
	"slices"
	"sort"
	"testing"
)

func TestWalkOrder(t *testing.T) {
	got := []string{"/a-b", "/etc/group", "/a/c", "/a", "/etc", "/a/c/d", "/b"}
	sort.Slice(got, func(i, j int) bool { return walkOrder(got[i], got[j]) })
	want := []string{"/a", "/a/c", "/a/c/d", "/a-b", "/b", "/etc", "/etc/group"}
	if !slices.Equal(got, want) {
		t.Errorf("walk order %q, want %q", got, want)
	}
}
