//go:build !nook_lean

package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/build"
)

// RUN --mount. A cache mount is a directory of its own under the graph root
// (build-cache/ID-DIGEST), kept between builds and never part of an image; `nook system
// prune`-like removal is deleting that directory. A bind mount shows a path of the context,
// or of an earlier stage or an image (mounted read-only by the store), read-only. A tmpfs is
// a tmpfs. A secret is a file of the build's temporary space holding the `--secret`'s value,
// bind-mounted read-only for the step and removed after it (or, with env=, a variable of the
// step's process only); its value is never part of the cache key, only its id and target. The init creates a missing mount point in the step's container; such stubs are
// taken out of the step's layer again (removeStubs), as BuildKit does.

// runMounts are a RUN step's mounts, checked, with what their content adds to the step's
// cache key.
type runMounts struct {
	list   []*instructions.Mount
	digest string
	// filtered are the bind mounts of a context directory in which .dockerignore hides
	// something (by index in list): they mount a copy of what it lets through.
	filtered map[int]build.Source
}

// cacheDir is where the cache mounts' directories are kept.
func (e *Engine) cacheDir() string { return filepath.Join(e.Paths.GraphRoot, "build-cache") }

func (b *builder) prepareRunMounts(st *stageRun, c *instructions.RunCommand) (*runMounts, error) {
	ms, err := build.RunMounts(c)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	h := sha256.New()
	rm := &runMounts{list: ms}
	for i, m := range ms {
		spec, _ := json.Marshal(m)
		fmt.Fprintf(h, "%s\n", spec)
		if m.Type != instructions.MountTypeBind {
			continue // a cache's or a tmpfs's content is not an input: BuildKit keeps them out too
		}
		if m.From != "" {
			id, err := b.fromImage(m.From)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(h, "from %s\n", id) // the image's ID stands for everything in it
			continue
		}
		src := m.Source
		if src == "" {
			src = "."
		}
		found, err := b.context.Resolve(src)
		if err != nil {
			if errors.Is(err, build.ErrOutsideContext) {
				return nil, fmt.Errorf("RUN --mount=type=bind,source=%s: the source must be inside the build context %s", src, b.context.Root)
			}
			return nil, fmt.Errorf("RUN --mount=type=bind,source=%s: %v", src, err)
		}
		if len(found) != 1 {
			return nil, fmt.Errorf("RUN --mount=type=bind,source=%s names %d paths: give one", src, len(found))
		}
		entries, err := b.context.Entries(found[0], found[0].Name, nil)
		if err != nil {
			return nil, err
		}
		hidden, err := b.context.HasIgnored(found[0])
		if err != nil {
			return nil, err
		}
		if hidden {
			if rm.filtered == nil {
				rm.filtered = map[int]build.Source{}
			}
			rm.filtered[i] = found[0]
		}
		d, err := build.Digest(entries)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "context %s %s\n", found[0].Rel, d)
	}
	rm.digest = "mounts:sha256:" + hex.EncodeToString(h.Sum(nil))
	return rm, nil
}

// activeMounts are the mounts of a step that is about to run: the flags for the container,
// the container paths they cover, and what to release afterwards.
type activeMounts struct {
	flags   []string
	targets []string
	env     []string // NAME=VALUE of secrets given as variables
	release []func()
}

func (a *activeMounts) close() {
	for i := len(a.release) - 1; i >= 0; i-- {
		a.release[i]()
	}
	a.release = nil
}

