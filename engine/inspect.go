//go:build !nook_lean

package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

// Tag gives a local image one more name. A name another image had moves to this one, as
// with Docker.
func (e *Engine) Tag(source, target string) error {
	img, err := e.FindImage(source)
	if err != nil {
		return err
	}
	named, err := ParseName(target)
	if err != nil {
		return err
	}
	if err := e.Store.AddNames(img.ID, []string{named.String()}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", source, target, err)
	}
	return nil
}

// ImageInspect is Docker's `image inspect` document, with the fields nook has.
type ImageInspect struct {
	ID            string            `json:"Id"`
	RepoTags      []string          `json:"RepoTags"`
	RepoDigests   []string          `json:"RepoDigests"`
	Parent        string            `json:"Parent"`
	Comment       string            `json:"Comment"`
	Created       string            `json:"Created"`
	DockerVersion string            `json:"DockerVersion"`
	Author        string            `json:"Author"`
	Config        InspectConfig     `json:"Config"`
	Architecture  string            `json:"Architecture"`
	Variant       string            `json:"Variant,omitempty"`
	Os            string            `json:"Os"`
	Size          int64             `json:"Size"`
	GraphDriver   InspectDriver     `json:"GraphDriver"`
	RootFS        InspectRootFS     `json:"RootFS"`
	Metadata      map[string]string `json:"Metadata"`
}

// InspectConfig is the container configuration an image carries, in Docker's spelling.
type InspectConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// InspectDriver names the storage driver and the image's layer directories.
type InspectDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// InspectRootFS lists the image's layers by diff ID.
type InspectRootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// InspectImage describes a local image as Docker's `image inspect` does.
func (e *Engine) InspectImage(ctx context.Context, name string) (*ImageInspect, error) {
	img, err := e.FindImage(name)
	if err != nil {
		return nil, err
	}
	cfg, err := e.ImageConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	out := &ImageInspect{
		ID:           "sha256:" + img.ID,
		RepoTags:     []string{},
		RepoDigests:  []string{},
		Architecture: cfg.Architecture,
		Variant:      cfg.Variant,
		Os:           cfg.OS,
		Author:       cfg.Author,
		GraphDriver:  InspectDriver{Name: e.Driver, Data: map[string]string{}},
		RootFS:       InspectRootFS{Type: "layers", Layers: []string{}},
		Metadata:     map[string]string{},
	}
	if cfg.Created != nil {
		out.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	} else if !img.Created.IsZero() {
		out.Created = img.Created.UTC().Format(time.RFC3339Nano)
	}
	if n := len(cfg.History); n > 0 {
		out.Comment = cfg.History[n-1].Comment
	}
	c := cfg.Config
	out.Config = InspectConfig{User: c.User, Env: c.Env, Cmd: c.Cmd, WorkingDir: c.WorkingDir,
		Entrypoint: c.Entrypoint, Labels: c.Labels, StopSignal: c.StopSignal,
		ExposedPorts: c.ExposedPorts, Volumes: c.Volumes}
	repos := map[string]bool{}
	for _, n := range img.Names {
		ref, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		if _, ok := ref.(reference.Tagged); ok {
			out.RepoTags = append(out.RepoTags, reference.FamiliarString(ref))
		}
		repos[reference.FamiliarName(ref)] = true
	}
	digests := img.Digests
	if len(digests) == 0 && img.Digest != "" {
		digests = append(digests, img.Digest)
	}
	for repo := range repos {
		for _, d := range digests {
			out.RepoDigests = append(out.RepoDigests, repo+"@"+d.String())
		}
	}
	sort.Strings(out.RepoDigests)
	for _, d := range cfg.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	if size, err := e.Store.ImageSize(img.ID); err == nil {
		out.Size = size
	}
	if img.TopLayer != "" {
		if l, err := e.Store.Layer(img.TopLayer); err == nil {
			out.GraphDriver.Data["LayerID"] = l.ID
		}
	}
	return out, nil
}

