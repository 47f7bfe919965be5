//go:build !nook_lean

package engine

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vbatts/tar-split/tar/asm"
	tarstorage "github.com/vbatts/tar-split/tar/storage"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
	drivers "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/idtools"

	"github.com/nook-containers/nook/build"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/overlay"
)

// A build step's result goes into the store directly: the new layer (for steps that change
// files) with PutLayer on the parent's top layer, then the image record with its
// configuration and manifest under the keys containers/image's storage transport reads
// (the configuration's digest, "manifest-DIGEST" and "manifest"), so that run, save, push
// and inspect see it as any pulled image. Going through containers/image's copy instead
// costs a second staging copy of the layer, the blob-info cache's database and a policy
// check per step, for nothing a build needs.

// newLayer is a build step's changes: the digest and size of their tar, and either that tar
// in a file, for PutLayer, or the changed files themselves moved into the overlay driver's
// staging directory, for ApplyStagedLayer.
type newLayer struct {
	digest digest.Digest // of the uncompressed tar, which is also its DiffID
	size   int64
	path   string
	staged *drivers.DriverWithDifferOutput
	into   string // an empty layer made for the staged changes (earlyLayer), or ""
}

// drop releases what a layer that was not committed holds.
func (b *builder) drop(l *newLayer) {
	if l != nil && l.staged != nil {
		_ = b.e.Store.CleanupStagedLayer(l.staged)
		l.staged = nil
	}
}

// mountArtifacts are files the container's init creates as mount points when the image lacks
// them; their content is the host's, bind-mounted, so they never belong in a layer.
var mountArtifacts = []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"}

// changes are an unmounted container layer's changes, taken out of it (takeChanges) to be
// made a layer (layerOf). With the kernel's overlay the container's upper directory already
// is a layer in the driver's own format: its files are moved (rename(2)) into a staging
// directory of the driver, with what reading them as the driver's tar needs (the directories
// of the layers under them, for opaque directories; the ID mappings); the container can then
// go while they are read. Other modes read the container's tar into a file at once.
type changes struct {
	staged           *drivers.DriverWithDifferOutput
	lowers           []string
	uidMaps, gidMaps []idtools.IDMap
	layer            *newLayer // not staged: the layer already read, or nil
}

// diff takes an unmounted container layer's changes as a new layer for the image, or nil when
// there are none (the step then adds no layer, as with BuildKit). ranInit says a container's
// init ran on the layer, which may have left mountArtifacts, and the mount points of stubs.
func (b *builder) diff(layerID string, ranInit bool, stubs []string) (*newLayer, error) {
	ch, err := b.takeChanges(layerID, ranInit, stubs)
	if err != nil {
		return nil, err
	}
	return b.layerOf(ch)
}

func (b *builder) takeChanges(layerID string, ranInit bool, stubs []string) (*changes, error) {
	upper := ""
	if b.e.Rootfs.Mode == overlay.ModeKernel {
		if d, err := b.e.Store.DifferTarget(layerID); err == nil {
			upper = d
		}
	}
	if upper == "" {
		l, err := b.tarChanges(layerID, ranInit)
		return &changes{layer: l}, err
	}
	timing.Mark("build diff start")
	if ranInit {
		for _, a := range mountArtifacts {
			p := filepath.Join(upper, a)
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				if err := os.Remove(p); err != nil {
					return nil, err
				}
			}
		}
		// The artifacts' directory, and the mount points of RUN --mount, when the init made
		// them only to mount something.
		if err := b.removeStubs(layerID, upper, append([]string{"etc"}, stubs...)); err != nil {
			return nil, err
		}
	}
	if names, err := os.ReadDir(upper); err != nil || len(names) == 0 {
		return &changes{}, err
	}
	l, err := b.e.Store.Layer(layerID)
	if err != nil {
		return nil, err
	}
	ch := &changes{}
	// The layers under it, top down, as the driver gives them to its tar (getLowerDiffPaths).
	for id := l.Parent; id != ""; {
		dir, err := b.e.Store.DifferTarget(id)
		if err != nil {
			return nil, err
		}
		ch.lowers = append(ch.lowers, dir)
		pl, err := b.e.Store.Layer(id)
		if err != nil {
			return nil, err
		}
		id = pl.Parent
	}
	m := idtools.NewIDMappingsFromMaps(l.UIDMap, l.GIDMap)
	ch.uidMaps, ch.gidMaps = m.UIDs(), m.GIDs()
	if ch.staged, err = b.e.Store.PrepareStagedLayer(nil, &moveDiffer{from: upper}); err != nil {
		if ch.staged != nil && ch.staged.Target != "" {
			_ = b.e.Store.CleanupStagedLayer(ch.staged)
		}
		return nil, fmt.Errorf("stage the container's changes: %w", err)
	}
	timing.Mark("build diff staged")
	return ch, nil
}