func (b *builder) activateMounts(st *stageRun, rm *runMounts) (*activeMounts, error) {
	a := &activeMounts{}
	if rm == nil {
		return a, nil
	}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	for i, m := range rm.list {
		if m.Type == instructions.MountTypeSecret {
			if err := b.secretMount(st, m, a); err != nil {
				return nil, err
			}
			continue
		}
		target := st.Workdir(m.Target)
		a.targets = append(a.targets, target)
		var flag string
		switch m.Type {
		case instructions.MountTypeTmpfs:
			flag = "type=tmpfs,target=" + target
			if m.SizeLimit > 0 {
				flag += ",tmpfs-size=" + strconv.FormatInt(m.SizeLimit, 10)
			}
		case instructions.MountTypeCache:
			dir, release, err := b.cacheMount(m)
			if err != nil {
				return nil, err
			}
			a.release = append(a.release, release)
			flag = "type=bind,source=" + dir + ",target=" + target
			if m.ReadOnly {
				flag += ",readonly"
			}
		case instructions.MountTypeBind:
			if src, ok := rm.filtered[i]; ok {
				dir, err := b.filteredContext(src)
				if err != nil {
					return nil, fmt.Errorf("RUN --mount=type=bind,source=%s: %w", m.Source, err)
				}
				a.release = append(a.release, func() { _ = os.RemoveAll(dir) })
				flag = "type=bind,source=" + dir + ",target=" + target + ",readonly"
				break
			}
			root := b.context.Root
			if m.From != "" {
				id, err := b.fromImage(m.From)
				if err != nil {
					return nil, err
				}
				if root, err = b.e.Store.MountImage(id, nil, ""); err != nil {
					return nil, fmt.Errorf("mount image %s for RUN --mount from=%s: %w", shortID(id), m.From, err)
				}
				a.release = append(a.release, func() { _, _ = b.e.Store.UnmountImage(id, false) })
			}
			src, err := securejoin.SecureJoin(root, m.Source)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(src); err != nil {
				return nil, fmt.Errorf("RUN --mount=type=bind,source=%s: %w", m.Source, errors.Unwrap(err))
			}
			flag = "type=bind,source=" + src + ",target=" + target + ",readonly"
		}
		if strings.Contains(flag, ",,") || strings.Count(flag, "target=") != 1 {
			return nil, fmt.Errorf("RUN --mount: a path with a comma cannot be mounted: %s", flag)
		}
		a.flags = append(a.flags, flag)
	}
	ok = true
	return a, nil
}

// secretMount adds a secret mount to a: a read-only file (mode 0400 and root's unless the
// mount says otherwise, as BuildKit's), or a variable. A secret the build was not given is
// left out, unless required.
func (b *builder) secretMount(st *stageRun, m *instructions.Mount, a *activeMounts) error {
	id := build.SecretID(m)
	sec, ok := b.flags.secrets[id]
	if !ok {
		if m.Required {
			return fmt.Errorf("RUN --mount=type=secret,id=%s: the secret is required: give it with nook build --secret id=%s,src=PATH", id, id)
		}
		return nil
	}
	value, err := sec.content()
	if err != nil {
		return fmt.Errorf("read secret %s: %w", id, err)
	}
	if m.Env != nil {
		name := *m.Env
		if name == "" {
			name = id
		}
		a.env = append(a.env, name+"="+string(value))
	}
	target := build.SecretTarget(m)
	if target == "" {
		return nil
	}
	target = st.Workdir(target)
	dir, err := os.MkdirTemp(b.tmp, "secret-")
	if err != nil {
		return err
	}
	a.release = append(a.release, func() { _ = os.RemoveAll(dir) })
	p := filepath.Join(dir, "value")
	if err := os.WriteFile(p, value, 0o400); err != nil {
		return err
	}
	mode, uid, gid := os.FileMode(0o400), 0, 0
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode) & fs.ModePerm
	}
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		return fmt.Errorf("secret %s: %w", id, err)
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	flag := "type=bind,source=" + p + ",target=" + target + ",readonly"
	if strings.Contains(flag, ",,") || strings.Count(flag, "target=") != 1 {
		return fmt.Errorf("RUN --mount: a path with a comma cannot be mounted: %s", flag)
	}
	a.targets = append(a.targets, target)
	a.flags = append(a.flags, flag)
	return nil
}