// HistoryEntry is one row of `nook history`, newest first.
type HistoryEntry struct {
	ID         string // the image ID on the newest row, "" (<missing>) on the others
	Created    time.Time
	CreatedBy  string
	Size       int64
	Comment    string
	EmptyLayer bool
}

// History lists how an image was made, from its config's history and its layers' sizes.
func (e *Engine) History(ctx context.Context, name string) ([]HistoryEntry, error) {
	img, err := e.FindImage(name)
	if err != nil {
		return nil, err
	}
	cfg, err := e.ImageConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	// The image's layers, bottom first, with their sizes.
	var sizes []int64
	for id := img.TopLayer; id != ""; {
		l, err := e.Store.Layer(id)
		if err != nil {
			break
		}
		sizes = append([]int64{l.UncompressedSize}, sizes...)
		id = l.Parent
	}
	var out []HistoryEntry
	li := 0
	for _, h := range cfg.History {
		en := HistoryEntry{CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if h.Created != nil {
			en.Created = *h.Created
		}
		if !h.EmptyLayer && li < len(sizes) {
			en.Size = sizes[li]
			li++
		}
		out = append(out, en)
	}
	// Layers the history does not describe (an image without history) still get a row each.
	for ; li < len(sizes); li++ {
		out = append(out, HistoryEntry{Size: sizes[li]})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID
	}
	return out, nil
}

// PruneReport says what prune removed.
type PruneReport struct {
	Untagged []string // names removed
	Deleted  []string // image IDs removed
	Freed    int64    // bytes of layers removed
}

// PruneImages removes dangling images (no name), or with all every image no container uses,
// and reports what it freed.
func (e *Engine) PruneImages(all bool) (*PruneReport, error) {
	images, err := e.Store.Images()
	if err != nil {
		return nil, err
	}
	ctrs, err := e.Store.Containers()
	if err != nil {
		return nil, err
	}
	before := e.layerBytes()
	rep := &PruneReport{}
	var errs []error
	// As Docker: an image that a kept build step was built on (an intermediate image) is not
	// dangling; removing the image built on it makes it so, and the next round takes it.
	failed := map[string]bool{}
	for {
		parents := e.buildParents(images)
		removed := 0
		for _, img := range pruneCandidates(images, ctrs, all) {
			if parents[img.ID] || failed[img.ID] {
				continue
			}
			for _, n := range img.Names {
				if ref, err := reference.ParseNormalizedNamed(n); err == nil {
					rep.Untagged = append(rep.Untagged, reference.FamiliarString(ref))
				}
			}
			if _, err := e.Store.DeleteImage(img.ID, true); err != nil {
				errs = append(errs, fmt.Errorf("remove image %s: %w", shortID(img.ID), err))
				failed[img.ID] = true
				continue
			}
			rep.Deleted = append(rep.Deleted, img.ID)
			removed++
		}
		if removed == 0 {
			break
		}
		if images, err = e.Store.Images(); err != nil {
			return nil, err
		}
	}
	e.sweepIfIdle()
	if after := e.layerBytes(); before > after {
		rep.Freed = before - after
	}
	return rep, errors.Join(errs...)
}

// pruneCandidates picks the images prune removes: never one a container uses; without all,
// only those with no name.
func pruneCandidates(images []storage.Image, ctrs []storage.Container, all bool) []storage.Image {
	used := map[string]bool{}
	for _, c := range ctrs {
		used[c.ImageID] = true
	}
	var out []storage.Image
	for _, img := range images {
		if used[img.ID] || (!all && len(img.Names) > 0) {
			continue
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// layerBytes is the size of all layers in the store.
func (e *Engine) layerBytes() int64 {
	layers, err := e.Store.Layers()
	if err != nil {
		return 0
	}
	var n int64
	for _, l := range layers {
		if l.UncompressedSize > 0 {
			n += l.UncompressedSize
		}
	}
	return n
}
