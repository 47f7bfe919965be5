//go:build !nook_lean

package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"

	"github.com/nook-containers/nook/build"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/overlay"
)

// BuildOptions are `nook build`'s settings.
type BuildOptions struct {
	ContextDir string
	Dockerfile string // a path; "" is Dockerfile in the context; "-" is standard input
	Stdin      io.Reader
	Tags       []string
	BuildArgs  []string // NAME=VALUE, or NAME to take the value from nook's environment
	Target     string
	NoCache    bool
	Quiet      bool
	Network    string   // for RUN, as `nook run --network`; "" is run's default
	Labels     []string // --label KEY=VALUE, on the final image's configuration only
	IIDFile    string   // --iidfile: where to write the image's ID
	Pull       bool     // --pull: pull every FROM image again, even when present
	AddHosts   []string // --add-host HOST:IP, for RUN steps, as `nook run --add-host`
	Outputs    []string // --output: export the final stage's files instead of storing an image
	Secrets    []string // --secret id=ID,src=PATH|env=VAR, for RUN --mount=type=secret
	Out, Err   io.Writer
}

// An image that is the result of a build step carries the step's cache key and the image it was
// built on in its record's metadata (buildMark). Images built before carry each as a big-data
// item named cacheDataPrefix+KEY, holding the rest; both are read.
const cacheDataPrefix = "nook-build-cache-"

// buildMark marks an image as the result of a build step. The parent lets `nook images` hide
// intermediate images, as Docker does.
type buildMark struct {
	Key         string `json:"key"`
	Instruction string `json:"instruction"`
	File        string `json:"file"`
	Line        int    `json:"line"`
	Parent      string `json:"parent"`
}

// imageMeta is what nook keeps in an image record's metadata.
type imageMeta struct {
	Build []buildMark `json:"nook-build,omitempty"`
}

// buildMarks returns an image's build marks, from its metadata and from big-data items; the
// parents of the latter are read only when withParents.
func (e *Engine) buildMarks(img *storage.Image, withParents bool) []buildMark {
	var meta imageMeta
	_ = json.Unmarshal([]byte(img.Metadata), &meta)
	marks := meta.Build
	for _, n := range img.BigDataNames {
		key, ok := strings.CutPrefix(n, cacheDataPrefix)
		if !ok {
			continue
		}
		m := buildMark{Key: key}
		if withParents {
			if b, err := e.Store.ImageBigData(img.ID, n); err == nil {
				_ = json.Unmarshal(b, &m)
				m.Key = key
			}
		}
		marks = append(marks, m)
	}
	return marks
}

// builder is one run of Build.
type builder struct {
	e       *Engine
	o       BuildOptions
	plan    *build.Plan
	args    *build.Args
	context *build.Tree
	cache   map[string]string // cache key -> image ID
	flags   *buildFlags
	made    map[string]bool // the images this build committed
	stages  []string        // result image of each stage built so far
	out     io.Writer       // step output; io.Discard with -q
	n, m    int             // step number, step count
	tmp     string
}

// stageRun is the state of the stage being built.
type stageRun struct {
	build.StageState
	stage *build.Stage
	image string // the image the stage has reached; "" while still empty (FROM scratch)
}

