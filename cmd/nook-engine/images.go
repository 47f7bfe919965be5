package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

type imagesOpts struct {
	quiet, noTrunc, digests, all bool
	format                       string
}

// imageRow is one image of `nook images` for --format templates; the JSON keys are Docker's.
type imageRow struct {
	Containers   string `json:"Containers"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedSince string `json:"CreatedSince"`
	Digest       string `json:"Digest"`
	ID           string `json:"ID"`
	Repository   string `json:"Repository"`
	SharedSize   string `json:"SharedSize"`
	Size         string `json:"Size"`
	Tag          string `json:"Tag"`
	UniqueSize   string `json:"UniqueSize"`
	VirtualSize  string `json:"VirtualSize"`
}

var imageHeaders = map[string]string{
	"Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED", "Digest": "DIGEST",
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "SharedSize": "SHARED SIZE", "Size": "SIZE",
	"Tag": "TAG", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
}

func newImagesCmd() *cobra.Command {
	c := imagesCommand("images [OPTIONS]")
	c.Short = "List images"
	return c
}

func imagesCommand(use string) *cobra.Command {
	var o imagesOpts
	c := &cobra.Command{
		Use:  use,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			rows, err := e.Images(o.all)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Fprintln(out, idString(r.ID, o.noTrunc))
					}
				}
				return nil
			}
			format := o.format
			if format == "" {
				format = "table"
			}
			def := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if o.digests {
				def = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			list := make([]any, 0, len(rows))
			for _, r := range rows {
				d := r.Digest
				if d == "" {
					d = "<none>"
				}
				list = append(list, imageRow{
					Containers: "N/A", CreatedAt: r.Created.Format("2006-01-02 15:04:05 -0700 MST"),
					CreatedSince: ago(r.Created), Digest: d, ID: idString(r.ID, o.noTrunc),
					Repository: r.Repository, SharedSize: "N/A", Size: humanSize(r.Size), Tag: r.Tag,
					UniqueSize: "N/A", VirtualSize: humanSize(r.Size),
				})
			}
			return renderRows(out, format, def, imageHeaders, list)
		},
	}
	c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "only show image IDs")
	c.Flags().BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate IDs")
	c.Flags().BoolVar(&o.digests, "digests", false, "show digests")
	c.Flags().BoolVarP(&o.all, "all", "a", false, "show all images, intermediate build steps too")
	c.Flags().StringVar(&o.format, "format", "", "format the list: table, table TEMPLATE, json, or a Go template ({{.Repository}} {{.Tag}} {{.ID}} {{.Digest}} {{.CreatedSince}} {{.Size}} ...)")
	return engineCmd(c)
}

func newImageCmd() *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage images", Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	ls := imagesCommand("ls [OPTIONS]")
	ls.Aliases = []string{"list"}
	ls.Short = "List images"
	rm := rmiCommand("rm [OPTIONS] IMAGE [IMAGE...]")
	rm.Aliases = []string{"remove"}
	imp := newImportCmd()
	c.AddCommand(ls, rm, imp, newImagePullCmd(), newImagePushCmd(), newImageTagCmd(), newImageInspectCmd(),
		newImageHistoryCmd(), newImageSaveCmd(), newImageLoadCmd(), newImagePruneCmd())
	return c
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

// humanSize is go-units' HumanSize: decimal units, three significant digits.
func humanSize(n int64) string {
	if n < 0 {
		return "N/A"
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
