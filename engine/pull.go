//go:build !nook_lean

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// PullOptions are `nook pull`'s settings.
type PullOptions struct {
	Name      string
	TLSVerify TLSVerify
	Progress  io.Writer // containers/image's report: bars on a terminal, lines otherwise; nil for none
}

// PullResult says what a pull did.
type PullResult struct {
	Ref      reference.Named // the normalised name that was pulled
	ImageID  string
	Digest   digest.Digest // of the manifest, as the registry serves it
	Updated  bool          // false when the local image was already this one
	Platform string
}

// Pull copies an image from a registry into the store. Layers are fetched in parallel and
// verified against their digests before they are committed; a layer left by a pull that
// failed or was killed is reused by the next pull of the same image, or swept once no image
// transfer is running. A short name is tried at each name registries.conf resolves it to, in
// order (shortnames.go).
func (e *Engine) Pull(ctx context.Context, o PullOptions) (*PullResult, error) {
	res, err := e.resolvePull(o.Name)
	if err != nil {
		return nil, err
	}
	if res.description != "" && o.Progress != nil {
		fmt.Fprintln(o.Progress, res.description)
	}
	var faults []string
	var last error
	for _, named := range res.candidates {
		if len(res.candidates) > 1 && o.Progress != nil {
			fmt.Fprintf(o.Progress, "Trying to pull %s...\n", named.String())
		}
		out, err := e.pullOne(ctx, named, o)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		last = err
		faults = append(faults, fmt.Sprintf("%s: %s", named.String(), registryFault(err)))
	}
	if len(res.candidates) == 1 {
		return nil, last
	}
	what := "none of the names it resolves to has it"
	if res.searched {
		what = "no unqualified-search registry has it"
	}
	return nil, fmt.Errorf("pull %s: %s (%s): check the name and the tag, or the registries in %s",
		o.Name, what, strings.Join(faults, "; "), res.origin)
}

// pullOne pulls one fully qualified name.
func (e *Engine) pullOne(ctx context.Context, named reference.Named, o PullOptions) (*PullResult, error) {
	res := &PullResult{Ref: named}
	var before string
	if img, err := e.Store.Image(named.String()); err == nil {
		before = img.ID
	}
	src, err := docker.NewReference(named)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", o.Name, err)
	}
	dest, err := istorage.Transport.NewStoreReference(e.Store, named, "")
	if err != nil {
		return nil, err
	}
	domain := reference.Domain(named)
	done, err := e.beginImageWrite()
	if err != nil {
		return nil, err
	}
	manifestBytes, err := e.transfer(ctx, dest, src, e.transferContext(), e.registryContext(named, o.TLSVerify), o.Progress)
	done()
	if err != nil {
		return nil, explainRegistryError("pull "+reference.FamiliarString(named), domain, err)
	}
	img, err := e.imageByManifest(manifestBytes)
	if err != nil {
		return nil, err
	}
	res.ImageID = img.ID
	res.Updated = before != img.ID
	if d, err := manifest.Digest(manifestBytes); err == nil {
		res.Digest = d
	}
	return res, nil
}

// PullAlways is `run --pull always`: the image is pulled whether the store has it or not, with
// the pull's progress on stderr, as docker run shows it.
func (e *Engine) PullAlways(ctx context.Context, name string, stderr io.Writer) (*storage.Image, error) {
	res, err := e.Pull(ctx, PullOptions{Name: name, Progress: stderr})
	if err != nil {
		return nil, err
	}
	return e.Store.Image(res.ImageID)
}

// PullForRun pulls an image that `run` (or a build's FROM) did not find. As docker run does,
// it says "Unable to find image 'NAME' locally" before the pull's progress; when the pull
// fails before any transfer starts, the one error line says both things instead.
func (e *Engine) PullForRun(ctx context.Context, name string, stderr io.Writer) (*storage.Image, error) {
	named, err := ParseReference(name)
	if err != nil {
		return nil, err
	}
	familiar := reference.FamiliarString(named)
	announce := fmt.Sprintf("Unable to find image '%s' locally\n", familiar)
	var w io.Writer = &announceWriter{w: stderr, first: announce}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		// On a terminal containers/image draws progress bars, but only on the *os.File
		// itself: say it now, as docker run does.
		fmt.Fprint(f, announce)
		w = f
	}
	res, err := e.Pull(ctx, PullOptions{Name: name, Progress: w})
	if err != nil {
		return nil, fmt.Errorf("%w: %s, and pulling it failed: %v", ErrImageUnknown, familiar, err)
	}
	return e.Store.Image(res.ImageID)
}