// Build builds an image from a Dockerfile and returns its ID.
func (e *Engine) Build(ctx context.Context, o BuildOptions) (string, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Err == nil {
		o.Err = io.Discard
	}
	flags, err := parseBuildFlags(o)
	if err != nil {
		return "", err
	}
	if o.IIDFile != "" {
		_ = os.Remove(o.IIDFile) // as Docker: a failed build leaves no stale ID behind
	}
	if flags.output != nil && len(o.Tags) > 0 {
		// As BuildKit: with --output the result is the exported files, not an image.
		fmt.Fprintln(o.Err, "WARNING: --tag is ignored with --output: the result is exported, not stored as an image")
		o.Tags = nil
	}
	var names []string
	for _, t := range o.Tags {
		ref, err := ParseName(t)
		if err != nil {
			return "", err
		}
		names = append(names, ref.String())
	}
	if o.ContextDir == "" {
		o.ContextDir = "."
	}
	file, data, err := readDockerfile(o)
	if err != nil {
		return "", err
	}
	plan, err := build.Parse(file, data, o.Target)
	if err != nil {
		return "", err
	}
	tree, err := build.OpenContext(o.ContextDir)
	if err != nil {
		return "", err
	}
	given := map[string]string{}
	for _, kv := range o.BuildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue // as Docker: a bare NAME that is not set is ignored
			}
		}
		given[k] = v
	}
	b := &builder{e: e, o: o, plan: plan, context: tree, out: o.Out, m: plan.StepCount(),
		flags: flags, made: map[string]bool{},
		args: build.NewArgs(given, "linux", goarch(), plan.EscapeToken)}
	if o.Quiet {
		b.out = io.Discard
	} else if flags.output != nil && !flags.output.local && flags.output.dest == "-" {
		b.out = o.Err // standard output is the tar's
	}
	// Hold the image-writes lock for the whole build: no other nook sweeps the layers this
	// build has committed but not yet given an image.
	unlock, err := e.beginImageWrite()
	if err != nil {
		return "", err
	}
	defer unlock()
	if b.tmp, err = os.MkdirTemp(e.tmpDir(), "build-"); err != nil {
		return "", err
	}
	defer os.RemoveAll(b.tmp)
	if err := b.loadCache(); err != nil {
		return "", err
	}
	for _, st := range plan.MetaArgs {
		if err := b.args.DeclareMeta(st.Cmd.(*instructions.ArgCommand)); err != nil {
			return "", plan.Errorf(st.Line, "%v", err)
		}
	}
	var id string
	for _, s := range plan.Stages {
		if id, err = b.buildStage(ctx, s); err != nil {
			return "", err
		}
		b.stages = append(b.stages, id)
	}
	if id == "" {
		// FROM scratch and nothing else: an empty image.
		cfg := &build.Image{}
		cfg.OS, cfg.Architecture = "linux", goarch()
		if id, err = e.commitImage(ctx, "", cfg, nil); err != nil {
			return "", err
		}
		b.made[id] = true
	}
	if flags.labels != nil {
		if id, err = b.applyLabels(ctx, id, flags.labels); err != nil {
			return "", err
		}
	}
	if left := b.args.Unconsumed(); len(left) > 0 {
		fmt.Fprintf(b.out, "[Warning] One or more build-args %v were not consumed\n", left)
	}
	if out := flags.output; out != nil {
		// The results this build made (each stage's, the final one) stay as its cache only.
		for _, r := range append(slices.Clone(b.stages), id) {
			if b.made[r] {
				if err := e.setCacheOnly(r, true); err != nil {
					return "", err
				}
			}
		}
		if err := e.exportBuild(id, out, o.Out); err != nil {
			return "", err
		}
		if err := writeIIDFile(o.IIDFile, id); err != nil {
			return "", err
		}
		switch {
		case !out.local && out.dest == "-":
		case o.Quiet:
			fmt.Fprintf(o.Out, "sha256:%s\n", id)
		default:
			fmt.Fprintf(o.Out, "Successfully exported %s to %s\n", shortID(id), out.dest)
		}
		return id, nil
	}
	for _, r := range append(slices.Clone(b.stages), id) {
		if r == "" {
			continue
		}
		if err := e.setCacheOnly(r, false); err != nil {
			return "", err
		}
	}
	if err := writeIIDFile(o.IIDFile, id); err != nil {
		return "", err
	}
	if len(names) > 0 {
		if err := e.Store.AddNames(id, names); err != nil {
			return "", fmt.Errorf("tag image %s: %w", shortID(id), err)
		}
	}
	if o.Quiet {
		fmt.Fprintf(o.Out, "sha256:%s\n", id)
		return id, nil
	}
	fmt.Fprintf(o.Out, "Successfully built %s\n", shortID(id))
	for _, n := range names {
		if ref, err := reference.ParseNormalizedNamed(n); err == nil {
			n = reference.FamiliarString(ref)
		}
		fmt.Fprintf(o.Out, "Successfully tagged %s\n", n)
	}
	return id, nil
}

