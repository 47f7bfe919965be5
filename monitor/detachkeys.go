package monitor

import (
	"fmt"
	"strings"
)

// DefaultDetachKeys is Docker's detach sequence: Ctrl-P, then Ctrl-Q.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ParseDetachKeys reads a detach sequence in Docker's format (--detach-keys): comma-separated
// keys, each a single character or ctrl-<value> with <value> one of a-z, @, [, \, ], ^ and _
// (ctrl-a is 0x01 … ctrl-_ is 0x1f), or DEL. The empty string is no sequence at all: the
// client cannot detach (Podman's meaning).
func ParseDetachKeys(spec string) ([]byte, error) {
	if spec == "" {
		return nil, nil
	}
	var keys []byte
	for _, k := range strings.Split(spec, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case k == "DEL":
			keys = append(keys, 0x7f)
		case len(k) == len("ctrl-x") && strings.HasPrefix(k, "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				keys = append(keys, c-'a'+1)
			case c == '@' || (c >= '[' && c <= '_'):
				keys = append(keys, c-'@') // @ [ \ ] ^ _ are 0x40, 0x5b…0x5f: 0x00, 0x1b…0x1f
			default:
				return nil, detachKeysError(spec, k)
			}
		default:
			return nil, detachKeysError(spec, k)
		}
	}
	return keys, nil
}

func detachKeysError(spec, key string) error {
	return fmt.Errorf("invalid detach keys %q: unknown key %q; give comma-separated keys, each a single character or ctrl-<a-z, @, [, \\, ], ^ or _>, such as %s", spec, key, DefaultDetachKeys)
}

// DetachMatcher finds a detach sequence in a stream of input. Bytes that may begin the
// sequence are held back until the sequence is complete (then the client detaches and none of
// them reaches the container) or broken (then they are passed on, as typed).
type DetachMatcher struct {
	keys []byte
	held []byte
}

// NewDetachMatcher matches keys; with none, Feed passes everything on.
func NewDetachMatcher(keys []byte) *DetachMatcher { return &DetachMatcher{keys: keys} }

// Feed takes the next input and returns what to send to the container; detach is true when
// the sequence is complete (input after it is dropped).
func (m *DetachMatcher) Feed(p []byte) (out []byte, detach bool) {
	if len(m.keys) == 0 {
		return p, false
	}
	out = make([]byte, 0, len(p)+len(m.held))
	for _, b := range p {
		m.held = append(m.held, b)
		// Keep the longest tail of the held bytes that still begins the sequence.
		for len(m.held) > 0 && !hasPrefix(m.keys, m.held) {
			out = append(out, m.held[0])
			m.held = m.held[1:]
		}
		if len(m.held) == len(m.keys) {
			m.held = nil
			return out, true
		}
	}
	return out, false
}

// Flush returns the bytes held back, at the end of the input.
func (m *DetachMatcher) Flush() []byte {
	p := m.held
	m.held = nil
	return p
}

func hasPrefix(s, prefix []byte) bool {
	return len(prefix) <= len(s) && string(s[:len(prefix)]) == string(prefix)
}
