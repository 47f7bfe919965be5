//go:build !nook_lean

package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/compression"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// Archive formats of save and load.
const (
	FormatDocker = "docker-archive"
	FormatOCI    = "oci-archive"
)

// SaveOptions are `nook save`'s settings.
type SaveOptions struct {
	Images   []string
	Output   string    // a path; "" writes to Stdout
	Stdout   io.Writer // used when Output is ""
	Format   string    // FormatDocker (default) or FormatOCI
	Progress io.Writer
}

// Save writes images to an archive. The archive appears at Output only when complete.
func (e *Engine) Save(ctx context.Context, o SaveOptions) error {
	if o.Format == "" {
		o.Format = FormatDocker
	}
	if o.Format != FormatDocker && o.Format != FormatOCI {
		return fmt.Errorf("unknown archive format %q: use %s or %s", o.Format, FormatDocker, FormatOCI)
	}
	if o.Format == FormatOCI && len(o.Images) > 1 {
		return fmt.Errorf("an %s holds one image here: save the images one by one, or use --format %s", FormatOCI, FormatDocker)
	}
	type item struct {
		img   *storage.Image
		named reference.NamedTagged // nil when named by ID or digest
	}
	var items []item
	for _, name := range o.Images {
		img, err := e.FindImage(name)
		if err != nil {
			return err
		}
		it := item{img: img}
		if !(looksLikeID(name) && strings.HasPrefix(img.ID, strings.TrimPrefix(name, "sha256:"))) {
			if ref, err := ParseReference(name); err == nil {
				if nt, ok := ref.(reference.NamedTagged); ok {
					it.named = nt
				}
			}
		}
		items = append(items, it)
	}

	unlock, err := e.beginImageWrite()
	if err != nil {
		return err
	}
	defer unlock()
	dir := filepath.Dir(o.Output)
	if o.Output == "" {
		dir = e.tmpDir()
	}
	tmp, err := os.CreateTemp(dir, ".nook-save-*.tar")
	if err != nil {
		return fmt.Errorf("create the archive: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmpName)
		}
	}()
	pc, err := policyContext()
	if err != nil {
		return err
	}
	defer pc.Destroy()
	opts := func() *copy.Options {
		return &copy.Options{ReportWriter: o.Progress, SourceCtx: e.transferContext(), DestinationCtx: e.transferContext()}
	}

	if o.Format == FormatOCI {
		it := items[0]
		name := ""
		if it.named != nil {
			name = it.named.String()
		}
		src, err := istorage.Transport.NewStoreReference(e.Store, nil, it.img.ID)
		if err != nil {
			return err
		}
		os.Remove(tmpName) // the OCI archive writer makes its own file
		dest, err := ociarchive.NewReference(tmpName, name)
		if err != nil {
			return err
		}
		if _, err := copy.Image(ctx, pc, dest, src, opts()); err != nil {
			return fmt.Errorf("save %s: %w", o.Images[0], err)
		}
	} else {
		w, err := archive.NewWriter(e.transferContext(), tmpName)
		if err != nil {
			return fmt.Errorf("create the archive: %w", err)
		}
		// One copy per image, with all the names it was asked by: the archive writer cannot add
		// the same image twice.
		var order []string
		tags := map[string][]reference.NamedTagged{}
		for _, it := range items {
			if _, ok := tags[it.img.ID]; !ok {
				order = append(order, it.img.ID)
				tags[it.img.ID] = nil
			}
			if it.named != nil {
				tags[it.img.ID] = append(tags[it.img.ID], it.named)
			}
		}
		for _, id := range order {
			src, err := istorage.Transport.NewStoreReference(e.Store, nil, id)
			if err != nil {
				w.Close()
				return err
			}
			var first reference.NamedTagged
			co := opts()
			if t := tags[id]; len(t) > 0 {
				first = t[0]
				co.DestinationCtx.DockerArchiveAdditionalTags = t[1:]
			}
			dest, err := w.NewReference(first)
			if err != nil {
				w.Close()
				return err
			}
			if _, err := copy.Image(ctx, pc, dest, src, co); err != nil {
				w.Close()
				return fmt.Errorf("save %s: %w", shortID(id), err)
			}
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("write the archive: %w", err)
		}
	}

	if o.Output == "" {
		f, err := os.Open(tmpName)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(o.Stdout, f); err != nil {
			return fmt.Errorf("write the archive to standard output: %w", err)
		}
		return nil
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmpName, o.Output); err != nil {
		return fmt.Errorf("write %s: %w", o.Output, err)
	}
	done = true
	return nil
}

