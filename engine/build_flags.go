//go:build !nook_lean

package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// This file reads the `nook build` flags that shape what a build produces and gives its RUN
// steps, as Docker's: --label, --iidfile, --add-host, --output and --secret. Each is checked
// before any step runs, so that a bad value fails with nothing built.

// buildFlags are BuildOptions' flags, read.
type buildFlags struct {
	labels  map[string]string
	output  *buildOutput
	secrets map[string]buildSecret
}

// buildOutput is where --output puts the final stage's files instead of an image.
type buildOutput struct {
	local bool   // type=local: a directory; otherwise type=tar: a file
	dest  string // the directory or file; "-" is standard output (tar)
}

// buildSecret is one --secret: the file its content is read from, or the variable.
type buildSecret struct {
	file string
	env  string
}

func parseBuildFlags(o BuildOptions) (*buildFlags, error) {
	f := &buildFlags{}
	for _, kv := range o.Labels {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" || strings.IndexFunc(k, unicode.IsSpace) >= 0 {
			return nil, flagError(kv, "label", "a label is KEY=VALUE with a KEY without spaces")
		}
		if f.labels == nil {
			f.labels = map[string]string{}
		}
		f.labels[k] = v
	}
	for _, h := range o.AddHosts {
		if _, _, err := parseExtraHost(h); err != nil {
			return nil, err
		}
	}
	if o.IIDFile != "" {
		if fi, err := os.Stat(filepath.Dir(o.IIDFile)); err != nil || !fi.IsDir() {
			return nil, flagError(o.IIDFile, "iidfile", "its directory %s does not exist", filepath.Dir(o.IIDFile))
		}
	}
	switch len(o.Outputs) {
	case 0:
	case 1:
		out, err := parseBuildOutput(o.Outputs[0])
		if err != nil {
			return nil, err
		}
		f.output = out
	default:
		return nil, errors.New("--output is given more than once: nook build exports to one place")
	}
	for _, s := range o.Secrets {
		id, sec, err := parseBuildSecret(s)
		if err != nil {
			return nil, err
		}
		if f.secrets == nil {
			f.secrets = map[string]buildSecret{}
		}
		f.secrets[id] = sec
	}
	return f, nil
}

// parseBuildOutput reads --output as Docker's: type=local,dest=DIR, type=tar,dest=FILE, or a
// bare DIR (local), or "-" (a tar on standard output).
func parseBuildOutput(s string) (*buildOutput, error) {
	bad := func(format string, args ...any) error { return flagError(s, "output", format, args...) }
	if s == "" {
		return nil, bad("give type=local,dest=DIR, type=tar,dest=FILE or a directory")
	}
	if !strings.Contains(s, "=") {
		if s == "-" {
			return &buildOutput{dest: "-"}, nil
		}
		return &buildOutput{local: true, dest: s}, nil
	}
	typ, dest := "", ""
	for _, field := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return nil, bad("%q is not KEY=VALUE", field)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "type":
			typ = v
		case "dest":
			dest = v
		default:
			return nil, bad("unknown key %q (nook build knows type and dest)", k)
		}
	}
	switch typ {
	case "local", "tar":
	case "":
		return nil, bad("give type=local or type=tar")
	default:
		return nil, bad("type %q is not supported: nook build exports type=local or type=tar (to store an image, leave --output out)", typ)
	}
	if dest == "" {
		if typ == "tar" {
			dest = "-"
		} else {
			return nil, bad("type=local needs dest=DIR")
		}
	}
	if typ == "local" && dest == "-" {
		return nil, bad("type=local needs a directory, not standard output (use type=tar)")
	}
	return &buildOutput{local: typ == "local", dest: dest}, nil
}

// parseBuildSecret reads --secret id=ID[,src=PATH|,env=VAR][,type=file|env], as BuildKit's
// client: without src or env, the variable named ID is used if it is set, else the file ID.
func parseBuildSecret(s string) (string, buildSecret, error) {
	bad := func(format string, args ...any) error { return flagError(s, "secret", format, args...) }
	var id, typ string
	var sec buildSecret
	for _, field := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return "", sec, bad("%q is not KEY=VALUE (give id=ID,src=PATH or id=ID,env=VAR)", field)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "id":
			id = v
		case "src", "source":
			sec.file = v
		case "env":
			sec.env = v
		case "type":
			if v != "file" && v != "env" {
				return "", sec, bad("type must be file or env")
			}
			typ = v
		default:
			return "", sec, bad("unknown key %q (give id=ID,src=PATH or id=ID,env=VAR)", k)
		}
	}
	if typ == "env" && sec.env == "" {
		sec.env, sec.file = sec.file, ""
	}
	if id == "" {
		id = filepath.Base(sec.file)
		if sec.file == "" {
			return "", sec, bad("give the secret an id (id=ID)")
		}
	}
	if sec.file == "" && sec.env == "" {
		if _, ok := os.LookupEnv(id); ok {
			sec.env = id
		} else {
			sec.file = id
		}
	}
	if sec.env != "" {
		if _, ok := os.LookupEnv(sec.env); !ok {
			return "", sec, bad("the environment variable %s is not set", sec.env)
		}
		return id, sec, nil
	}
	fi, err := os.Stat(sec.file)
	if err != nil {
		return "", sec, bad("cannot read the secret's source %s: %v", sec.file, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return "", sec, bad("the secret's source %s is not a file", sec.file)
	}
	return id, sec, nil
}