// writeIIDFile writes --iidfile: the image's ID as Docker writes it (sha256:HEX, no newline).
func writeIIDFile(p, id string) error {
	if p == "" {
		return nil
	}
	if err := os.WriteFile(p, []byte("sha256:"+id), 0o644); err != nil {
		return fmt.Errorf("write --iidfile: %w", err)
	}
	return nil
}

func readDockerfile(o BuildOptions) (string, []byte, error) {
	if o.Dockerfile == "-" {
		data, err := io.ReadAll(o.Stdin)
		if err != nil {
			return "", nil, fmt.Errorf("read the Dockerfile from standard input: %w", err)
		}
		return "Dockerfile", data, nil
	}
	p := o.Dockerfile
	if p == "" {
		p = filepath.Join(o.ContextDir, "Dockerfile")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return "", nil, fmt.Errorf("read the Dockerfile %s: %w (give another with -f)", p, errors.Unwrap(err))
	}
	return p, data, nil
}

// loadCache indexes the images that are results of earlier build steps.
func (b *builder) loadCache() error {
	b.cache = map[string]string{}
	imgs, err := b.e.Store.Images()
	if err != nil {
		return err
	}
	for i := range imgs {
		for _, m := range b.e.buildMarks(&imgs[i], false) {
			b.cache[m.Key] = imgs[i].ID
		}
	}
	return nil
}

func (b *builder) header(text string) time.Time {
	b.n++
	timing.Mark("build step header")
	fmt.Fprintf(b.out, "STEP %d/%d: %s\n", b.n, b.m, text)
	return time.Now()
}

func (b *builder) done(id string, start time.Time) {
	timing.Mark("build step done")
	fmt.Fprintf(b.out, " ---> %s (%.2fs)\n", shortOrScratch(id), time.Since(start).Seconds())
}

func shortOrScratch(id string) string {
	if id == "" {
		return "scratch"
	}
	return shortID(id)
}

func (b *builder) buildStage(ctx context.Context, s *build.Stage) (string, error) {
	start := b.header(s.Text)
	st := &stageRun{stage: s}
	st.Scope = b.args.NewScope()
	base, err := b.args.ExpandMeta(s.Base)
	if err != nil {
		return "", b.plan.Errorf(s.Line, "FROM %s: %v", s.Base, err)
	}
	if s.Platform != "" {
		plat, err := b.args.ExpandMeta(s.Platform)
		if err != nil {
			return "", b.plan.Errorf(s.Line, "FROM --platform=%s: %v", s.Platform, err)
		}
		if host := "linux/" + goarch(); plat != host && plat != "linux" {
			return "", b.plan.Errorf(s.Line, "FROM --platform=%s: only this host's platform (%s) can be built", plat, host)
		}
	}
	switch {
	case strings.EqualFold(base, "scratch"):
		st.Config.OS, st.Config.Architecture = "linux", goarch()
	default:
		id := ""
		if i, ok := b.plan.StageIndex(base); ok && i < s.Index && b.plan.Stages[i].Name != "" {
			id = b.stages[i]
			if id == "" {
				cfg := &build.Image{}
				cfg.OS, cfg.Architecture = "linux", goarch()
				if id, err = b.e.commitImage(ctx, "", cfg, nil); err != nil {
					return "", err
				}
			}
		} else {
			var img *storage.Image
			if b.o.Pull {
				img, err = b.e.PullAlways(ctx, base, b.o.Err)
			} else {
				img, err = b.e.FindImage(base)
				if errors.Is(err, ErrImageUnknown) {
					img, err = b.e.PullForRun(ctx, base, b.o.Err)
				}
			}
			if err != nil {
				return "", b.plan.Errorf(s.Line, "FROM %s: %v", base, err)
			}
			id = img.ID
		}
		cfg, err := b.e.readBuildConfig(ctx, id)
		if err != nil {
			return "", b.plan.Errorf(s.Line, "FROM %s: %v", base, err)
		}
		st.Config = *cfg
		st.image = id
	}
	b.done(st.image, start)
	if triggers := st.Config.Config.OnBuild; len(triggers) > 0 {
		st.Config.Config.OnBuild = nil
		fmt.Fprintf(b.out, "# Executing %d build trigger(s)\n", len(triggers))
		for _, t := range triggers {
			step, err := build.ParseTrigger(t)
			if err != nil {
				return "", b.plan.Errorf(s.Line, "ONBUILD trigger of %s: %v", base, err)
			}
			step.Line = s.Line
			if err := b.runStep(ctx, st, step, true); err != nil {
				return "", err
			}
		}
	}
	for _, step := range s.Steps {
		if err := b.runStep(ctx, st, step, false); err != nil {
			return "", err
		}
	}
	return st.image, nil
}

