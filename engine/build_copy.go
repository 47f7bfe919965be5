//go:build !nook_lean

package engine

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"go.podman.io/storage/pkg/idtools"

	"github.com/nook-containers/nook/build"
)

// copyJob is a COPY or ADD whose sources are resolved (and, for the cache key, digested).
type copyJob struct {
	add      bool
	dest     string
	chown    string
	mode     *fs.FileMode
	sources  []copySource
	parents  bool          // COPY --parents: the sources keep their paths below the root or pivot
	dirs     []build.Entry // with --parents: the directories leading to the sources
	exclude  *build.Exclude
	digest   string
	cleanups []func()
}

type copySource struct {
	tree    *build.Tree
	src     build.Source
	archive bool // ADD of a local archive: unpacked into the destination
	doc     bool // a here-document, written to a file of the build
}

func (j *copyJob) close() {
	for i := len(j.cleanups) - 1; i >= 0; i-- {
		j.cleanups[i]()
	}
}

// prepareCopy resolves a COPY or ADD's sources: from the context (checked to stay inside it,
// .dockerignore applied), from another stage or image (--from), or downloaded (ADD URL).
func (b *builder) prepareCopy(ctx context.Context, st *stageRun, cmd instructions.Command) (*copyJob, error) {
	j := &copyJob{}
	var from string
	var srcs []string
	var chmod string
	var docs []instructions.SourceContent
	var excludes []string
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		from, srcs, j.dest, j.chown, chmod, docs = c.From, c.SourcePaths, c.DestPath, c.Chown, c.Chmod, c.SourceContents
		j.parents, excludes = c.Parents, c.ExcludePatterns
	case *instructions.AddCommand:
		j.add = true
		srcs, j.dest, j.chown, chmod, docs = c.SourcePaths, c.DestPath, c.Chown, c.Chmod, c.SourceContents
		excludes = c.ExcludePatterns
		if c.Checksum != "" {
			for _, s := range srcs {
				if !isURL(s) {
					return nil, errors.New("ADD --checksum is only for URL sources")
				}
			}
		}
	}
	var err error
	if j.mode, err = fileMode(chmod); err != nil {
		return nil, err
	}
	if j.exclude, err = build.NewExclude(excludes); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			j.close()
		}
	}()
	h := sha256.New()
	if from != "" {
		id, err := b.fromImage(from)
		if err != nil {
			return nil, err
		}
		root, err := b.e.Store.MountImage(id, nil, "")
		if err != nil {
			return nil, fmt.Errorf("mount image %s for --from: %w", shortID(id), err)
		}
		j.cleanups = append(j.cleanups, func() { _, _ = b.e.Store.UnmountImage(id, false) })
		tree := build.RootfsTree(root)
		for _, s := range srcs {
			found, err := j.resolve(tree, s)
			if err != nil {
				return nil, fmt.Errorf("--from=%s: %w", from, err)
			}
			for _, f := range found {
				j.sources = append(j.sources, copySource{tree: tree, src: f})
			}
		}
		if !j.selective() {
			// The image's ID stands for everything in it.
			fmt.Fprintf(h, "from %s\n", id)
		}
	} else {
		for _, s := range srcs {
			if j.add && isURL(s) {
				src, tree, err := b.download(ctx, s, cmd.(*instructions.AddCommand).Checksum)
				if err != nil {
					return nil, err
				}
				j.sources = append(j.sources, copySource{tree: tree, src: src})
				continue
			}
			if j.add && (strings.HasPrefix(s, "git@") || strings.HasSuffix(s, ".git")) {
				return nil, fmt.Errorf("ADD %s: git sources are not supported by nook build", s)
			}
			found, err := j.resolve(b.context, s)
			if err != nil {
				if errors.Is(err, build.ErrOutsideContext) {
					return nil, fmt.Errorf("forbidden path %v: the sources of COPY and ADD must be inside the build context %s", err, b.context.Root)
				}
				if errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("%v: no such file or directory in the build context %s", err, b.context.Root)
				}
				return nil, err
			}
			for _, f := range found {
				cs := copySource{tree: b.context, src: f}
				if j.add && f.Info.Mode().IsRegular() {
					cs.archive = isArchive(filepath.Join(b.context.Root, filepath.FromSlash(f.Rel)))
				}
				j.sources = append(j.sources, cs)
			}
		}
	}
	if len(docs) > 0 {
		// Here-documents (COPY <<EOF /file): each a file named after its delimiter, 0644.
		dir, err := os.MkdirTemp(b.tmp, "heredoc-")
		if err != nil {
			return nil, err
		}
		tree := build.RootfsTree(dir)
		for _, d := range docs {
			if strings.ContainsAny(d.Path, "/\x00") || d.Path == "." || d.Path == ".." {
				return nil, fmt.Errorf("here-document name %q cannot be a file name", d.Path)
			}
			p := filepath.Join(dir, d.Path)
			if err := os.WriteFile(p, []byte(d.Data), 0o644); err != nil {
				return nil, err
			}
			if err := os.Chmod(p, 0o644); err != nil { // whatever the umask
				return nil, err
			}
			found, err := tree.Resolve(d.Path)
			if err != nil {
				return nil, err
			}
			j.sources = append(j.sources, copySource{tree: tree, src: found[0], doc: true})
		}
	}
	if len(j.dirs) > 0 {
		d, err := build.Digest(j.dirs)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "parents %s\n", d)
	}
	for _, s := range j.sources {
		if s.tree == nil || from != "" && !s.doc && !j.selective() {
			continue
		}
		// What is copied is the key: files that --exclude or .dockerignore leave out are not.
		entries, err := s.tree.Entries(s.src, s.src.Name, j.exclude)
		if err != nil {
			return nil, err
		}
		d, err := build.Digest(entries)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s %t %s\n", s.src.Name, s.archive, d)
	}
	j.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	ok = true
	return j, nil
}

