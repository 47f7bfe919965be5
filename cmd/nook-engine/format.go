package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
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
