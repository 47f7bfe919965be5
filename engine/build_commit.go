package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/nook-containers/nook/build"
)

// A build step's result becomes an image through containers/image's copy into
// containers-storage, like any pulled image: the source below serves the new configuration,
// manifest and (for steps that change files) the new layer, and the parent image's layers
// from the store, which the destination finds by digest and reuses instead of copying.

// newLayer is a layer diff staged in a file.
type newLayer struct {
	path   string
	digest digest.Digest // of the uncompressed tar, which is also its DiffID
	size   int64
}

// commitImage stores cfg as a new image on top of parent ("" for none), with layer added
// when it is not nil, and returns the new image's ID.
func (e *Engine) commitImage(ctx context.Context, parent string, cfg *build.Image, layer *newLayer) (string, error) {
	src := &commitSource{}
	var layers []imgspecv1.Descriptor
	if parent != "" {
		pref, err := istorage.Transport.NewStoreReference(e.Store, nil, parent)
		if err != nil {
			return "", err
		}
		psrc, err := pref.NewImageSource(ctx, e.systemContext())
		if err != nil {
			return "", fmt.Errorf("read image %s: %w", shortID(parent), err)
		}
		defer psrc.Close()
		src.parent = psrc
		mb, mt, err := psrc.GetManifest(ctx, nil)
		if err != nil {
			return "", fmt.Errorf("read manifest of %s: %w", shortID(parent), err)
		}
		m, err := manifest.FromBlob(mb, manifest.NormalizedMIMEType(mt))
		if err != nil {
			return "", fmt.Errorf("parse manifest of %s: %w", shortID(parent), err)
		}
		for _, l := range m.LayerInfos() {
			if l.EmptyLayer {
				continue
			}
			layers = append(layers, imgspecv1.Descriptor{MediaType: ociLayerType(l.MediaType), Digest: l.Digest, Size: l.Size})
		}
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return "", fmt.Errorf("image %s has %d layers but its configuration lists %d", shortID(parent), len(layers), len(cfg.RootFS.DiffIDs))
	}
	cfg.RootFS.Type = "layers"
	if layer != nil {
		layers = append(layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayer, Digest: layer.digest, Size: layer.size})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, layer.digest)
		src.layer = layer
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	src.config, src.configDigest = config, digest.FromBytes(config)
	if layers == nil {
		layers = []imgspecv1.Descriptor{}
	}
	m := imgspecv1.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest,
		Config:    imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: src.configDigest, Size: int64(len(config))},
		Layers:    layers,
	}
	if src.manifest, err = json.Marshal(m); err != nil {
		return "", err
	}
	src.ref = &commitRef{src: src}

	dest, err := istorage.Transport.NewStoreReference(e.Store, nil, src.configDigest.Encoded())
	if err != nil {
		return "", err
	}
	pc, err := policyContext()
	if err != nil {
		return "", err
	}
	defer pc.Destroy()
	if _, err := copy.Image(ctx, pc, dest, src.ref, &copy.Options{SourceCtx: e.transferContext(), DestinationCtx: e.transferContext()}); err != nil {
		return "", fmt.Errorf("commit image: %w", err)
	}
	id := src.configDigest.Encoded()
	if _, err := e.Store.Image(id); err != nil {
		return "", fmt.Errorf("commit image: the new image %s is not in the store: %w", shortID(id), err)
	}
	return id, nil
}

func ociLayerType(mt string) string {
	switch {
	case strings.Contains(mt, "zstd"):
		return imgspecv1.MediaTypeImageLayerZstd
	case strings.Contains(mt, "gzip"):
		return imgspecv1.MediaTypeImageLayerGzip
	}
	return imgspecv1.MediaTypeImageLayer
}

// commitSource is a types.ImageSource for one commit.
type commitSource struct {
	ref          *commitRef
	manifest     []byte
	config       []byte
	configDigest digest.Digest
	layer        *newLayer
	parent       types.ImageSource
}

func (s *commitSource) Reference() types.ImageReference { return s.ref }
func (s *commitSource) Close() error                    { return nil }
func (s *commitSource) HasThreadSafeGetBlob() bool      { return false }

func (s *commitSource) GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error) {
	if instance != nil {
		return nil, "", errors.New("no manifest list in a build commit")
	}
	return s.manifest, imgspecv1.MediaTypeImageManifest, nil
}

func (s *commitSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	switch {
	case info.Digest == s.configDigest:
		return io.NopCloser(bytes.NewReader(s.config)), int64(len(s.config)), nil
	case s.layer != nil && info.Digest == s.layer.digest:
		f, err := os.Open(s.layer.path)
		if err != nil {
			return nil, 0, err
		}
		return f, s.layer.size, nil
	case s.parent != nil:
		return s.parent.GetBlob(ctx, info, cache)
	}
	return nil, 0, fmt.Errorf("blob %s is not part of this build", info.Digest)
}

func (s *commitSource) GetSignatures(context.Context, *digest.Digest) ([][]byte, error) {
	return nil, nil
}

func (s *commitSource) LayerInfosForCopy(context.Context, *digest.Digest) ([]types.BlobInfo, error) {
	return nil, nil
}

// commitRef names a commitSource for containers/image; it can only be read, once.
type commitRef struct{ src *commitSource }

type commitTransport struct{}

func (commitTransport) Name() string { return "nook-build" }
func (commitTransport) ParseReference(string) (types.ImageReference, error) {
	return nil, errors.New("nook-build references cannot be parsed")
}
func (commitTransport) ValidatePolicyConfigurationScope(string) error { return nil }

func (r *commitRef) Transport() types.ImageTransport         { return commitTransport{} }
func (r *commitRef) StringWithinTransport() string           { return r.src.configDigest.String() }
func (r *commitRef) DockerReference() reference.Named        { return nil }
func (r *commitRef) PolicyConfigurationIdentity() string     { return "" }
func (r *commitRef) PolicyConfigurationNamespaces() []string { return nil }
func (r *commitRef) NewImage(ctx context.Context, sys *types.SystemContext) (types.ImageCloser, error) {
	return image.FromSource(ctx, sys, r.src)
}
func (r *commitRef) NewImageSource(context.Context, *types.SystemContext) (types.ImageSource, error) {
	return r.src, nil
}
func (r *commitRef) NewImageDestination(context.Context, *types.SystemContext) (types.ImageDestination, error) {
	return nil, errors.New("a build commit cannot be written to")
}
func (r *commitRef) DeleteImage(context.Context, *types.SystemContext) error {
	return errors.New("a build commit cannot be deleted")
}

// readBuildConfig reads an image's configuration with Docker's extensions (Healthcheck,
// OnBuild, Shell), which ImageConfig's OCI view drops.
func (e *Engine) readBuildConfig(ctx context.Context, id string) (*build.Image, error) {
	var raw []byte
	if b, err := e.Store.ImageBigData(id, "sha256:"+id); err == nil {
		raw = b // nook's and most images: the config's digest is the image ID
	} else {
		ref, err := istorage.Transport.NewStoreReference(e.Store, nil, id)
		if err != nil {
			return nil, err
		}
		img, err := ref.NewImage(ctx, e.systemContext())
		if err != nil {
			return nil, fmt.Errorf("read image %s: %w", shortID(id), err)
		}
		defer img.Close()
		if raw, err = img.ConfigBlob(ctx); err != nil {
			return nil, fmt.Errorf("read image config %s: %w", shortID(id), err)
		}
	}
	cfg := &build.Image{}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("parse image config %s: %w", shortID(id), err)
	}
	return cfg, nil
}