// resolve expands one source path in tree, with --parents' rules when it is given.
func (j *copyJob) resolve(tree *build.Tree, src string) ([]build.Source, error) {
	if !j.parents {
		return tree.Resolve(src)
	}
	dirs, found, err := tree.ResolveParents(src, j.exclude)
	if err != nil {
		return nil, err
	}
	j.dirs = mergeDirs(j.dirs, dirs)
	return found, nil
}

// selective tells whether the job copies a selection of a --from image that the image's ID
// does not stand for: then the selected files' digest is the cache key, as for the context,
// so that a change in an excluded file does not rebuild.
func (j *copyJob) selective() bool { return j.exclude != nil || j.parents }

// mergeDirs adds the directories of another --parents source, keeping names unique and
// parents first.
func mergeDirs(have, more []build.Entry) []build.Entry {
	seen := map[string]bool{}
	for _, d := range have {
		seen[d.Name] = true
	}
	for _, d := range more {
		if !seen[d.Name] {
			seen[d.Name] = true
			have = append(have, d)
		}
	}
	sort.SliceStable(have, func(a, b int) bool { return have[a].Name < have[b].Name })
	return have
}

// fromImage resolves COPY --from: an earlier stage by name or index, else an image.
func (b *builder) fromImage(from string) (string, error) {
	if i, ok := b.plan.StageIndex(from); ok && i < len(b.stages) {
		if b.stages[i] == "" {
			return "", fmt.Errorf("--from=%s: that stage is empty (FROM scratch with no files)", from)
		}
		return b.stages[i], nil
	}
	img, err := b.e.FindImage(from)
	if err != nil {
		return "", fmt.Errorf("--from=%s: no earlier stage has that name, and %v", from, err)
	}
	return img.ID, nil
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// isArchive tells whether ADD unpacks the file: a tar archive, plain or compressed.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := archive.DecompressStream(bufio.NewReader(f))
	if err != nil {
		return false
	}
	defer r.Close()
	hdr := make([]byte, 512)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return false
	}
	return string(hdr[257:262]) == "ustar" || tarChecksumOK(hdr)
}