// tarChanges is diff for fuse-overlayfs and copy modes.
func (b *builder) tarChanges(layerID string, ranInit bool) (*newLayer, error) {
	return b.e.tarChanges(b.tmp, layerID, ranInit)
}

// tarChanges reads a container layer's changes as the store's Diff gives them (whiteouts for
// what was deleted), without the init's artifacts when ranInit, into a file in tmp that
// PutLayer unpacks (commitImage); nil when there are none. It leaves the layer as it is, so
// `nook commit` uses it on containers that stay, running or not. The store's Diff holds the
// layer store's lock while it is read, so the tar is read to its end before the layer is
// stored.
func (e *Engine) tarChanges(tmp, layerID string, ranInit bool) (*newLayer, error) {
	none := archive.Uncompressed
	rc, err := e.Store.Diff("", layerID, &storage.DiffOptions{Compression: &none})
	if err != nil {
		return nil, fmt.Errorf("read the container's changes: %w", err)
	}
	// Closed once, on every path: closing it releases the layer store's lock.
	rc = &closeOnce{ReadCloser: rc}
	defer rc.Close()
	tarFile, err := os.CreateTemp(tmp, "layer-")
	if err != nil {
		return nil, err
	}
	defer tarFile.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tarFile, h)}
	tr := tar.NewReader(rc)
	tw := tar.NewWriter(cw)
	entries := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the container's changes: %w", err)
		}
		if ranInit && slices.Contains(mountArtifacts, strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")) {
			continue
		}
		entries++
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, fmt.Errorf("read the container's changes: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := rc.Close(); err != nil {
		return nil, fmt.Errorf("read the container's changes: %w", err)
	}
	timing.Mark("build diff read")
	if entries == 0 {
		return nil, nil
	}
	return &newLayer{digest: digest.NewDigest(digest.SHA256, h), size: cw.n, path: tarFile.Name()}, nil
}

// layerOf makes staged changes a layer: their tar, as the overlay driver's Diff makes it of a
// layer's directory (the same archive call with the same options, so the same bytes), is read
// once as it comes: tar-split indexes it, the digest and size are taken of the very same
// bytes, and the headers are read only for the owners the store records. The tar is not
// written anywhere (doing so cost more than running a small step's command).
func (b *builder) layerOf(ch *changes) (l *newLayer, err error) {
	if ch.staged == nil {
		return ch.layer, nil
	}
	defer func() {
		if l == nil {
			_ = b.e.Store.CleanupStagedLayer(ch.staged)
		}
	}()
	rc, err := archive.TarWithOptions(ch.staged.Target, &archive.TarOptions{
		Compression: archive.Uncompressed, UIDMaps: ch.uidMaps, GIDMaps: ch.gidMaps,
		WhiteoutFormat: archive.OverlayWhiteoutFormat, WhiteoutData: ch.lowers,
	})
	if err != nil {
		return nil, fmt.Errorf("read the container's changes: %w", err)
	}
	defer rc.Close()
	splitFile, err := os.CreateTemp(b.tmp, "tar-split-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if l == nil {
			splitFile.Close()
		}
	}()
	bw := bufio.NewWriterSize(splitFile, 64<<10)
	its, err := asm.NewInputTarStream(rc, tarstorage.NewJSONPacker(bw), tarstorage.NewDiscardFilePutter())
	if err != nil {
		return nil, fmt.Errorf("index the container's changes: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: h}
	tee := io.TeeReader(its, cw)
	tr := tar.NewReader(tee)
	entries := 0
	uids, gids := map[uint32]bool{}, map[uint32]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the container's changes: %w", err)
		}
		entries++
		uids[uint32(hdr.Uid)], gids[uint32(hdr.Gid)] = true, true
	}
	// The end-of-archive blocks and padding are part of the layer's bytes too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, fmt.Errorf("read the container's changes: %w", err)
	}
	if err := rc.Close(); err != nil {
		return nil, fmt.Errorf("read the container's changes: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("index the container's changes: %w", err)
	}
	if _, err := splitFile.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	timing.Mark("build diff read")
	if entries == 0 {
		return nil, nil
	}
	d := digest.NewDigest(digest.SHA256, h)
	out := ch.staged
	out.Size, out.UncompressedDigest, out.CompressedDigest, out.TarSplit = cw.n, d, d, splitFile
	out.UIDs, out.GIDs = sortedIDs(uids), sortedIDs(gids)
	return &newLayer{digest: d, size: cw.n, staged: out}, nil
}