// filteredContext makes a directory that holds what .dockerignore lets through of src (a
// directory of the context), for a bind mount to show: hard links to the context's files
// (copies across file systems), so it costs a walk, not the files' size.
func (b *builder) filteredContext(src build.Source) (string, error) {
	entries, err := b.context.Entries(src, "", nil)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(b.tmp, "bind-")
	if err != nil {
		return "", err
	}
	if err := build.Materialize(dir, entries); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	if err := os.Chmod(dir, src.Info.Mode().Perm()); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// cacheMount makes (once) and locks the directory of a cache mount. sharing=shared (the
// default) lets concurrent builds use it together, locked makes them wait for each other,
// private gives a build that finds it in use a fresh directory for this step only.
func (b *builder) cacheMount(m *instructions.Mount) (string, func(), error) {
	id := build.CacheMountID(m)
	sum := sha256.Sum256([]byte(id))
	name := hex.EncodeToString(sum[:])[:24]
	if err := os.MkdirAll(b.e.cacheDir(), 0o700); err != nil {
		return "", nil, err
	}
	dir := filepath.Join(b.e.cacheDir(), name)
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", nil, err
	}
	how := unix.LOCK_SH
	switch m.CacheSharing {
	case instructions.MountSharingLocked:
		how = unix.LOCK_EX
	case instructions.MountSharingPrivate:
		how = unix.LOCK_EX | unix.LOCK_NB
	}
	if err := unix.Flock(int(lock.Fd()), how); err != nil {
		lock.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return "", nil, fmt.Errorf("lock cache %s: %w", id, err)
		}
		// private and in use: a directory of its own, gone after the step.
		tmp, err := os.MkdirTemp(b.tmp, "cache-")
		if err != nil {
			return "", nil, err
		}
		if err := setupCacheDir(tmp, m); err != nil {
			return "", nil, err
		}
		return tmp, func() {}, nil
	}
	release := func() { lock.Close() }
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		// Made under a temporary name and renamed: a build that dies half-way leaves no
		// directory with the wrong owner behind.
		tmp, err := os.MkdirTemp(b.e.cacheDir(), ".new-")
		if err == nil {
			if err = setupCacheDir(tmp, m); err == nil {
				_ = os.WriteFile(dir+".id", []byte(id+"\n"), 0o600)
				err = os.Rename(tmp, dir)
			}
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			_ = os.RemoveAll(tmp)
			release()
			return "", nil, fmt.Errorf("create cache %s: %w", id, err)
		}
		_ = os.RemoveAll(tmp) // when another build made it first
	}
	return dir, release, nil
}

func setupCacheDir(dir string, m *instructions.Mount) error {
	mode, uid, gid := os.FileMode(0o755), 0, 0
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode)
	}
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, mode&fs.ModePerm|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

// removeStubs takes out of a step container's upper directory what the init made only to
// mount something on: for each path (deepest first), an empty directory or empty file that
// the image did not have, or an empty directory the image has with the same mode and owner
// (copied up only because something was created in it).
func (b *builder) removeStubs(layerID, upper string, paths []string) error {
	var all []string
	for _, p := range paths {
		for q := path.Clean("/" + p); q != "/"; q = path.Dir(q) {
			all = append(all, strings.TrimPrefix(q, "/"))
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	slices.SortFunc(all, func(x, y string) int { return strings.Count(y, "/") - strings.Count(x, "/") })
	for _, rel := range all {
		p := filepath.Join(upper, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case fi.IsDir():
			if names, err := os.ReadDir(p); err != nil || len(names) > 0 || opaque(p) {
				continue
			}
		case fi.Mode().IsRegular():
			if fi.Size() != 0 {
				continue
			}
		default:
			continue
		}
		if lower := b.lowerStat(layerID, rel); lower != nil {
			a, l := fi.Sys().(*syscall.Stat_t), lower.Sys().(*syscall.Stat_t)
			if !fi.IsDir() || fi.Mode() != lower.Mode() || a.Uid != l.Uid || a.Gid != l.Gid {
				continue
			}
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

func opaque(dir string) bool {
	for _, x := range []string{"user.overlay.opaque", "trusted.overlay.opaque"} {
		if n, _ := unix.Lgetxattr(dir, x, nil); n > 0 {
			return true
		}
	}
	return false
}

// lowerStat finds rel in the layers under a container's layer, top down, as overlay would:
// nil when no layer has it, or a whiteout or an opaque directory hides it.
func (b *builder) lowerStat(layerID, rel string) os.FileInfo {
	l, err := b.e.Store.Layer(layerID)
	if err != nil {
		return nil
	}
	comps := strings.Split(rel, "/")
	for id := l.Parent; id != ""; {
		dir, err := b.e.Store.DifferTarget(id)
		if err != nil {
			return nil
		}
		hidden := false
		for i := range comps {
			p := filepath.Join(dir, filepath.Join(comps[:i+1]...))
			fi, err := os.Lstat(p)
			if err != nil {
				break
			}
			if fi.Mode()&fs.ModeCharDevice != 0 && fi.Sys().(*syscall.Stat_t).Rdev == 0 {
				return nil // a whiteout
			}
			if i == len(comps)-1 {
				return fi
			}
			hidden = hidden || opaque(p)
		}
		if hidden {
			return nil // an opaque directory of this layer hides the layers under it
		}
		pl, err := b.e.Store.Layer(id)
		if err != nil {
			return nil
		}
		id = pl.Parent
	}
	return nil
}