// runStep runs one instruction, or takes its result from the cache.
func (b *builder) runStep(ctx context.Context, st *stageRun, step *build.Step, trigger bool) error {
	var start time.Time
	if trigger {
		fmt.Fprintf(b.out, "ONBUILD %s\n", step.Text)
		start = time.Now()
	} else {
		start = b.header(step.Text)
	}
	fail := func(err error) error {
		var be *build.Error
		if errors.As(err, &be) {
			return err
		}
		return b.plan.Errorf(step.Line, "%s: %v", strings.ToUpper(step.Cmd.Name()), err)
	}
	if err := st.Scope.ExpandCommand(step.Cmd, st.Env()); err != nil {
		return fail(err)
	}
	if c, ok := step.Cmd.(*instructions.ArgCommand); ok {
		if err := st.Scope.Declare(c, st.Env()); err != nil {
			return fail(err)
		}
		b.done(st.image, start)
		return nil
	}

	// What the cache key needs besides the parent and the instruction.
	var args []string
	var files string
	var cp *copyJob
	var mounts *runMounts
	switch c := step.Cmd.(type) {
	case *instructions.RunCommand:
		args = st.Scope.KV()
		m, err := b.prepareRunMounts(st, c)
		if err != nil {
			return fail(err)
		}
		if m != nil {
			mounts, files = m, m.digest
		}
	case *instructions.CopyCommand, *instructions.AddCommand:
		job, err := b.prepareCopy(ctx, st, c)
		if err != nil {
			return fail(err)
		}
		defer job.close()
		cp, files = job, job.digest
	}
	key, err := build.CacheKey(st.image, step.Cmd, args, files)
	if err != nil {
		return fail(err)
	}
	if id, ok := b.cache[key]; ok && !b.o.NoCache {
		cfg, err := b.e.readBuildConfig(ctx, id)
		if err == nil {
			fmt.Fprintln(b.out, " ---> Using cache")
			if _, ok := step.Cmd.(*instructions.CmdCommand); ok {
				st.CmdSet = true
			}
			st.Config, st.image = *cfg, id
			b.done(id, start)
			return nil
		}
	}

	// The step's mark is written with its image's record, in the same store transaction.
	mark := buildMark{Key: key, Instruction: step.Text, File: b.plan.File, Line: step.Line, Parent: st.image}
	var id string
	switch c := step.Cmd.(type) {
	case *instructions.RunCommand:
		id, err = b.run(ctx, st, step, c, mounts, mark)
	case *instructions.CopyCommand, *instructions.AddCommand:
		id, err = b.copy(ctx, st, step, cp, mark)
	case *instructions.WorkdirCommand:
		id, err = b.workdir(ctx, st, step, c, mark)
	default:
		next := st.StageState
		next.Config = cloneConfig(&st.Config)
		handled, aerr := next.ApplyConfig(step.Cmd)
		if aerr != nil {
			return fail(aerr)
		}
		if !handled {
			return fail(fmt.Errorf("instruction %s is not supported", strings.ToUpper(step.Cmd.Name())))
		}
		build.AddHistory(&next.Config, step.Text, true, time.Now().UTC())
		if id, err = b.e.commitImage(ctx, st.image, &next.Config, nil, mark); err == nil {
			st.StageState = next
		}
	}
	if err != nil {
		return fail(err)
	}
	st.image = id
	b.cache[key] = id
	b.made[id] = true
	b.done(id, start)
	return nil
}

func cloneConfig(c *build.Image) build.Image {
	var out build.Image
	raw, _ := json.Marshal(c)
	_ = json.Unmarshal(raw, &out)
	return out
}

