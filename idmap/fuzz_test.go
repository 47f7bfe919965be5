package idmap

import (
	"bytes"
	"testing"
)

// checkRanges asserts what both parsers promise: no empty range, none past 2^32.
func checkRanges(t *testing.T, rs []Range) {
	t.Helper()
	for _, r := range rs {
		if r.Count == 0 || uint64(r.Start)+uint64(r.Count) > idSpace {
			t.Fatalf("parser returned invalid range %v", r)
		}
	}
}

func FuzzParseSubIDs(f *testing.F) {
	seeds := []struct {
		data string
		user string
		uid  uint32
	}{
		{"alice:100000:65536\n", "alice", 1001},
		{"# comment\n\nalice:100000:65536\r\n1001:200000:10\nbob:1:1\n", "alice", 1001},
		{"1001:100000:65536", "", 1001},
		{"alice:4294967295:1\nalice:4294967295:2\nalice:0:4294967295\n", "alice", 0},
		{"alice:1\nalice::\n:::\nalice:1:2:3\nalice:-1:1\n", "alice", 1},
		{"01001:5:5\n", "x", 1001},
		{"\x00:\xff:\n", "\x00", 4294967295},
	}
	for _, s := range seeds {
		f.Add([]byte(s.data), s.user, s.uid)
	}
	f.Fuzz(func(t *testing.T, data []byte, user string, uid uint32) {
		rs, err := ParseSubIDs(bytes.NewReader(data), user, uid)
		if err != nil {
			t.Fatalf("ParseSubIDs on an in-memory reader: %v", err)
		}
		checkRanges(t, rs)
		checkMapping(t, uid, rs, Build(uid, rs))
	})
}

func FuzzParseGetsubids(f *testing.F) {
	seeds := []string{
		"0: alice 100000 65536\n",
		"0: nookidmaptest 100000 65536\n1: nookidmaptest 300000 1000\n2: nookidmaptest 500000 10\n",
		"0: 1001 300000 1000",
		"Error fetching ranges\n",
		"0: alice 4294967295 1\n1: alice 4294967295 2\n2: alice 1 0\n",
		"0: alice -1 2\n",
		"",
		"\n\n0:  a\t1  2 \n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		rs, err := ParseGetsubids(out)
		if err != nil {
			if rs != nil {
				t.Fatalf("ParseGetsubids returned ranges %v with error %v", rs, err)
			}
			return
		}
		checkRanges(t, rs)
		checkMapping(t, 1001, rs, Build(1001, rs))
	})
}
