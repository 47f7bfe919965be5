package idmap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Range is one subordinate range from /etc/subuid or /etc/subgid (host IDs).
type Range struct{ Start, Count uint32 }

// Kind says which database: UID (/etc/subuid, newuidmap) or GID (/etc/subgid, newgidmap).
type Kind int

const (
	UID Kind = iota
	GID
)

// String returns "uid" or "gid".
func (k Kind) String() string {
	if k == GID {
		return "gid"
	}
	return "uid"
}

// file is the shadow database for the kind.
func (k Kind) file() string {
	if k == GID {
		return "/etc/subgid"
	}
	return "/etc/subuid"
}

// helper is the setuid program that writes the kind's map.
func (k Kind) helper() string {
	if k == GID {
		return "newgidmap"
	}
	return "newuidmap"
}

// idSpace is 2^32: a range may end exactly there but not beyond.
const idSpace = uint64(1) << 32

// maxLine bounds the bytes kept of one line; subuid lines are short, so a longer one is
// someone else's garbage and is skipped without holding it in memory.
const maxLine = 4096

// ParseSubIDs parses subuid/subgid file content: lines "name:start:count" or "uid:start:count",
// '#' comments, blank lines; returns every range whose first field is user OR the decimal uid,
// in file order. Malformed lines are skipped (they are not ours), but a range with count 0 or
// overflow past 2^32 is skipped too. Never panics (fuzzed).
func ParseSubIDs(r io.Reader, user string, uid uint32) ([]Range, error) {
	br := bufio.NewReaderSize(r, maxLine)
	var out []Range
	for {
		line, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read subordinate ids: %w", err)
		}
		if !tooLong {
			if rg, ok := parseSubIDLine(line, user, uid); ok {
				out = append(out, rg)
			}
		}
		if err != nil {
			return out, nil
		}
	}
}

// readLine returns the next line without its newline; tooLong reports a line longer than the
// reader's buffer, which has then been consumed and discarded.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			continue
		}
		if tooLong {
			return nil, true, err
		}
		return bytes.TrimSuffix(chunk, []byte("\n")), false, err
	}
}

func parseSubIDLine(line []byte, user string, uid uint32) (Range, bool) {
	s := strings.TrimSpace(string(line))
	if s == "" || s[0] == '#' {
		return Range{}, false
	}
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return Range{}, false
	}
	owner := strings.TrimSpace(f[0])
	if owner == "" || !(owner == user || isUID(owner, uid)) {
		return Range{}, false
	}
	return makeRange(strings.TrimSpace(f[1]), strings.TrimSpace(f[2]))
}

// isUID reports whether owner is the decimal uid; shadow parses the field as a number, so
// leading zeros still name the same user.
func isUID(owner string, uid uint32) bool {
	for _, c := range owner {
		if c < '0' || c > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(owner, 10, 32)
	return err == nil && uint32(n) == uid
}

// makeRange parses start and count, refusing empty ranges and ranges that run past 2^32,
// which the kernel could never map.
func makeRange(start, count string) (Range, bool) {
	st, err := strconv.ParseUint(start, 10, 32)
	if err != nil {
		return Range{}, false
	}
	n, err := strconv.ParseUint(count, 10, 32)
	if err != nil || n == 0 || st+n > idSpace {
		return Range{}, false
	}
	return Range{Start: uint32(st), Count: uint32(n)}, true
}

// ParseGetsubids parses the output of `getsubids USER` / `getsubids -g USER`, lines like
// "0: alice 100000 65536". Never panics (fuzzed).
//
// Unlike a subuid file, the whole output is about the one user, so a line that is not in this
// format means the tool speaks a format nook does not know: that is an error, and the caller
// falls back to the file rather than trust half of it. Empty or overflowing ranges are skipped
// as in ParseSubIDs.
func ParseGetsubids(out []byte) ([]Range, error) {
	var rs []Range
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 || !isIndex(f[0]) {
			return nil, fmt.Errorf("parse getsubids output: unexpected line %q", truncate(line, 80))
		}
		if _, err := strconv.ParseUint(f[2], 10, 32); err != nil {
			return nil, fmt.Errorf("parse getsubids output: bad start in %q", truncate(line, 80))
		}
		if _, err := strconv.ParseUint(f[3], 10, 32); err != nil {
			return nil, fmt.Errorf("parse getsubids output: bad count in %q", truncate(line, 80))
		}
		if rg, ok := makeRange(f[2], f[3]); ok {
			rs = append(rs, rg)
		}
	}
	return rs, nil
}

// isIndex matches getsubids' "N:" line prefix.
func isIndex(s string) bool {
	d, ok := strings.CutSuffix(s, ":")
	if !ok || d == "" {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
