//go:build !nook_lean

package engine

// The image commands' side of images (import, images, rmi) and ImageConfig's general reading:
// containers/image, which the lean engine does not link (lean.go).

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/tarball"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// imageConfigOther reads an image's OCI configuration through containers/image's storage
// transport, for the images ImageConfig does not read itself.
func (e *Engine) imageConfigOther(ctx context.Context, img *storage.Image) (*imgspecv1.Image, error) {
	ref, err := istorage.Transport.NewStoreReference(e.Store, nil, img.ID)
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImage(ctx, e.systemContext())
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", shortID(img.ID), err)
	}
	defer src.Close()
	cfg, err := src.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read image config %s: %w", shortID(img.ID), err)
	}
	return cfg, nil
}

func (e *Engine) systemContext() *types.SystemContext {
	return &types.SystemContext{}
}

func policyContext() (*signature.PolicyContext, error) {
	return signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
}

// ImportOptions say how a root filesystem tarball becomes an image.
type ImportOptions struct {
	Source string // a path, or "-" for standard input
	Name   string // REPOSITORY[:TAG], optional
	Stdin  io.Reader
}

// Import makes a single-layer image from a root filesystem tarball and returns its ID.
// The tarball is checked completely first, so a file that is not a tar archive, or is cut
// short, adds nothing to the store.
func (e *Engine) Import(ctx context.Context, o ImportOptions) (string, error) {
	var named reference.Named
	if o.Name != "" {
		n, err := ParseName(o.Name)
		if err != nil {
			return "", err
		}
		named = n
	}
	path := o.Source
	if path == "-" {
		tmp, err := os.CreateTemp(e.Paths.RunRoot, "import-")
		if err != nil {
			return "", err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if _, err := io.Copy(tmp, o.Stdin); err != nil {
			return "", fmt.Errorf("read standard input: %w", err)
		}
		path = tmp.Name()
	}
	if err := checkTarball(path); err != nil {
		return "", err
	}
	src, err := tarball.Transport.ParseReference(path)
	if err != nil {
		return "", fmt.Errorf("import %s: %w", o.Source, err)
	}
	if tr, ok := src.(interface {
		ConfigUpdate(imgspecv1.Image, map[string]string) error
	}); ok {
		now := time.Now().UTC()
		cfg := imgspecv1.Image{Created: &now, Platform: imgspecv1.Platform{OS: "linux", Architecture: goarch()},
			History: []imgspecv1.History{{Created: &now, CreatedBy: "nook import " + o.Source, Comment: "imported from " + o.Source}}}
		if err := tr.ConfigUpdate(cfg, nil); err != nil {
			return "", err
		}
	}
	// The storage transport needs a name or an ID to write to: an unnamed import goes in under a
	// unique temporary name, removed at the end (the image is then dangling, as with Docker).
	destName := named
	if destName == nil {
		tmpName, err := reference.ParseNormalizedNamed(fmt.Sprintf("localhost/nook-import-%d-%d:latest", os.Getpid(), time.Now().UnixNano()))
		if err != nil {
			return "", err
		}
		destName = tmpName
	}
	dest, err := istorage.Transport.NewStoreReference(e.Store, destName, "")
	if err != nil {
		return "", err
	}
	pc, err := policyContext()
	if err != nil {
		return "", err
	}
	defer pc.Destroy()
	done, err := e.beginImageWrite()
	if err != nil {
		return "", err
	}
	defer done()
	manifest, err := copy.Image(ctx, pc, dest, src, &copy.Options{})
	if err != nil {
		return "", fmt.Errorf("import %s: %w", o.Source, err)
	}
	img, err := e.imageByManifest(manifest)
	if err != nil {
		return "", err
	}
	if named == nil {
		if err := e.Store.RemoveNames(img.ID, []string{destName.String()}); err != nil {
			return "", err
		}
	}
	return img.ID, nil
}

func (e *Engine) imageByManifest(manifest []byte) (*storage.Image, error) {
	d := digest.FromBytes(manifest)
	imgs, err := e.Store.ImagesByDigest(d)
	if err != nil || len(imgs) == 0 {
		return nil, fmt.Errorf("find the new image by digest %s: %v", d, err)
	}
	return imgs[0], nil
}

// checkTarball reads the whole (possibly compressed) archive and fails on anything that is
// not a complete tar stream.
func checkTarball(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	r, _, err := compression.AutoDecompress(f)
	if err != nil {
		return fmt.Errorf("%s is not a tar archive: %v", path, err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	n := 0
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && n == 0 {
			return fmt.Errorf("%s is not a tar archive (%v): check the file", path, err)
		}
		if err != nil {
			return fmt.Errorf("%s is not a complete tar archive (%v): check the file", path, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fmt.Errorf("%s is cut short (%v): check the file", path, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s is not a tar archive, or an empty one: check the file", path)
	}
	return nil
}

// ImageSummary is one row of `nook images`.
type ImageSummary struct {
	ID         string
	Repository string
	Tag        string
	Digest     string
	Created    time.Time
	Size       int64
}

// Images lists local images, one row per name (an unnamed image gets one <none> row),
// newest first. Without all, intermediate images — unnamed results of build steps that a later
// step built on — are left out, as Docker does.
func (e *Engine) Images(all bool) ([]ImageSummary, error) {
	imgs, err := e.Store.Images()
	if err != nil {
		return nil, err
	}
	parents := map[string]bool{}
	if !all {
		parents = e.buildParents(imgs)
	}
	var out []ImageSummary
	for _, img := range imgs {
		if len(img.Names) == 0 && !all && (parents[img.ID] || cacheOnly(&img)) {
			continue
		}
		size, err := e.Store.ImageSize(img.ID)
		if err != nil {
			size = -1
		}
		base := ImageSummary{ID: img.ID, Created: img.Created, Size: size, Repository: "<none>", Tag: "<none>", Digest: img.Digest.String()}
		if len(img.Names) == 0 {
			out = append(out, base)
			continue
		}
		for _, n := range img.Names {
			row := base
			if ref, err := reference.ParseNormalizedNamed(n); err == nil {
				row.Repository = reference.FamiliarName(ref)
				if t, ok := ref.(reference.Tagged); ok {
					row.Tag = t.Tag()
				}
			}
			out = append(out, row)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// RemoveImage removes a name from an image, and the image when no name is left (or when it
// was named by ID). A container using it blocks removal unless force.
func (e *Engine) RemoveImage(name string, force bool) ([]string, error) {
	img, ref, err := e.findImage(name)
	if err != nil {
		return nil, err
	}
	var report []string
	byID := ref == nil
	if !byID && len(img.Names) > 1 {
		if err := e.Store.RemoveNames(img.ID, []string{ref.String()}); err != nil {
			return nil, err
		}
		return []string{"Untagged: " + reference.FamiliarString(ref)}, nil
	}
	ctrs, err := e.Store.Containers()
	if err != nil {
		return nil, err
	}
	for _, c := range ctrs {
		if c.ImageID == img.ID {
			if !force {
				return nil, fmt.Errorf("image %s is used by container %s: remove the container first, or use --force", name, shortID(c.ID))
			}
			if err := e.RemoveContainer(c.ID, true); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range img.Names {
		if ref, err := reference.ParseNormalizedNamed(n); err == nil {
			report = append(report, "Untagged: "+reference.FamiliarString(ref))
		}
	}
	if _, err := e.Store.DeleteImage(img.ID, true); err != nil {
		return nil, fmt.Errorf("remove image %s: %w", shortID(img.ID), err)
	}
	return append(report, "Deleted: sha256:"+img.ID), nil
}

// buildParents returns the IDs of images that a build step built on, read from the build
// marks (engine/build.go).
func (e *Engine) buildParents(imgs []storage.Image) map[string]bool {
	parents := map[string]bool{}
	for i := range imgs {
		for _, m := range e.buildMarks(&imgs[i], true) {
			if m.Parent != "" {
				parents[m.Parent] = true
			}
		}
	}
	return parents
}