// LoadOptions are `nook load`'s settings.
type LoadOptions struct {
	Input    string    // a path; "" or "-" reads Stdin
	Stdin    io.Reader // used when Input is "" or "-"
	Progress io.Writer
}

// LoadedImage is one image that load added: its ID and the names it got.
type LoadedImage struct {
	ID    string
	Names []reference.Named
}

// Load adds the images of a docker-archive or oci-archive (possibly compressed). The whole
// archive is read and every blob checked against its digest before anything is added, so a
// corrupt or truncated archive adds nothing.
func (e *Engine) Load(ctx context.Context, o LoadOptions) ([]LoadedImage, error) {
	unlock, err := e.beginImageWrite()
	if err != nil {
		return nil, err
	}
	defer unlock()
	what := o.Input
	p := o.Input
	if p == "" || p == "-" {
		what = "standard input"
		tmp, err := os.CreateTemp(e.tmpDir(), "load-*.tar")
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp.Name())
		_, err = io.Copy(tmp, o.Stdin)
		tmp.Close()
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		p = tmp.Name()
	}
	format, err := archiveFormat(p, what)
	if err != nil {
		return nil, err
	}
	if format == FormatOCI {
		return e.loadOCI(ctx, p, what, o.Progress)
	}
	return e.loadDocker(ctx, p, what, o.Progress)
}

// archiveFormat reads the whole archive (a complete tar stream, perhaps compressed) and tells
// its format by the files at its top: oci-layout, or manifest.json.
func archiveFormat(p, what string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", what, errors.Unwrap(err))
	}
	defer f.Close()
	r, _, err := compression.AutoDecompress(f)
	if err != nil {
		return "", fmt.Errorf("%s is not an image archive (%v): check the file", what, err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	var oci, docker bool
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", corrupt(what, err, n)
		}
		switch path.Clean(h.Name) {
		case imgspecv1.ImageLayoutFile:
			oci = true
		case "manifest.json":
			docker = true
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return "", fmt.Errorf("%s is cut short (%v): check the file", what, err)
		}
		n++
	}
	switch {
	case oci:
		return FormatOCI, nil
	case docker:
		return FormatDocker, nil
	case n == 0:
		return "", fmt.Errorf("%s is not an image archive (empty): check the file", what)
	}
	return "", fmt.Errorf("%s is not an image archive (no manifest.json or oci-layout in it): give a file made by `nook save` or `docker save`", what)
}

func corrupt(what string, err error, n int) error {
	if n == 0 {
		return fmt.Errorf("%s is not an image archive (%v): check the file", what, err)
	}
	return fmt.Errorf("%s is corrupt or cut short (%v): check the file", what, err)
}

func (e *Engine) loadDocker(ctx context.Context, p, what string, progress io.Writer) ([]LoadedImage, error) {
	r, err := archive.NewReader(e.transferContext(), p)
	if err != nil {
		return nil, fmt.Errorf("%s is not a usable docker-archive (%v): check the file", what, err)
	}
	defer r.Close()
	groups, err := r.List()
	if err != nil {
		return nil, fmt.Errorf("%s is not a usable docker-archive (%v): check the file", what, err)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("%s holds no image: check the file", what)
	}
	for _, g := range groups {
		if err := e.verifySource(ctx, g[0], what); err != nil {
			return nil, err
		}
	}
	var out []LoadedImage
	for _, g := range groups {
		var names []reference.Named
		for _, ref := range g {
			if n := ref.DockerReference(); n != nil {
				names = append(names, n)
			}
		}
		li, err := e.loadOne(ctx, g[0], names, what, progress)
		if err != nil {
			return out, err
		}
		out = append(out, li)
	}
	return out, nil
}

func (e *Engine) loadOCI(ctx context.Context, p, what string, progress io.Writer) ([]LoadedImage, error) {
	dir, err := os.MkdirTemp(e.tmpDir(), "load-oci-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := extractOCI(p, dir, what); err != nil {
		return nil, err
	}
	list, err := layout.List(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not a usable oci-archive (%v): check the file", what, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s holds no image: check the file", what)
	}
	type entry struct {
		ref   types.ImageReference
		names []reference.Named
	}
	var entries []entry
	for i, l := range list {
		ref, err := layout.NewIndexReference(dir, i)
		if err != nil {
			return nil, err
		}
		en := entry{ref: ref}
		if n := nameFromAnnotation(l.ManifestDescriptor.Annotations[imgspecv1.AnnotationRefName]); n != nil {
			en.names = []reference.Named{n}
		}
		if err := e.verifySource(ctx, ref, what); err != nil {
			return nil, err
		}
		entries = append(entries, en)
	}
	var out []LoadedImage
	for _, en := range entries {
		li, err := e.loadOne(ctx, en.ref, en.names, what, progress)
		if err != nil {
			return out, err
		}
		out = append(out, li)
	}
	return out, nil
}

