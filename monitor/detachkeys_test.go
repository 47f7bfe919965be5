package monitor

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []byte
	}{
		{"ctrl-p,ctrl-q", []byte{0x10, 0x11}},
		{"ctrl-a,x", []byte{0x01, 'x'}},
		{"ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", []byte{0x00, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}},
		{"ctrl-z", []byte{0x1a}},
		{"a,b,c", []byte("abc")},
		{"DEL,q", []byte{0x7f, 'q'}},
		{"", nil},
	} {
		got, err := ParseDetachKeys(tc.spec)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("ParseDetachKeys(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-P", "ctrl-1", "ctrl-pp", "ctrl-p,,ctrl-q", "ctrl-p,", ",", "foo", "é", "alt-x", "ctrl-{"} {
		_, err := ParseDetachKeys(bad)
		if err == nil {
			t.Errorf("ParseDetachKeys(%q): no error", bad)
			continue
		}
		if !strings.Contains(err.Error(), "invalid detach keys") {
			t.Errorf("ParseDetachKeys(%q): %v", bad, err)
		}
	}
}

func TestDetachMatcher(t *testing.T) {
	keys := []byte{0x10, 0x11}
	for _, tc := range []struct {
		name   string
		chunks []string
		out    string
		detach bool
	}{
		{"plain", []string{"ls\r"}, "ls\r", false},
		{"one read", []string{"ab\x10\x11cd"}, "ab", true},
		{"split", []string{"ab\x10", "\x11"}, "ab", true},
		{"broken", []string{"a\x10", "b"}, "a\x10b", false},
		{"held then detach", []string{"\x10", "\x10", "\x11"}, "\x10", true},
		{"ctrl-q alone", []string{"\x11x"}, "\x11x", false},
	} {
		m := NewDetachMatcher(keys)
		var out []byte
		detach := false
		for _, c := range tc.chunks {
			o, d := m.Feed([]byte(c))
			out = append(out, o...)
			if d {
				detach = true
				break
			}
		}
		if !detach {
			out = append(out, m.Flush()...)
		}
		if string(out) != tc.out || detach != tc.detach {
			t.Errorf("%s: out %q detach %v; want %q %v", tc.name, out, detach, tc.out, tc.detach)
		}
	}
	// A sequence whose start repeats: the matcher does not lose a detach that overlaps a
	// false start.
	m := NewDetachMatcher([]byte("aab"))
	out, d := m.Feed([]byte("xaaab"))
	if !d || string(out) != "xa" {
		t.Errorf("aab in xaaab: out %q detach %v", out, d)
	}
	// No keys: everything passes.
	m = NewDetachMatcher(nil)
	if out, d := m.Feed([]byte{0x10, 0x11}); d || !bytes.Equal(out, []byte{0x10, 0x11}) {
		t.Errorf("no keys: out %q detach %v", out, d)
	}
}

// FuzzDetachKeys parses arbitrary specs, and feeds arbitrary input in two chunks to the
// matcher of a valid one: whatever the split, the output is the same, and it is the input
// without the sequence and what follows it.
func FuzzDetachKeys(f *testing.F) {
	f.Add("ctrl-p,ctrl-q", []byte("ab\x10\x11cd"), 3)
	f.Add("ctrl-a,x", []byte("\x01\x01x"), 1)
	f.Add("a,a,b", []byte("aaab"), 2)
	f.Add("DEL", []byte{0x7f}, 0)
	f.Add("ctrl-", []byte{}, 0)
	f.Fuzz(func(t *testing.T, spec string, input []byte, split int) {
		keys, err := ParseDetachKeys(spec)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid detach keys") {
				t.Fatalf("error without the usual words: %v", err)
			}
			return
		}
		if spec != "" && len(keys) != strings.Count(spec, ",")+1 {
			t.Fatalf("%q parsed to %d keys", spec, len(keys))
		}
		run := func(chunks ...[]byte) ([]byte, bool) {
			m := NewDetachMatcher(keys)
			var out []byte
			for _, c := range chunks {
				o, d := m.Feed(c)
				out = append(out, o...)
				if d {
					return out, true
				}
			}
			return append(out, m.Flush()...), false
		}
		whole, d1 := run(input)
		if split < 0 {
			split = -split
		}
		if len(input) > 0 {
			split %= len(input) + 1
		} else {
			split = 0
		}
		parts, d2 := run(input[:split], input[split:])
		if d1 != d2 || !bytes.Equal(whole, parts) {
			t.Fatalf("keys %q input %q: whole %q %v, split at %d %q %v", keys, input, whole, d1, split, parts, d2)
		}
		i := bytes.Index(input, keys)
		switch {
		case len(keys) == 0 || i < 0:
			if d1 || !bytes.Equal(whole, input) {
				t.Fatalf("keys %q input %q: out %q detach %v, want the input unchanged", keys, input, whole, d1)
			}
		default:
			if !d1 || !bytes.Equal(whole, input[:i]) {
				t.Fatalf("keys %q input %q: out %q detach %v, want %q and a detach", keys, input, whole, d1, input[:i])
			}
		}
	})
}