func sortedIDs(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// moveDiffer is a drivers.Differ that fills the overlay driver's staging directory by moving
// the entries of a container's upper directory into it: the same file system, the same
// driver, so the same format (whiteouts, opaque directories, owners, xattrs).
type moveDiffer struct {
	from string
}

func (m *moveDiffer) ApplyDiff(dest string, _ *archive.TarOptions, _ *drivers.DifferOptions) (drivers.DriverWithDifferOutput, error) {
	entries, err := os.ReadDir(m.from)
	if err != nil {
		return drivers.DriverWithDifferOutput{}, err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(m.from, e.Name()), filepath.Join(dest, e.Name())); err != nil {
			return drivers.DriverWithDifferOutput{}, err
		}
	}
	// The rest of the output (digest, size, tar-split, owners) is layerOf's.
	return drivers.DriverWithDifferOutput{}, nil
}

func (m *moveDiffer) Close() error { return nil }

// closeOnce is a ReadCloser whose Close does its work only the first time.
type closeOnce struct {
	io.ReadCloser
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.ReadCloser.Close() })
	return c.err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// commitImage stores cfg as a new image on top of parent ("" for none), with layer added
// when it is not nil and marks (a build step's) in its record, and returns the new image's ID.
func (e *Engine) commitImage(ctx context.Context, parent string, cfg *build.Image, layer *newLayer, marks ...buildMark) (string, error) {
	var layers []imgspecv1.Descriptor
	top := ""
	if parent != "" {
		img, err := e.Store.Image(parent)
		if err != nil {
			return "", fmt.Errorf("read image %s: %w", shortID(parent), err)
		}
		top = img.TopLayer
		mb, err := e.Store.ImageBigData(parent, storage.ImageDigestBigDataKey)
		if err != nil {
			return "", fmt.Errorf("read manifest of %s: %w", shortID(parent), err)
		}
		m, err := manifest.FromBlob(mb, manifest.GuessMIMEType(mb))
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
	timing.Mark("build parent read")
	cfg.RootFS.Type = "layers"
	var added *storage.Layer
	if layer != nil {
		var err error
		if layer.staged != nil {
			// Into the layer made for it on top (the store then only moves the staged
			// files in), or a new one.
			id := layer.into
			if id == "" {
				id = buildRandomHex(32)
			}
			added, err = e.Store.ApplyStagedLayer(storage.ApplyStagedLayerOptions{
				ID: id, ParentLayer: top, DiffOutput: layer.staged,
			})
			if err != nil {
				_ = e.Store.CleanupStagedLayer(layer.staged)
				if layer.into != "" {
					_ = e.Store.DeleteLayer(layer.into)
				}
			} else {
				// The driver renamed the staged files away and dropped the lock file, but
				// leaves their now empty directory (staging/N) for its shutdown sweep, which
				// an engine that does not shut the store down never runs.
				_ = os.Remove(filepath.Dir(layer.staged.Target))
			}
			layer.staged, layer.into = nil, ""
		} else {
			var f *os.File
			if f, err = os.Open(layer.path); err != nil {
				return "", err
			}
			added, _, err = e.Store.PutLayer("", top, nil, "", false, &storage.LayerOptions{
				OriginalDigest: layer.digest, OriginalSize: &layer.size, UncompressedDigest: layer.digest,
			}, f)
			f.Close()
		}
		if err != nil {
			return "", fmt.Errorf("store the new layer: %w", err)
		}
		timing.Mark("build layer stored")
		top = added.ID
		layers = append(layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayer, Digest: layer.digest, Size: layer.size})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, layer.digest)
	}
	dropLayer := func() {
		if added != nil {
			_ = e.Store.DeleteLayer(added.ID)
		}
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		dropLayer()
		return "", err
	}
	configDigest := digest.FromBytes(config)
	if layers == nil {
		layers = []imgspecv1.Descriptor{}
	}
	mb, err := json.Marshal(imgspecv1.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: imgspecv1.MediaTypeImageManifest,
		Config:    imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: configDigest, Size: int64(len(config))},
		Layers:    layers,
	})
	if err != nil {
		dropLayer()
		return "", err
	}
	manifestDigest := digest.FromBytes(mb)
	created := time.Now().UTC()
	if cfg.Created != nil {
		created = *cfg.Created
	}
	id := configDigest.Encoded()
	meta, err := json.Marshal(imageMeta{Build: marks})
	if err != nil {
		dropLayer()
		return "", err
	}
	_, err = e.Store.CreateImage(id, nil, top, string(meta), &storage.ImageOptions{
		CreationDate: created,
		Digest:       manifestDigest,
		BigData: []storage.ImageBigDataOption{
			{Key: configDigest.String(), Data: config, Digest: configDigest},
			{Key: "manifest-" + manifestDigest.String(), Data: mb, Digest: manifestDigest},
			{Key: storage.ImageDigestBigDataKey, Data: mb, Digest: manifestDigest},
		},
	})
	timing.Mark("build image created")
	if errors.Is(err, storage.ErrDuplicateID) {
		// The same configuration was committed before (it names its layers by digest): that
		// image is this step's result, and the layer just made is not needed.
		dropLayer()
		if len(marks) > 0 {
			if err := e.addBuildMarks(id, marks); err != nil {
				return "", fmt.Errorf("record build cache for %s: %w", shortID(id), err)
			}
		}
		return id, nil
	}
	if err != nil {
		dropLayer()
		return "", fmt.Errorf("commit image: %w", err)
	}
	return id, nil
}