// content reads a secret's value.
func (s buildSecret) content() ([]byte, error) {
	if s.env != "" {
		return []byte(os.Getenv(s.env)), nil
	}
	return os.ReadFile(s.file)
}

// labelKeyPrefix starts the cache key of the configuration-only image that --label makes on top
// of a build's result.
const labelKeyPrefix = "labels:sha256:"

// applyLabels makes the image of id with labels added to its configuration, as BuildKit does
// for --label: in the final image's configuration only, with no history entry and nothing in
// the cache keys of the steps. The image is marked as a build result built on id (so id stays
// an intermediate image and a rebuild with the same labels finds it).
func (b *builder) applyLabels(ctx context.Context, id string, labels map[string]string) (string, error) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", id)
	var text []string
	for _, k := range keys {
		kv, _ := json.Marshal([2]string{k, labels[k]})
		fmt.Fprintf(h, "%s\n", kv)
		text = append(text, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	key := labelKeyPrefix + hex.EncodeToString(h.Sum(nil))
	if cached, ok := b.cache[key]; ok && !b.o.NoCache {
		if _, err := b.e.Store.Image(cached); err == nil {
			return cached, nil
		}
	}
	cfg, err := b.e.readBuildConfig(ctx, id)
	if err != nil {
		return "", err
	}
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	for _, k := range keys {
		cfg.Config.Labels[k] = labels[k]
	}
	mark := buildMark{Key: key, Instruction: "--label " + strings.Join(text, " "), File: b.plan.File, Parent: id}
	nid, err := b.e.commitImage(ctx, id, cfg, nil, mark)
	if err != nil {
		return "", fmt.Errorf("apply --label: %w", err)
	}
	b.cache[key] = nid
	b.made[nid] = true
	return nid, nil
}

// export writes the root filesystem of image id where --output says: the files into a
// directory (owned by the user who runs nook, as BuildKit's local exporter writes them), or a
// tar of them with the owners the container sees.
func (e *Engine) exportBuild(id string, out *buildOutput, stdout io.Writer) error {
	root, err := e.Store.MountImage(id, nil, "")
	if err != nil {
		return fmt.Errorf("mount image %s for --output: %w", shortID(id), err)
	}
	defer func() { _, _ = e.Store.UnmountImage(id, false) }()
	rc, err := archive.TarWithOptions(root, &archive.TarOptions{Compression: archive.Uncompressed})
	if err != nil {
		return fmt.Errorf("--output: read image %s: %w", shortID(id), err)
	}
	defer rc.Close()
	if out.local {
		if err := os.MkdirAll(out.dest, 0o755); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		if err := archive.Untar(rc, out.dest, &archive.TarOptions{NoLchown: true, InUserNS: true}); err != nil {
			return fmt.Errorf("--output: write the files into %s: %w", out.dest, err)
		}
		return nil
	}
	if out.dest == "-" {
		if _, err := io.Copy(stdout, rc); err != nil {
			return fmt.Errorf("--output: write the tar to standard output: %w", err)
		}
		return nil
	}
	tmp := out.dest + ".nook-tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out.dest)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("--output: write %s: %w", out.dest, err)
	}
	return nil
}

// cacheOnlyKey marks, in an image record's metadata, the result of a build that exported its
// files (--output) instead of storing an image: the image stays as the build's cache, as
// BuildKit's does, but `nook images` does not list it; a later build that ends with it
// clears the mark.
const cacheOnlyKey = "nook-build-cache-only"

func cacheOnly(img *storage.Image) bool {
	all := map[string]json.RawMessage{}
	_ = json.Unmarshal([]byte(img.Metadata), &all)
	return string(all[cacheOnlyKey]) == "true"
}

// setCacheOnly sets or clears the cache-only mark of an image, keeping the rest of its metadata.
func (e *Engine) setCacheOnly(id string, on bool) error {
	img, err := e.Store.Image(id)
	if err != nil {
		return err
	}
	if cacheOnly(img) == on {
		return nil
	}
	all := map[string]json.RawMessage{}
	_ = json.Unmarshal([]byte(img.Metadata), &all)
	if on {
		all[cacheOnlyKey] = json.RawMessage("true")
	} else {
		delete(all, cacheOnlyKey)
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return e.Store.SetMetadata(id, string(b))
}
