package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
)

// templateFuncs are the functions Docker's --format templates offer.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"join":  strings.Join,
	"split": strings.Split,
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
}

// parseTemplate parses a --format value; "\t" and "\n" written literally on the command line
// mean a tab and a newline, as in Docker.
func parseTemplate(format string) (*template.Template, error) {
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(format)
	if err != nil {
		return nil, fmt.Errorf("invalid --format template: %v", err)
	}
	return t, nil
}

// renderRows writes rows (structs) as --format asks, the way Docker's lists do:
//   - "json": one JSON object per row;
//   - "table" alone: defaultTable;
//   - "table TEMPLATE": a header line (the template run over headers, which maps each field
//     to its column title), then one line per row, columns aligned;
//   - any other TEMPLATE: one line per row, nothing added.
func renderRows(w io.Writer, format, defaultTable string, headers map[string]string, rows []any) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	table := false
	if format == "table" {
		format, table = defaultTable, true
	} else if rest, ok := strings.CutPrefix(format, "table "); ok {
		format, table = rest, true
	}
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		out = tw
		var hb strings.Builder
		if err := t.Execute(&hb, headers); err != nil {
			return fmt.Errorf("invalid --format template: %v", err)
		}
		fmt.Fprintln(out, strings.TrimRight(hb.String(), "\n"))
	}
	for _, r := range rows {
		var b strings.Builder
		if err := t.Execute(&b, r); err != nil {
			return fmt.Errorf("invalid --format template: %v", err)
		}
		fmt.Fprintln(out, strings.TrimRight(b.String(), "\n"))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func idString(id string, noTrunc bool) string {
	if noTrunc {
		return "sha256:" + id
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ago renders a time the way Docker's CLI does ("2 minutes ago").
func ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return humanDuration(time.Since(t)) + " ago"
}

// humanDuration follows go-units' HumanDuration, which Docker's columns use.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
}

// humanSize is go-units' HumanSize, as Docker's size columns print it (decimal units, four
// significant digits); "N/A" for an unknown (negative) size.
func humanSize(n int64) string {
	if n < 0 {
		return "N/A"
	}
	return units.HumanSize(float64(n))
}

// ellipsis shortens s to n characters, the last one "…", as Docker's columns do.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
