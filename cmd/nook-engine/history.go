//go:build !nook_lean

package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// historyRow is one row of `nook history` for --format templates.
type historyRow struct {
	ID           string `json:"ID"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedSince string `json:"CreatedSince"`
	CreatedBy    string `json:"CreatedBy"`
	Size         string `json:"Size"`
	Comment      string `json:"Comment"`
}

var historyHeaders = map[string]string{
	"ID": "IMAGE", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY",
	"Size": "SIZE", "Comment": "COMMENT",
}

func newHistoryCmd() *cobra.Command { return historyCommand() }

func newImageHistoryCmd() *cobra.Command { return historyCommand() }

func historyCommand() *cobra.Command {
	var human, noTrunc, quiet bool
	var format string
	c := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show how an image was made",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			entries, err := e.History(context.Background(), args[0])
			if err != nil {
				return err
			}
			var rows []any
			for _, h := range entries {
				id := "<missing>"
				if h.ID != "" {
					id = idString(h.ID, noTrunc)
				}
				if quiet {
					if h.ID != "" {
						cmd.Println(id)
					}
					continue
				}
				by := strings.Join(strings.Fields(h.CreatedBy), " ")
				if !noTrunc {
					by = ellipsis(by, 45)
				}
				size := strconv.FormatInt(h.Size, 10)
				if human {
					size = humanSize(h.Size)
				}
				created, createdAt := "N/A", ""
				if !h.Created.IsZero() {
					created, createdAt = ago(h.Created), h.Created.Format("2006-01-02T15:04:05Z07:00")
				}
				rows = append(rows, historyRow{ID: id, CreatedAt: createdAt, CreatedSince: created, CreatedBy: by, Size: size, Comment: h.Comment})
			}
			if quiet {
				return nil
			}
			if format == "" {
				format = "table"
			}
			return renderRows(cmd.OutOrStdout(), format, "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}", historyHeaders, rows)
		},
	}
	c.Flags().BoolVarP(&human, "human", "H", true, "sizes and dates in human-readable form")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	c.Flags().StringVar(&format, "format", "", "format the list: table, table TEMPLATE, json, or a Go template")
	return engineCmd(c)
}
