package main

import (
	"bytes"
	"strings"
	"testing"
)

type fmtRow struct {
	Repository string `json:"Repository"`
	Tag        string `json:"Tag"`
	ID         string `json:"ID"`
}

func TestRenderRows(t *testing.T) {
	rows := []any{fmtRow{"demo", "latest", "abc"}, fmtRow{"quay.io/x/longer-name", "v2", "def"}}
	headers := map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID"}
	def := "{{.Repository}}\t{{.Tag}}\t{{.ID}}"
	for _, c := range []struct{ format, want string }{
		{"{{.Repository}}:{{.Tag}}", "demo:latest\nquay.io/x/longer-name:v2\n"},
		{`{{.ID}}\t{{.Tag}}`, "abc\tlatest\ndef\tv2\n"},
		{"{{upper .Tag}} {{json .ID}}", "LATEST \"abc\"\nV2 \"def\"\n"},
		{"table {{.Repository}}\t{{.Tag}}", "REPOSITORY              TAG\ndemo                    latest\nquay.io/x/longer-name   v2\n"},
		{"table", "REPOSITORY              TAG      IMAGE ID\ndemo                    latest   abc\nquay.io/x/longer-name   v2       def\n"},
		{"json", `{"Repository":"demo","Tag":"latest","ID":"abc"}` + "\n" + `{"Repository":"quay.io/x/longer-name","Tag":"v2","ID":"def"}` + "\n"},
	} {
		var b bytes.Buffer
		if err := renderRows(&b, c.format, def, headers, rows); err != nil {
			t.Errorf("format %q: %v", c.format, err)
			continue
		}
		if b.String() != c.want {
			t.Errorf("format %q:\n got %q\nwant %q", c.format, b.String(), c.want)
		}
	}
	for _, bad := range []string{"{{.Nope}}", "{{.Repository", "table {{.Nope}}"} {
		var b bytes.Buffer
		err := renderRows(&b, bad, def, headers, rows)
		if err == nil || !strings.Contains(err.Error(), "template") {
			t.Errorf("format %q: error %v, want an invalid template error", bad, err)
		}
	}
}

func TestEllipsis(t *testing.T) {
	if got := ellipsis("short", 45); got != "short" {
		t.Errorf("ellipsis: %q", got)
	}
	if got := ellipsis(strings.Repeat("x", 50), 10); got != "xxxxxxxxx…" {
		t.Errorf("ellipsis: %q", got)
	}
}