// announceWriter writes first before the first write, if there is one.
type announceWriter struct {
	w     io.Writer
	first string
	done  bool
}

func (a *announceWriter) Write(p []byte) (int, error) {
	if !a.done {
		a.done = true
		if _, err := io.WriteString(a.w, a.first); err != nil {
			return 0, err
		}
	}
	return a.w.Write(p)
}

// PushOptions are `nook push`'s settings.
type PushOptions struct {
	Image       string // a local image
	Destination string // where to push; "" means the image's own name
	TLSVerify   TLSVerify
	Progress    io.Writer
}

// Push copies a local image to a registry and returns the pushed manifest's digest and size.
func (e *Engine) Push(ctx context.Context, o PushOptions) (reference.Named, digest.Digest, int, error) {
	img, err := e.FindImage(o.Image)
	if err != nil {
		return nil, "", 0, err
	}
	destName := o.Destination
	if destName == "" {
		destName = o.Image
	}
	named, err := ParseReference(destName)
	if err != nil {
		return nil, "", 0, err
	}
	src, err := istorage.Transport.NewStoreReference(e.Store, nil, img.ID)
	if err != nil {
		return nil, "", 0, err
	}
	dest, err := docker.NewReference(named)
	if err != nil {
		return nil, "", 0, fmt.Errorf("push %s: %w", destName, err)
	}
	domain := reference.Domain(named)
	done, err := e.beginImageWrite()
	if err != nil {
		return nil, "", 0, err
	}
	m, err := e.transfer(ctx, dest, src, e.registryContext(named, o.TLSVerify), e.transferContext(), o.Progress)
	done()
	if err != nil {
		return nil, "", 0, explainRegistryError("push "+reference.FamiliarString(named), domain, err)
	}
	d, err := manifest.Digest(m)
	if err != nil {
		return nil, "", 0, err
	}
	return named, d, len(m), nil
}

// transfer copies an image; the caller holds the image-writes lock (beginImageWrite).
func (e *Engine) transfer(ctx context.Context, dest, src types.ImageReference, destCtx, srcCtx *types.SystemContext, progress io.Writer) ([]byte, error) {
	pc, err := policyContext()
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()
	if dest.Transport().Name() == istorage.Transport.Name() {
		e.nameLayersByChain()
	}
	return copy.Image(ctx, pc, dest, src, &copy.Options{
		ReportWriter:   progress,
		SourceCtx:      srcCtx,
		DestinationCtx: destCtx,
	})
}

// nameLayersByChain gives each layer whose ID is not its chain ID the chain ID as a name.
// containers/image looks a layer up by that ID when it pulls or loads one (its storage
// destination's layerID: the diff ID for a bottom layer, else sha256 of "PARENT+DIFFID", PARENT
// the store ID of the layer below), and the layers `nook build` and `nook commit` make have an
// ID chosen before their content is known. Without the name, a pull or load of an image built
// here, or of one built on it, copies those layers a second time, and for the image itself then
// fails: its ID (the configuration's digest) is taken, with the other top layer ("already
// exists, but uses a different top layer"). A name another layer holds as ID or name is left.
func (e *Engine) nameLayersByChain() {
	layers, err := e.Store.Layers()
	if err != nil {
		return
	}
	taken := map[string]bool{}
	for _, l := range layers {
		taken[l.ID] = true
		for _, n := range l.Names {
			taken[n] = true
		}
	}
	for _, l := range layers {
		if l.UncompressedDigest == "" {
			continue
		}
		if chain := chainID(l.Parent, l.UncompressedDigest); !taken[chain] {
			if e.Store.AddNames(l.ID, []string{chain}) == nil {
				taken[chain] = true
			}
		}
	}
}

