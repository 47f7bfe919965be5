package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type imagesOpts struct{ quiet, noTrunc, digests bool }

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
			rows, err := e.Images()
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
			w := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			if o.digests {
				fmt.Fprintln(w, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
			} else {
				fmt.Fprintln(w, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range rows {
				if o.digests {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.Digest, idString(r.ID, o.noTrunc), ago(r.Created), humanSize(r.Size))
				} else {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, idString(r.ID, o.noTrunc), ago(r.Created), humanSize(r.Size))
				}
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "only show image IDs")
	c.Flags().BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate IDs")
	c.Flags().BoolVar(&o.digests, "digests", false, "show digests")
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
	c.AddCommand(ls, rm, imp)
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