// ensureImage makes sure the stage has an image to start a container from.
func (b *builder) ensureImage(ctx context.Context, st *stageRun) error {
	if st.image != "" {
		return nil
	}
	cfg := cloneConfig(&st.Config)
	id, err := b.e.commitImage(ctx, "", &cfg, nil)
	if err != nil {
		return err
	}
	st.image = id
	return nil
}

// run executes a RUN step in a container made exactly as `nook run` makes one.
func (b *builder) run(ctx context.Context, st *stageRun, step *build.Step, c *instructions.RunCommand, mounts *runMounts, mark buildMark) (string, error) {
	if err := b.ensureImage(ctx, st); err != nil {
		return "", err
	}
	am, err := b.activateMounts(st, mounts)
	if err != nil {
		return "", err
	}
	defer am.close()
	if name, data, ok := build.RunScript(c); ok {
		// RUN <<EOF with a #! line: the document runs as an executable file, bind-mounted
		// read-only where BuildKit puts it (under /dev, a tmpfs: never in the layer).
		dir, err := os.MkdirTemp(b.tmp, "script-")
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			return "", err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return "", err
		}
		am.flags = append(am.flags, "type=bind,source="+p+",target="+build.ScriptDir+name+",readonly")
	}
	argv := build.RunArgs(&st.Config, c)
	name := "nook-build-" + buildRandomHex(6)
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", err
	}
	tail := &tailBuffer{max: 20}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(io.MultiWriter(b.out, tail), pr)
	}()
	// While the command runs, the store makes the empty layer that its changes will fill: the
	// step's commit then only moves them in.
	early, err := b.earlyLayer(st)
	if err != nil {
		return "", err
	}
	defer early.drop()
	noEntrypoint := ""
	fmt.Fprintf(b.out, " ---> Running in %s\n", name)
	// The step's container is removed as soon as its changes are taken out of it, while they
	// are read and committed: its record and layer need not survive a crash (volatile: not
	// synced to disk), nor does it keep a log.
	var ch *changes
	var removing sync.WaitGroup
	defer removing.Wait()
	timing.Mark("build step start")
	code, runErr := b.e.Run(ctx, RunOptions{
		Image: st.image, Args: argv, Entrypoint: &noEntrypoint, Env: append(st.Scope.RunEnv(st.Env()), am.env...),
		Name: name, Network: b.o.Network, AddHosts: b.o.AddHosts, Stdout: pw, Stderr: pw, Remove: true, volatile: true,
		LimitOptions: LimitOptions{Mounts: am.flags}, removing: &removing, started: early.start,
		afterExit: func(id string, code int) error {
			if code != 0 {
				return nil
			}
			timing.Mark("build step exited")
			ctr, err := b.e.Store.Container(id)
			if err != nil {
				return fmt.Errorf("find the build container %s: %w", name, err)
			}
			// With the kernel's overlay the changes are moved out of the upper directory of a
			// mount that nothing uses any more, and that the container's removal unmounts in
			// the background; the other modes read the changes of an unmounted layer.
			if b.e.Rootfs.Mode != overlay.ModeKernel {
				if _, err := b.e.Store.Unmount(id, true); err != nil {
					return fmt.Errorf("unmount the build container %s: %w", name, err)
				}
				timing.Mark("build step unmounted")
			}
			ch, err = b.takeChanges(ctr.LayerID, true, am.targets)
			return err
		},
	})
	pw.Close()
	wg.Wait()
	pr.Close()
	var layer *newLayer
	if runErr == nil && ch != nil {
		layer, runErr = b.layerOf(ch)
		timing.Mark("build step diffed")
	} else if ch != nil && ch.staged != nil {
		_ = b.e.Store.CleanupStagedLayer(ch.staged)
	}
	if runErr != nil {
		b.drop(layer)
		return "", runErr
	}
	if code != 0 {
		b.showTail(step, tail)
		msg := fmt.Sprintf("RUN %s: the command returned exit status %d", strings.Join(argv, " "), code)
		if b.e.IDMap.SingleID() {
			msg += "; nook runs in single-ID mode (only root exists in the container), so programs that switch users or change file owners, such as apt-get, fail: ask an administrator for a subordinate ID range"
		}
		return "", b.plan.Errorf(step.Line, "%s", msg)
	}
	if layer != nil && layer.staged != nil {
		layer.into = early.take()
	}
	next := cloneConfig(&st.Config)
	build.AddHistory(&next, step.Text, layer == nil, time.Now().UTC())
	id, err := b.e.commitImage(ctx, st.image, &next, layer, mark)
	if err != nil {
		b.drop(layer)
		return "", err
	}
	timing.Mark("build step committed")
	st.Config = next
	return id, nil
}