// chainID is the ID containers/image gives a layer with this parent (a store ID, "" for none)
// and this diff ID.
func chainID(parent string, diffID digest.Digest) string {
	if parent == "" {
		return diffID.Encoded()
	}
	return digest.Canonical.FromString(parent + "+" + diffID.Encoded()).Encoded()
}

// beginImageWrite takes the image-writes lock shared, for one pull, push, load, save or import
// (they run in parallel), and makes the temporary directory. Before, when no other one runs,
// it sweeps what a killed one may have left; the returned function releases the lock and
// sweeps again, so that what a failed transfer committed does not stay.
func (e *Engine) beginImageWrite() (func(), error) {
	e.sweepIfIdle()
	f, err := os.OpenFile(e.imageWritesLock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := os.MkdirAll(e.tmpDir(), 0o700); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		f.Close()
		e.sweepIfIdle()
	}, nil
}

func (e *Engine) imageWritesLock() string {
	return filepath.Join(e.Paths.GraphRoot, "nook-image-writes.lock")
}

// sweepIfIdle removes, when no image transfer holds the lock, the temporary files and the
// layers that a failed or killed transfer left: layers with image content (a diff digest)
// that no image and no container uses. containers/storage itself deletes layers that were
// being written when a process died ("incomplete"); complete layers of an image that was never
// committed are nook's to remove.
func (e *Engine) sweepIfIdle() {
	f, err := os.OpenFile(e.imageWritesLock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // a transfer is running: its layers are not orphans
	}
	_ = os.RemoveAll(e.tmpDir())
	_, _ = e.sweepOrphanLayers()
}

// sweepOrphanLayers deletes the orphaned image layers and returns how many bytes they held.
func (e *Engine) sweepOrphanLayers() (int64, error) {
	layers, err := e.Store.Layers()
	if err != nil {
		return 0, err
	}
	images, err := e.Store.Images()
	if err != nil {
		return 0, err
	}
	ctrs, err := e.Store.Containers()
	if err != nil {
		return 0, err
	}
	var freed int64
	var errs []error
	for _, id := range orphanLayers(layers, images, ctrs) {
		l, _ := e.Store.Layer(id)
		if err := e.Store.DeleteLayer(id); err != nil {
			errs = append(errs, err)
			continue
		}
		if l != nil {
			freed += l.UncompressedSize
		}
	}
	return freed, errors.Join(errs...)
}

// orphanLayers lists the image layers (those with a diff digest) that no image and no
// container reaches, children before parents so that they can be deleted in order.
// A container's own read-write layer has no diff digest and is never listed.
func orphanLayers(layers []storage.Layer, images []storage.Image, ctrs []storage.Container) []string {
	byID := map[string]*storage.Layer{}
	for i := range layers {
		byID[layers[i].ID] = &layers[i]
	}
	used := map[string]bool{}
	mark := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			l, ok := byID[id]
			if !ok {
				return
			}
			id = l.Parent
		}
	}
	for _, img := range images {
		mark(img.TopLayer)
		for _, m := range img.MappedTopLayers {
			mark(m)
		}
	}
	for _, c := range ctrs {
		mark(c.LayerID)
	}
	// A layer that is not an image layer (a container's, made by another tool) keeps its
	// ancestors too; the empty layer a build made for a step's changes (buildLayerFlag) is an
	// image layer.
	for _, l := range layers {
		if l.UncompressedDigest == "" && l.Flags[buildLayerFlag] == nil {
			mark(l.ID)
		}
	}
	depth := func(l *storage.Layer) int {
		n := 0
		for p := l.Parent; p != "" && n < len(layers); n++ {
			pl, ok := byID[p]
			if !ok {
				break
			}
			p = pl.Parent
		}
		return n
	}
	var out []*storage.Layer
	for i := range layers {
		if !used[layers[i].ID] {
			out = append(out, &layers[i])
		}
	}
	// Deepest first: a child is always deeper than its parent.
	ids := make([]string, 0, len(out))
	for len(out) > 0 {
		best := 0
		for i := range out {
			if depth(out[i]) > depth(out[best]) || (depth(out[i]) == depth(out[best]) && out[i].ID < out[best].ID) {
				best = i
			}
		}
		ids = append(ids, out[best].ID)
		out = append(out[:best], out[best+1:]...)
	}
	return ids
}
