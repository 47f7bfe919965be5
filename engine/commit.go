//go:build !nook_lean

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage/pkg/archive"

	"github.com/nook-containers/nook/build"
	"github.com/nook-containers/nook/cgroups"
)

// CommitOptions are `nook commit`'s settings.
type CommitOptions struct {
	Container string
	Name      string   // REPOSITORY[:TAG], optional
	Author    string   // -a
	Message   string   // -m
	Changes   []string // -c: Dockerfile instructions applied to the configuration
	Pause     bool     // -p: freeze a running container while its layer is read
}

// Commit makes an image of a container: its image plus one layer with the container's
// changes (the same commit as a `nook build` step's, commitImage), with the container's
// configuration (command, environment, user, working directory, labels, ports) and the
// --change instructions applied. It returns the new image's ID.
func (e *Engine) Commit(ctx context.Context, o CommitOptions) (string, error) {
	name := ""
	if o.Name != "" {
		ref, err := ParseName(o.Name)
		if err != nil {
			return "", err
		}
		name = ref.String()
	}
	// Every --change is checked before anything is read or written.
	var changes []instructions.Command
	for _, line := range o.Changes {
		c, err := build.ParseChange(line)
		if err != nil {
			return "", err
		}
		changes = append(changes, c)
	}
	c, err := e.FindContainer(o.Container)
	if err != nil {
		return "", err
	}
	cfg, err := e.readBuildConfig(ctx, c.ImageID)
	if err != nil {
		return "", err
	}
	containerConfig(cfg, c)
	st := build.StageState{Config: *cfg, Scope: build.NewArgs(nil, "linux", goarch(), '\\').NewScope()}
	for i, ch := range changes {
		if err := st.Scope.ExpandCommand(ch, st.Env()); err != nil {
			return "", fmt.Errorf("invalid --change %q: %w", o.Changes[i], err)
		}
		if _, err := st.ApplyConfig(ch); err != nil {
			return "", fmt.Errorf("invalid --change %q: %w", o.Changes[i], err)
		}
	}
	unlock, err := e.beginImageWrite()
	if err != nil {
		return "", err
	}
	defer unlock()
	tmp, err := os.MkdirTemp(e.tmpDir(), "commit-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	var layer *newLayer
	err = e.whilePaused(c, o.Pause, func() error {
		layer, err = e.tarChanges(tmp, c.layerID(e), true)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("commit container %s: %w", o.Container, err)
	}
	now := time.Now().UTC()
	next := st.Config
	next.Created, next.Author = &now, o.Author
	next.History = append(next.History, imgspecv1.History{
		Created: &now, CreatedBy: strings.Join(cfg.Config.Cmd, " "), Author: o.Author,
		Comment: o.Message, EmptyLayer: layer == nil,
	})
	id, err := e.commitImage(ctx, c.ImageID, &next, layer)
	if err != nil {
		return "", err
	}
	if name != "" {
		// The name moves from any image that had it, as with `nook tag`.
		if err := e.Store.AddNames(id, []string{name}); err != nil {
			return "", fmt.Errorf("tag image %s: %w", shortID(id), err)
		}
	}
	return id, nil
}

// layerID is the container's read-write layer.
func (c *Container) layerID(e *Engine) string {
	if ctr, err := e.Store.Container(c.ID); err == nil {
		return ctr.LayerID
	}
	return ""
}

// containerConfig puts what the container was created with over its image's configuration,
// as Docker's container config holds it: the command (an --entrypoint clears the image's
// CMD), the merged environment, the user, the working directory, the labels and the
// published ports as exposed ones.
func containerConfig(cfg *build.Image, c *Container) {
	cc := &cfg.Config
	if c.Env != nil {
		cc.Env = slices.Clone(c.Env)
	}
	if c.Labels != nil {
		cc.Labels = c.Labels
	}
	o := c.Options
	if o == nil {
		return // a record of an older nook: the image's configuration
	}
	if o.Entrypoint != nil {
		cc.Entrypoint, cc.Cmd = nil, nil
		if *o.Entrypoint != "" {
			cc.Entrypoint = []string{*o.Entrypoint}
		}
	}
	if len(o.Args) > 0 {
		cc.Cmd = slices.Clone(o.Args)
	}
	if o.User != "" {
		cc.User = o.User
	}
	if o.Workdir != "" {
		cc.WorkingDir = o.Workdir
	}
	for _, p := range o.Publish {
		ms, err := parsePublish(p)
		if err != nil {
			continue
		}
		for _, m := range ms {
			if cc.ExposedPorts == nil {
				cc.ExposedPorts = map[string]struct{}{}
			}
			cc.ExposedPorts[fmt.Sprintf("%d/%s", m.ContainerPort, m.Proto)] = struct{}{}
		}
	}
}

// whilePaused runs read with the container frozen when pause is set and it runs. Freezing
// needs the container's cgroup v2 (cgroup.freeze); without one nook cannot freeze it and says
// so rather than read a layer it was asked to hold still (docs/decisions.md, "Commit, diff
// and export").
func (e *Engine) whilePaused(c *Container, pause bool, read func() error) error {
	if !pause || !c.Active() {
		return read()
	}
	d := e.cgroups()
	if !d.Usable() {
		return errors.New("--pause: nook freezes a running container with its cgroup v2 freezer, and this host delegates no cgroup v2 to nook; commit without --pause to read the layer while the container runs")
	}
	cg := filepath.Join(cgroups.PathFor(d, c.ID), "cgroup.freeze")
	if err := os.WriteFile(cg, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("pause the container: %w", err)
	}
	defer os.WriteFile(cg, []byte("0"), 0o644)
	events := filepath.Join(filepath.Dir(cg), "cgroup.events")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(events)
		if err == nil && strings.Contains(string(b), "frozen 1") {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("pause the container: its cgroup did not freeze within 5 s")
		}
	}
	return read()
}

// Change is one line of `nook diff`.
type Change struct {
	Kind string // A, C or D, as Docker prints them
	Path string
}

// Diff lists what changed in a container's filesystem against its image (the store's
// Changes of its layer), sorted by path as Docker prints them. The mount points the init
// makes when the image lacks them (mountArtifacts) are not the container's changes: Docker
// keeps them in a layer of their own.
func (e *Engine) Diff(ref string) ([]Change, error) {
	c, err := e.FindContainer(ref)
	if err != nil {
		return nil, err
	}
	chs, err := e.Store.Changes("", c.layerID(e))
	if err != nil {
		return nil, fmt.Errorf("read the changes of container %s: %w", ref, err)
	}
	var out []Change
	artifactDirs := map[string]bool{} // directories changed by the init's mount points
	for _, ch := range chs {
		p := filepath.Clean("/" + ch.Path)
		if ch.Kind == archive.ChangeAdd && slices.Contains(mountArtifacts, strings.TrimPrefix(p, "/")) {
			artifactDirs[filepath.Dir(p)] = true
			continue
		}
		k := "C"
		switch ch.Kind {
		case archive.ChangeAdd:
			k = "A"
		case archive.ChangeDelete:
			k = "D"
		}
		out = append(out, Change{Kind: k, Path: p})
	}
	// Such a directory is the container's change only when something else below it changed.
	out = slices.DeleteFunc(out, func(c Change) bool {
		return c.Kind == "C" && artifactDirs[c.Path] && !slices.ContainsFunc(out, func(o Change) bool {
			return strings.HasPrefix(o.Path, c.Path+"/")
		})
	})
	sort.Slice(out, func(i, j int) bool { return walkOrder(out[i].Path, out[j].Path) })
	return out, nil
}

// walkOrder is the order of a depth-first walk that reads each directory sorted, the order
// Docker's overlay driver finds changes in: a directory's contents come right after it, so
// "/a/b" comes before "/a-b" (which a plain string sort puts first, '-' < '/').
func walkOrder(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

// Export writes a tar of the container's whole root filesystem (its merged view) to w. The
// engine sees the files with the container's owners (it runs in the same user namespace), so
// the tar holds the IDs the container sees, not the host's subordinate ones.
func (e *Engine) Export(ref string, w io.Writer) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	rootfs, err := e.Store.Mount(c.ID, "")
	if err != nil {
		return fmt.Errorf("mount container %s (%s): %w", ref, e.Rootfs.Mode, err)
	}
	defer e.Store.Unmount(c.ID, false)
	rc, err := archive.TarWithOptions(rootfs, &archive.TarOptions{Compression: archive.Uncompressed})
	if err != nil {
		return fmt.Errorf("export container %s: %w", ref, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("export container %s: %w", ref, err)
	}
	return nil
}