// nameFromAnnotation reads an OCI index's image name: a full reference ("docker.io/library/x:1",
// "x:1") names the image; a bare tag ("latest"), as the OCI spec also allows, does not.
func nameFromAnnotation(a string) reference.Named {
	if a == "" || !strings.ContainsAny(a, ":/") {
		return nil
	}
	n, err := ParseReference(a)
	if err != nil {
		return nil
	}
	return n
}

// extractOCI unpacks an oci-archive into dir, checking each blob against the digest it is
// named by. Only regular files and directories are taken, and only below dir.
func extractOCI(p, dir, what string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := compression.AutoDecompress(f)
	if err != nil {
		return corrupt(what, err, 0)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return corrupt(what, err, n)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%s has a path outside the archive (%s): refusing it", what, h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			continue
		case tar.TypeReg:
		default:
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", what, h.Name, err)
		}
		var verifier digest.Verifier
		if parts := strings.Split(name, "/"); len(parts) == 3 && parts[0] == "blobs" {
			d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
			if d.Validate() == nil {
				verifier = d.Verifier()
			}
		}
		var w io.Writer = out
		if verifier != nil {
			w = io.MultiWriter(out, verifier)
		}
		_, err = io.Copy(w, tr)
		out.Close()
		if err != nil {
			return fmt.Errorf("%s is cut short (%v): check the file", what, err)
		}
		if verifier != nil && !verifier.Verified() {
			return fmt.Errorf("%s is corrupt (blob %s does not match its digest): check the file", what, path.Base(name))
		}
	}
}

// verifySource reads every blob of an image from an archive and checks it against the
// digest the manifest gives, before anything goes into the store.
func (e *Engine) verifySource(ctx context.Context, ref types.ImageReference, what string) error {
	sys := e.transferContext()
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return fmt.Errorf("%s is not usable (%v): check the file", what, err)
	}
	defer src.Close()
	img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, nil))
	if err != nil {
		return fmt.Errorf("%s is corrupt (%v): check the file", what, err)
	}
	if _, err := img.OCIConfig(ctx); err != nil {
		return fmt.Errorf("%s is corrupt (image config: %v): check the file", what, err)
	}
	infos, err := src.LayerInfosForCopy(ctx, nil)
	if err != nil || infos == nil {
		infos = img.LayerInfos()
	}
	for _, info := range infos {
		rc, _, err := src.GetBlob(ctx, info, nil)
		if err != nil {
			return fmt.Errorf("%s is corrupt or cut short (layer %s: %v): check the file", what, info.Digest.Encoded()[:12], err)
		}
		v := info.Digest.Verifier()
		_, err = io.Copy(v, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s is corrupt or cut short (layer %s: %v): check the file", what, info.Digest.Encoded()[:12], err)
		}
		if !v.Verified() {
			return fmt.Errorf("%s is corrupt (layer %s does not match its digest): check the file", what, info.Digest.Encoded()[:12])
		}
	}
	return nil
}

// loadOne copies one verified image into the store and gives it its names.
func (e *Engine) loadOne(ctx context.Context, src types.ImageReference, names []reference.Named, what string, progress io.Writer) (LoadedImage, error) {
	var first reference.Named
	if len(names) > 0 {
		first = names[0]
	} else {
		// The storage transport needs a name to write to: an unnamed image goes in under a
		// unique temporary one, removed below.
		tmp, err := reference.ParseNormalizedNamed(fmt.Sprintf("localhost/nook-load-%d-%d:latest", os.Getpid(), time.Now().UnixNano()))
		if err != nil {
			return LoadedImage{}, err
		}
		first = tmp
	}
	dest, err := istorage.Transport.NewStoreReference(e.Store, first, "")
	if err != nil {
		return LoadedImage{}, err
	}
	m, err := e.transfer(ctx, dest, src, e.transferContext(), e.transferContext(), progress)
	if err != nil {
		return LoadedImage{}, explainStoreError("load "+what, err)
	}
	img, err := e.imageByManifest(m)
	if err != nil {
		return LoadedImage{}, err
	}
	if len(names) == 0 {
		if err := e.Store.RemoveNames(img.ID, []string{first.String()}); err != nil {
			return LoadedImage{}, err
		}
	}
	if len(names) > 1 {
		var extra []string
		for _, n := range names[1:] {
			extra = append(extra, n.String())
		}
		if err := e.Store.AddNames(img.ID, extra); err != nil {
			return LoadedImage{}, err
		}
	}
	return LoadedImage{ID: img.ID, Names: names}, nil
}
