package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

// ErrImageUnknown is returned when no local image matches a name or ID.
var ErrImageUnknown = errors.New("image not known")

// ParseName parses an image name the way Docker does ("demo" is docker.io/library/demo:latest).
func ParseName(name string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %v", name, err)
	}
	return reference.TagNameOnly(ref), nil
}

// FindImage finds a local image by name, full or short ID.
func (e *Engine) FindImage(name string) (*storage.Image, error) {
	img, _, err := e.findImage(name)
	return img, err
}

// findImage is FindImage that also says under which name the image was found (nil when
// found by ID). A short name is looked up as Docker names it first, then as registries.conf
// resolves it (otherCandidates).
func (e *Engine) findImage(name string) (*storage.Image, reference.Named, error) {
	if looksLikeID(name) {
		if img, err := e.Store.Image(strings.TrimPrefix(name, "sha256:")); err == nil {
			return img, nil, nil
		}
	}
	ref, err := ParseName(name)
	if err != nil {
		return nil, nil, err
	}
	try := func(ref reference.Named) (*storage.Image, error) {
		img, err := e.Store.Image(ref.String())
		if err != nil && !errors.Is(err, storage.ErrImageUnknown) {
			return nil, fmt.Errorf("look up image %s: %w", name, err)
		}
		return img, nil
	}
	// Docker's name first, without reading registries.conf: the common case, on the start
	// path of every `nook run`.
	if img, err := try(ref); img != nil || err != nil {
		return img, ref, err
	}
	others, err := e.otherCandidates(name)
	if err != nil {
		return nil, nil, err
	}
	for _, ref := range others {
		if img, err := try(ref); img != nil || err != nil {
			return img, ref, err
		}
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrImageUnknown, name)
}

// shortName parses a name as typed and says whether it is short (no registry): "busybox",
// "team/app:1" are; "quay.io/app", "localhost/app", "host:5000/app", "app@sha256:..." are not.
// For a short name it returns the repository as typed and the tag or digest to add back.
func shortName(name string) (short bool, repo string, tag string, dig string, err error) {
	ref, err := reference.Parse(name)
	if err != nil {
		return false, "", "", "", fmt.Errorf("invalid image name %q: %v", name, err)
	}
	named, ok := ref.(reference.Named)
	if !ok {
		return false, "", "", "", fmt.Errorf("invalid image name %q: no repository", name)
	}
	if d := reference.Domain(named); strings.ContainsAny(d, ".:") || d == "localhost" {
		return false, "", "", "", nil
	}
	if dg, ok := named.(reference.Digested); ok {
		return false, "", "", dg.Digest().String(), nil
	}
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return true, named.Name(), tag, "", nil
}

func looksLikeID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ImageConfig reads an image's OCI configuration. It reads the manifest and the configuration
// from the store itself, for the image forms every pull, build, import and load writes (a
// Docker schema 2 or OCI manifest with a Docker or OCI configuration, which decode alike);
// anything else is read through containers/image (imageConfigOther), which the lean engine
// leaves to the full one (lean.go).
func (e *Engine) ImageConfig(ctx context.Context, img *storage.Image) (*imgspecv1.Image, error) {
	if cfg, ok := e.storedImageConfig(img); ok {
		return cfg, nil
	}
	return e.imageConfigOther(ctx, img)
}

// storedImageConfig is ImageConfig's own reading; ok is false when the image is not in a form
// it knows, and containers/image must read it.
func (e *Engine) storedImageConfig(img *storage.Image) (*imgspecv1.Image, bool) {
	mb, err := e.Store.ImageBigData(img.ID, storage.ImageDigestBigDataKey)
	if err != nil {
		return nil, false
	}
	var m struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        struct {
			MediaType string        `json:"mediaType"`
			Digest    digest.Digest `json:"digest"`
		} `json:"config"`
	}
	if json.Unmarshal(mb, &m) != nil || m.SchemaVersion != 2 {
		return nil, false
	}
	switch m.MediaType {
	case "", imgspecv1.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json":
	default:
		return nil, false // a list, an index, or something new
	}
	switch m.Config.MediaType {
	case imgspecv1.MediaTypeImageConfig, "application/vnd.docker.container.image.v1+json":
	default:
		return nil, false
	}
	if m.Config.Digest.Validate() != nil {
		return nil, false
	}
	cb, err := e.Store.ImageBigData(img.ID, m.Config.Digest.String())
	if err != nil || m.Config.Digest.Algorithm().FromBytes(cb) != m.Config.Digest {
		return nil, false
	}
	cfg := &imgspecv1.Image{}
	if json.Unmarshal(cb, cfg) != nil {
		return nil, false
	}
	return cfg, true
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
