//go:build !nook_lean

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nook-containers/nook/engine"
)

type imagesOpts struct {
	quiet, noTrunc, digests, all bool
	format                       string
	filters                      []string
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
			f, err := engine.ParseImageFilter(o.filters)
			if err != nil {
				return err
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			rows, err := e.Images(o.all)
			if err != nil {
				return err
			}
			if rows, err = e.FilterImages(context.Background(), rows, f); err != nil {
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
	c.Flags().StringArrayVarP(&o.filters, "filter", "f", nil, "filter the list: dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE (repeatable)")
	c.Flags().StringVar(&o.format, "format", "", "format the list: table, table TEMPLATE, json, or a Go template ({{.Repository}} {{.Tag}} {{.ID}} {{.Digest}} {{.CreatedSince}} {{.Size}} ...)")
	return engineCmd(c)
}

// imageCommands are the commands that need containers/image or buildkit: the full engine's
// only (lean.go has the lean engine's empty list).
func imageCommands() []*cobra.Command {
	return []*cobra.Command{
		newImportCmd(), newImagesCmd(), newImageCmd(), newRmiCmd(),
		newPullCmd(), newPushCmd(), newLoginCmd(), newLogoutCmd(), newTagCmd(), newInspectCmd(),
		newHistoryCmd(), newSaveCmd(), newLoadCmd(), newBuildCmd(),
		newCommitCmd(), newDiffCmd(), newExportCmd(),
	}
}

// containerImageCommands are the `nook container` commands that only the full engine has:
// commit makes an image (containers/image's manifests, buildkit's parser for --change), and
// diff and export go with it (lean.go has the lean engine's empty list).
func containerImageCommands() []*cobra.Command {
	return []*cobra.Command{newCommitCmd(), newDiffCmd(), newExportCmd()}
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