// buildLayerFlag marks the layers a build makes empty for a RUN step's changes (earlyLayer):
// until they are filled they have no diff digest, and the sweep of orphaned layers must still
// know them as image layers.
const buildLayerFlag = "nook-build-layer"

// earlyLayer is the empty layer that a RUN step's changes are moved into (kernel overlay
// only), made by the store while the step's command runs: creating it (directories, the
// layer record written three times) no longer waits for the command's end.
type earlyLayer struct {
	e       *Engine
	parent  string // the top layer of the step's image
	started atomic.Bool
	done    chan struct{}
	id      string // "" when it could not be made: the commit makes its layer then
	taken   bool
}

func (b *builder) earlyLayer(st *stageRun) (*earlyLayer, error) {
	if b.e.Rootfs.Mode != overlay.ModeKernel {
		return nil, nil
	}
	img, err := b.e.Store.Image(st.image)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", shortID(st.image), err)
	}
	return &earlyLayer{e: b.e, parent: img.TopLayer, done: make(chan struct{})}, nil
}

// start makes the layer in the background.
func (l *earlyLayer) start() {
	if l == nil || l.started.Swap(true) {
		return
	}
	go func() {
		defer close(l.done)
		nl, err := l.e.Store.CreateLayer(buildRandomHex(32), l.parent, nil, "", false,
			&storage.LayerOptions{Flags: map[string]any{buildLayerFlag: true}})
		if err == nil {
			l.id = nl.ID
		}
		timing.Mark("build early layer made")
	}()
}

// take returns the layer, which the caller then owns, or "" when there is none.
func (l *earlyLayer) take() string {
	if l == nil || !l.started.Load() {
		return ""
	}
	<-l.done
	l.taken = true
	return l.id
}

// drop deletes the layer unless it was taken.
func (l *earlyLayer) drop() {
	if l == nil || l.taken || !l.started.Load() {
		return
	}
	<-l.done
	if l.id != "" {
		_ = l.e.Store.DeleteLayer(l.id)
	}
}

// addBuildMarks adds marks to an existing image's record.
func (e *Engine) addBuildMarks(id string, marks []buildMark) error {
	img, err := e.Store.Image(id)
	if err != nil {
		return err
	}
	var meta imageMeta
	_ = json.Unmarshal([]byte(img.Metadata), &meta)
	for _, m := range marks {
		if !slices.ContainsFunc(meta.Build, func(x buildMark) bool { return x.Key == m.Key && x.Parent == m.Parent }) {
			meta.Build = append(meta.Build, m)
		}
	}
	// What else the record's metadata holds (containers/image keeps signature sizes there) stays.
	all := map[string]json.RawMessage{}
	_ = json.Unmarshal([]byte(img.Metadata), &all)
	b, err := json.Marshal(meta.Build)
	if err != nil {
		return err
	}
	all["nook-build"] = b
	if b, err = json.Marshal(all); err != nil {
		return err
	}
	return e.Store.SetMetadata(id, string(b))
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