// tarChecksumOK checks a pre-POSIX tar header's checksum.
func tarChecksumOK(hdr []byte) bool {
	want, err := strconv.ParseUint(strings.Trim(string(hdr[148:156]), " \x00"), 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, c := range hdr {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += uint64(c)
	}
	return sum == want && hdr[0] != 0
}

// download fetches an ADD URL into the build's temporary directory.
func (b *builder) download(ctx context.Context, raw, checksum string) (build.Source, *build.Tree, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return build.Source{}, nil, fmt.Errorf("ADD %s: %w", raw, err)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "index.html"
	}
	dir, err := os.MkdirTemp(b.tmp, "url-")
	if err != nil {
		return build.Source{}, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return build.Source{}, nil, err
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return build.Source{}, nil, fmt.Errorf("download %s: %w", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return build.Source{}, nil, fmt.Errorf("download %s: %s", raw, resp.Status)
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return build.Source{}, nil, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return build.Source{}, nil, fmt.Errorf("download %s: %w", raw, err)
	}
	if checksum != "" {
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != checksum {
			return build.Source{}, nil, fmt.Errorf("download %s: checksum %s does not match --checksum=%s", raw, got, checksum)
		}
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		_ = os.Chtimes(p, lm, lm)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return build.Source{}, nil, err
	}
	return build.Source{Rel: name, Name: name, Info: fi}, build.RootfsTree(dir), nil
}

// copy writes a COPY or ADD's sources into a container of the stage's image and commits
// the change as a layer.
func (b *builder) copy(ctx context.Context, st *stageRun, step *build.Step, j *copyJob, mark buildMark) (string, error) {
	name := "COPY"
	if j.add {
		name = "ADD"
	}
	w, err := b.newWorkContainer(st)
	if err != nil {
		return "", err
	}
	defer w.remove()
	uid, gid := 0, 0
	if j.chown != "" {
		if uid, gid, err = resolveChown(w.rootfs, j.chown); err != nil {
			return "", err
		}
	}
	destPath := st.Workdir(j.dest)
	// With --parents the destination is a directory, as in BuildKit (the sources are copied
	// as the contents of their root).
	dirSyntax := j.parents || strings.HasSuffix(j.dest, "/") || strings.HasSuffix(j.dest, "/.") || j.dest == "."
	if len(j.sources) > 1 && !dirSyntax {
		return "", fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", name)
	}
	destIsDir := dirSyntax
	if !destIsDir {
		if p, err := securejoin.SecureJoin(w.rootfs, destPath); err == nil {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				destIsDir = true
			}
		}
	}
	if len(j.sources) == 1 && (j.sources[0].src.Info.IsDir() || j.sources[0].archive) {
		destIsDir = true
	}
	opts := &archive.TarOptions{InUserNS: true, IgnoreChownErrors: b.e.IDMap.SingleID()}
	entries := append([]build.Entry(nil), j.dirs...)
	for _, s := range j.sources {
		if s.archive {
			if j.exclude.Match(s.src.Name) {
				continue
			}
			if _, err := mkdirInRoot(w.rootfs, destPath, 0, 0); err != nil {
				return "", err
			}
			hostDest, err := securejoin.SecureJoin(w.rootfs, destPath)
			if err != nil {
				return "", err
			}
			f, err := os.Open(filepath.Join(s.tree.Root, filepath.FromSlash(s.src.Rel)))
			if err != nil {
				return "", err
			}
			aopts := *opts
			if j.chown != "" {
				aopts.ChownOpts = &idtools.IDPair{UID: uid, GID: gid}
			}
			err = chrootarchive.UntarWithRoot(f, hostDest, &aopts, w.rootfs)
			f.Close()
			if err != nil {
				return "", fmt.Errorf("unpack %s into %s: %w", s.src.Name, destPath, err)
			}
			continue
		}
		entryName := s.src.Name
		switch {
		case j.parents:
		case s.src.Info.IsDir():
			entryName = ""
		case !destIsDir:
			entryName = path.Base(destPath)
		}
		es, err := s.tree.Entries(s.src, entryName, j.exclude)
		if err != nil {
			return "", err
		}
		entries = append(entries, es...)
	}
	if len(entries) > 0 {
		dir := destPath
		if !destIsDir {
			dir = path.Dir(destPath)
		}
		if _, err := mkdirInRoot(w.rootfs, dir, 0, 0); err != nil {
			return "", err
		}
		hostDir, err := securejoin.SecureJoin(w.rootfs, dir)
		if err != nil {
			return "", err
		}
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(build.WriteTar(pw, entries, build.CopyOptions{UID: uid, GID: gid, Mode: j.mode}))
		}()
		err = chrootarchive.UntarWithRoot(pr, hostDir, opts, w.rootfs)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			return "", fmt.Errorf("copy into %s: %w", dir, err)
		}
	}
	w.unmount()
	layer, err := b.diff(w.layer, false, nil)
	if err != nil {
		return "", err
	}
	next := cloneConfig(&st.Config)
	build.AddHistory(&next, step.Text, layer == nil, time.Now().UTC())
	id, err := b.e.commitImage(ctx, st.image, &next, layer, mark)
	if err != nil {
		b.drop(layer)
		return "", err
	}
	st.Config = next
	return id, nil
}

// mkdirInRoot creates dir (a path in the container) and its missing parents, 0755, owned by
// uid:gid, resolving symlinks inside rootfs. It reports whether it created anything.
func mkdirInRoot(rootfs, dir string, uid, gid int) (bool, error) {
	p, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return false, err
	}
	if fi, err := os.Stat(p); err == nil {
		if !fi.IsDir() {
			return false, fmt.Errorf("%s exists in the image and is not a directory", dir)
		}
		return false, nil
	}
	rel, err := filepath.Rel(rootfs, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return false, fmt.Errorf("%s resolves outside the container", dir)
	}
	cur := rootfs
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, c)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("create %s: %w", dir, err)
		} else if err == nil {
			_ = os.Chmod(cur, 0o755)
			_ = os.Lchown(cur, uid, gid)
		}
		if fi, err := os.Lstat(cur); err != nil || !fi.IsDir() {
			return false, fmt.Errorf("create %s: %s is not a directory", dir, cur)
		}
	}
	return true, nil
}

// resolveChown resolves --chown=USER[:GROUP] against the image's /etc/passwd and /etc/group;
// as in Docker, a user without a group gets the group of the same number.
func resolveChown(rootfs, spec string) (int, int, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, err := lookupID(rootfs, "/etc/passwd", u)
	if err != nil {
		return 0, 0, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	if !hasGroup {
		return uid, uid, nil
	}
	gid, err := lookupID(rootfs, "/etc/group", g)
	if err != nil {
		return 0, 0, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	return uid, gid, nil
}

func lookupID(rootfs, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid ID %d", n)
		}
		return n, nil
	}
	p, err := securejoin.SecureJoin(rootfs, file)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("no %s in the image to look up %q", file, name)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			if n, err := strconv.Atoi(f[2]); err == nil {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("%q is not in the image's %s", name, file)
}
