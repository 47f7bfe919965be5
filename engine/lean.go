//go:build nook_lean

package engine

// The lean engine (bin/nook-engine-lean, build tag nook_lean) is this package without
// containers/image and buildkit: the container commands, whose every start would otherwise pay
// their package initialisation (docs/decisions.md, "The binaries"). Where one of its commands
// finds it needs them, it hands the command to the full engine before it has changed anything
// (needFull). These are all such places.

import (
	"context"
	"io"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"

	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/userns"
)

// needFull replaces this process with the full engine, bin/nook-engine, which runs the same
// command line again from the start (userns.ExecFull). It returns only when that fails.
func needFull(why string) error {
	timing.Mark("engine lean hands over: " + why)
	return userns.ExecFull()
}

// PullForRun: the image is not in the store; pulling it is the full engine's.
func (e *Engine) PullForRun(ctx context.Context, name string, stderr io.Writer) (*storage.Image, error) {
	return nil, needFull("pull " + name)
}

// PullAlways: `run --pull always` pulls, which is the full engine's.
func (e *Engine) PullAlways(ctx context.Context, name string, stderr io.Writer) (*storage.Image, error) {
	return nil, needFull("pull " + name + " (--pull always)")
}

// otherCandidates: the image is not in the store under Docker's name; what else a short name
// may be stored under is registries.conf's to say (shortnames.go). A full name has no other.
func (e *Engine) otherCandidates(name string) ([]reference.Named, error) {
	if short, _, _, _, err := shortName(name); err != nil || !short {
		return nil, nil
	}
	return nil, needFull("look up " + name + " by registries.conf")
}

// imageConfigOther: an image form storedImageConfig does not read.
func (e *Engine) imageConfigOther(ctx context.Context, img *storage.Image) (*imgspecv1.Image, error) {
	return nil, needFull("read the configuration of image " + shortID(img.ID))
}