func (b *builder) showTail(step *build.Step, t *tailBuffer) {
	lines := t.lines()
	if len(lines) == 0 {
		fmt.Fprintf(b.o.Err, "%s:%d: %s printed nothing\n", b.plan.File, step.Line, step.Text)
		return
	}
	fmt.Fprintf(b.o.Err, "%s:%d: %s failed; the last lines of its output:\n", b.plan.File, step.Line, step.Text)
	for _, l := range lines {
		fmt.Fprintf(b.o.Err, "  | %s\n", l)
	}
}

// tailBuffer keeps the last lines written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	partial []byte
	done    []string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.done = append(t.done, string(t.partial[:i]))
		t.partial = t.partial[i+1:]
		if len(t.done) > t.max {
			t.done = t.done[len(t.done)-t.max:]
		}
	}
	if len(t.partial) > 4096 {
		t.partial = t.partial[len(t.partial)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.done)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	if len(out) > t.max {
		out = out[len(out)-t.max:]
	}
	return out
}

func buildRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// workContainer is a container of the stage's image whose root filesystem the build writes
// into directly (COPY, ADD, WORKDIR).
type workContainer struct {
	e      *Engine
	id     string
	layer  string
	rootfs string
}

func (b *builder) newWorkContainer(st *stageRun) (*workContainer, error) {
	ctr, err := b.e.Store.CreateContainer("", []string{"nook-build-" + buildRandomHex(6)}, st.image, "", `{"state":"created","name":"build"}`, nil)
	if err != nil {
		return nil, fmt.Errorf("create build container: %w", err)
	}
	w := &workContainer{e: b.e, id: ctr.ID, layer: ctr.LayerID}
	if w.rootfs, err = b.e.Store.Mount(ctr.ID, ""); err != nil {
		w.remove()
		return nil, fmt.Errorf("mount build container (%s): %w", b.e.Rootfs.Mode, err)
	}
	return w, nil
}

func (w *workContainer) unmount() { _, _ = w.e.Store.Unmount(w.id, true) }

func (w *workContainer) remove() {
	w.unmount()
	_ = w.e.Store.DeleteContainer(w.id)
}

// workdir applies WORKDIR and creates the directory when the image lacks it.
func (b *builder) workdir(ctx context.Context, st *stageRun, step *build.Step, c *instructions.WorkdirCommand, mark buildMark) (string, error) {
	next := st.StageState
	next.Config = cloneConfig(&st.Config)
	if _, err := next.ApplyConfig(c); err != nil {
		return "", err
	}
	var layer *newLayer
	w, err := b.newWorkContainer(st)
	if err != nil {
		return "", err
	}
	defer w.remove()
	created, err := mkdirInRoot(w.rootfs, next.Config.Config.WorkingDir, 0, 0)
	if err != nil {
		return "", err
	}
	if created {
		w.unmount()
		if layer, err = b.diff(w.layer, false, nil); err != nil {
			return "", err
		}
	}
	build.AddHistory(&next.Config, step.Text, layer == nil, time.Now().UTC())
	id, err := b.e.commitImage(ctx, st.image, &next.Config, layer, mark)
	if err != nil {
		b.drop(layer)
		return "", err
	}
	st.StageState = next
	return id, nil
}

// fileMode parses --chmod.
func fileMode(s string) (*fs.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	var m uint32
	if _, err := fmt.Sscanf(s, "%o", &m); err != nil || m > 0o7777 || strings.Trim(s, "01234567") != "" {
		return nil, fmt.Errorf("invalid --chmod=%s: give an octal mode such as 0755", s)
	}
	fm := fs.FileMode(m)
	return &fm, nil
}
