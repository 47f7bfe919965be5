package idmap

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	tests := []struct {
		name    string
		content string
		user    string
		uid     uint32
		want    []Range
	}{
		{name: "empty", content: "", user: "alice", uid: 1001, want: nil},
		{name: "one range", content: "alice:100000:65536\n", user: "alice", uid: 1001,
			want: []Range{{100000, 65536}}},
		{name: "no trailing newline", content: "alice:100000:65536", user: "alice", uid: 1001,
			want: []Range{{100000, 65536}}},
		{name: "several ranges in file order, others skipped",
			content: "bob:100000:65536\nalice:300000:1000\ncarol:165536:65536\nalice:200000:65536\n",
			user:    "alice", uid: 1001,
			want: []Range{{300000, 1000}, {200000, 65536}}},
		{name: "comments, blank lines, CRLF and spaces",
			content: "# subordinate ids\n\n   \n\t# indented comment\nalice:100000:65536\r\n  alice:200000:10  \n",
			user:    "alice", uid: 1001,
			want: []Range{{100000, 65536}, {200000, 10}}},
		{name: "numeric uid line", content: "1001:100000:65536\n", user: "alice", uid: 1001,
			want: []Range{{100000, 65536}}},
		{name: "numeric uid with leading zeros", content: "01001:100000:5\n", user: "alice", uid: 1001,
			want: []Range{{100000, 5}}},
		{name: "name and uid lines mixed",
			content: "alice:100000:65536\n1002:200000:65536\n1001:300000:65536\nbob:400000:1\n",
			user:    "alice", uid: 1001,
			want: []Range{{100000, 65536}, {300000, 65536}}},
		{name: "other user's uid is not ours", content: "1002:100000:65536\nalicex:1:1\nalic:2:2\n",
			user: "alice", uid: 1001, want: nil},
		{name: "unknown name: numeric lines only", content: "1001:100000:65536\n:5:5\n", user: "", uid: 1001,
			want: []Range{{100000, 65536}}},
		{name: "malformed lines skipped",
			content: "alice:1\nalice:x:10\nalice:1:2:3\nalice:-1:10\nalice:10:-1\nalice::10\nalice:10:\n:100:1\nalice:4294967296:1\nalice:1:4294967296\nalice:7:7\n",
			user:    "alice", uid: 1001,
			want: []Range{{7, 7}}},
		{name: "count zero skipped", content: "alice:100000:0\nalice:5:1\n", user: "alice", uid: 1001,
			want: []Range{{5, 1}}},
		{name: "overflow past 2^32 skipped",
			content: "alice:4294967295:2\nalice:4294900000:100000\nalice:4294967295:1\nalice:0:4294967295\n",
			user:    "alice", uid: 1001,
			want: []Range{{4294967295, 1}, {0, 4294967295}}},
		{name: "very long line skipped, next line kept",
			content: "alice:1:" + strings.Repeat("9", 10000) + "\nalice:100000:65536\n",
			user:    "alice", uid: 1001,
			want: []Range{{100000, 65536}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSubIDs(strings.NewReader(tt.content), tt.user, tt.uid)
			if err != nil {
				t.Fatalf("ParseSubIDs: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSubIDs = %v, want %v", got, tt.want)
			}
		})
	}
}

type failingReader struct{ data io.Reader }

var errBroken = errors.New("broken disk")

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.data.Read(p)
	if err == io.EOF {
		return n, errBroken
	}
	return n, err
}

func TestParseSubIDsReadError(t *testing.T) {
	_, err := ParseSubIDs(&failingReader{strings.NewReader("alice:1:1\n")}, "alice", 1001)
	if !errors.Is(err, errBroken) {
		t.Fatalf("ParseSubIDs error = %v, want %v", err, errBroken)
	}
}

func TestParseGetsubids(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []Range
		wantErr bool
	}{
		{name: "empty", out: "", want: nil},
		{name: "one range", out: "0: alice 100000 65536\n", want: []Range{{100000, 65536}}},
		// Real output of shadow 4.13's getsubids for a user with a name line, a numeric
		// line and another name line.
		{name: "several ranges",
			out:  "0: nookidmaptest 100000 65536\n1: nookidmaptest 300000 1000\n2: nookidmaptest 500000 10\n",
			want: []Range{{100000, 65536}, {300000, 1000}, {500000, 10}}},
		{name: "numeric owner", out: "0: 1001 300000 1000\n", want: []Range{{300000, 1000}}},
		{name: "blank lines and no trailing newline", out: "\n0: alice 1 2\n\n1: alice 3 4",
			want: []Range{{1, 2}, {3, 4}}},
		{name: "count zero and overflow skipped",
			out:  "0: alice 1 0\n1: alice 4294967295 2\n2: alice 4294967295 1\n",
			want: []Range{{4294967295, 1}}},
		{name: "error message is not output", out: "Error fetching ranges\n", wantErr: true},
		{name: "missing index colon", out: "0 alice 1 2\n", wantErr: true},
		{name: "too few fields", out: "0: alice 1\n", wantErr: true},
		{name: "bad number", out: "0: alice x 2\n", wantErr: true},
		{name: "number too large", out: "0: alice 1 4294967296\n", wantErr: true},
		{name: "negative", out: "0: alice -1 2\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGetsubids([]byte(tt.out))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseGetsubids error = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseGetsubids = %v, want %v", got, tt.want)
			}
		})
	}
}
