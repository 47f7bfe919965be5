package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Tree is a directory that COPY reads from: the build context (Context true: a path that
// leaves it, also through a symlink, is an error, and .dockerignore applies) or another
// image's root filesystem (symlinks resolve inside it, as in a chroot).
type Tree struct {
	Root    string
	Context bool
	ignore  *patternmatcher.PatternMatcher
}

// ErrOutsideContext is returned for a source that is not inside the build context.
var ErrOutsideContext = errors.New("outside the build context")

// OpenContext opens a build context directory and reads its .dockerignore.
func OpenContext(dir string) (*Tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, errors.Unwrap(err))
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	t := &Tree{Root: abs, Context: true}
	f, err := os.Open(filepath.Join(abs, ".dockerignore"))
	if err == nil {
		defer f.Close()
		pats, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("read .dockerignore: %w", err)
		}
		if t.ignore, err = patternmatcher.New(pats); err != nil {
			return nil, fmt.Errorf(".dockerignore: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	return t, nil
}

// RootfsTree is an image's root filesystem as a COPY --from source.
func RootfsTree(root string) *Tree { return &Tree{Root: root} }

// Ignored tells whether .dockerignore excludes rel (a slash path relative to the root).
func (t *Tree) Ignored(rel string) bool {
	if t.ignore == nil || rel == "." || rel == "" {
		return false
	}
	m, err := t.ignore.MatchesOrParentMatches(rel)
	return err == nil && m
}

// Source is one matched source of a COPY or ADD.
type Source struct {
	Rel  string // slash path relative to the tree's root, symlinks resolved
	Name string // the name it is copied under (the last component of the path as written)
	Info fs.FileInfo
	// Match is the path COPY --exclude matches the source with ("": a file's Name, a
	// directory's contents relative to it); with --parents it is the path that is kept.
	Match string
}

// Resolve expands a COPY source (relative to the root, may hold wildcards) into the entries
// it names. A source that matches nothing is an error.
func (t *Tree) Resolve(src string) ([]Source, error) {
	clean := path.Clean("/" + filepath.ToSlash(src))
	if t.Context && escapes(src) {
		return nil, fmt.Errorf("%s: %w", src, ErrOutsideContext)
	}
	comps := splitClean(clean)
	var out []Source
	if !hasMeta(clean) {
		rel, err := t.resolve(comps)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if t.Ignored(rel) {
			return nil, fmt.Errorf("%s: %w (excluded by .dockerignore)", src, fs.ErrNotExist)
		}
		fi, err := os.Lstat(t.abs(rel))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, fs.ErrNotExist)
		}
		name := "."
		if len(comps) > 0 {
			name = comps[len(comps)-1]
		}
		return []Source{{Rel: rel, Name: name, Info: fi}}, nil
	}
	// Wildcards: match component by component.
	var walk func(prefix []string, rest []string) error
	walk = func(prefix []string, rest []string) error {
		if len(rest) == 0 {
			rel, err := t.resolve(prefix)
			if err != nil {
				return err
			}
			if t.Ignored(rel) {
				return nil
			}
			fi, err := os.Lstat(t.abs(rel))
			if err != nil {
				return nil
			}
			out = append(out, Source{Rel: rel, Name: prefix[len(prefix)-1], Info: fi})
			return nil
		}
		if !hasMeta(rest[0]) {
			return walk(append(prefix[:len(prefix):len(prefix)], rest[0]), rest[1:])
		}
		dir, err := t.resolve(prefix)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		ents, err := os.ReadDir(t.abs(dir))
		if err != nil {
			return nil
		}
		for _, e := range ents {
			if ok, _ := path.Match(rest[0], e.Name()); ok {
				if err := walk(append(prefix[:len(prefix):len(prefix)], e.Name()), rest[1:]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(nil, comps); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no source files were specified (nothing matches)", src)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

func (t *Tree) abs(rel string) string { return filepath.Join(t.Root, filepath.FromSlash(rel)) }

// resolve follows the symlinks of a path's components inside the tree. In the context a link
// that leads out of it is an error; in a root filesystem it resolves as in a chroot.
func (t *Tree) resolve(comps []string) (string, error) {
	var done []string
	rest := append([]string(nil), comps...)
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == ".." {
			if len(done) == 0 {
				if t.Context {
					return "", ErrOutsideContext
				}
				continue
			}
			done = done[:len(done)-1]
			continue
		}
		cur := append(done[:len(done):len(done)], c)
		p := t.abs(strings.Join(cur, "/"))
		fi, err := os.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return "", fs.ErrNotExist
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = cur
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("too many levels of symbolic links")
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			if t.Context {
				return "", fmt.Errorf("symlink /%s -> %s: %w", strings.Join(cur, "/"), target, ErrOutsideContext)
			}
			done = nil
		} else if t.Context && escapes(path.Join(strings.Join(done, "/"), target)) {
			return "", fmt.Errorf("symlink /%s -> %s: %w", strings.Join(cur, "/"), target, ErrOutsideContext)
		}
		rest = append(splitClean(target), rest...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return strings.Join(done, "/"), nil
}

// escapes tells whether a relative path climbs above its starting point.
func escapes(p string) bool {
	p = filepath.ToSlash(p)
	if path.IsAbs(p) {
		p = strings.TrimLeft(p, "/")
	}
	depth := 0
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func splitClean(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// CopyOptions say how the copied entries are written.
type CopyOptions struct {
	UID, GID int
	Mode     *fs.FileMode // --chmod: the permission bits of every entry copied
}

// Entry is one file, directory or symlink to copy, named relative to the destination.
type Entry struct {
	Name   string
	Abs    string
	Info   fs.FileInfo
	Target string // for symlinks
}

// Entries lists what copying src puts into a destination directory: a directory's
// contents (not the directory itself), or the file under name. Symlinks inside a copied
// directory are copied as links; .dockerignore applies, and so does x (COPY --exclude, may be
// nil), matched against each entry's path below the source: for a file its name, for a
// directory's contents their path inside it, with --parents the path that is kept (Match).
func (t *Tree) Entries(src Source, name string, x *Exclude) ([]Entry, error) {
	abs := t.abs(src.Rel)
	if src.Info != nil && src.Info.Mode()&fs.ModeSymlink != 0 {
		// Only COPY --parents gives a symlink as a source (Resolve resolves them): it is
		// copied as the link it is, as BuildKit does.
		if x.Match(src.Match) {
			return nil, nil
		}
		target, err := os.Readlink(abs)
		if err != nil {
			return nil, err
		}
		return []Entry{{Name: name, Abs: abs, Info: src.Info, Target: target}}, nil
	}
	fi, err := os.Stat(abs) // a top-level symlink was resolved by Resolve already
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		m := src.Match
		if m == "" {
			m = src.Name
		}
		if x.Match(m) {
			return nil, nil
		}
		return []Entry{{Name: name, Abs: abs, Info: fi}}, nil
	}
	if src.Match != "" && x.Match(src.Match) {
		return nil, nil
	}
	var out []Entry
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == abs {
			return nil
		}
		r, _ := filepath.Rel(abs, p)
		r = filepath.ToSlash(r)
		if t.Ignored(path.Join(src.Rel, r)) {
			if d.IsDir() && !t.ignore.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if x.Match(path.Join(src.Match, r)) {
			if d.IsDir() && !x.pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Name: path.Join(name, r), Abs: p, Info: info}
		if info.Mode()&fs.ModeSymlink != 0 {
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// HasIgnored tells whether .dockerignore hides anything inside src (a directory of the tree).
func (t *Tree) HasIgnored(src Source) (bool, error) {
	if t.ignore == nil || !src.Info.IsDir() {
		return false, nil
	}
	abs := t.abs(src.Rel)
	found := false
	err := filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(abs, p)
		if p != abs && t.Ignored(path.Join(src.Rel, filepath.ToSlash(r))) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found, err
}

// Digest is the cache's view of entries: names, modes, owners, link targets and contents,
// not modification times.
func Digest(entries []Entry) (string, error) {
	h := sha256.New()
	for _, e := range entries {
		if err := digestEntry(h, e); err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func digestEntry(h hash.Hash, e Entry) error {
	uid, gid := owner(e.Info)
	fmt.Fprintf(h, "%q %o %d:%d %q", e.Name, e.Info.Mode(), uid, gid, e.Target)
	if e.Info.Mode().IsRegular() {
		f, err := os.Open(e.Abs)
		if err != nil {
			return err
		}
		defer f.Close()
		fh := sha256.New()
		if _, err := io.Copy(fh, f); err != nil {
			return fmt.Errorf("read %s: %w", e.Abs, err)
		}
		fmt.Fprintf(h, " %x", fh.Sum(nil))
	}
	h.Write([]byte{'\n'})
	return nil
}

func owner(fi fs.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// WriteTar writes entries as a tar stream, owned by o.UID:o.GID and with o.Mode's
// permission bits when given, keeping modification times.
func WriteTar(w io.Writer, entries []Entry, o CopyOptions) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		mode := e.Info.Mode()
		var hdr *tar.Header
		switch {
		case mode.IsDir():
			hdr = &tar.Header{Typeflag: tar.TypeDir, Name: e.Name + "/"}
		case mode.IsRegular():
			hdr = &tar.Header{Typeflag: tar.TypeReg, Name: e.Name, Size: e.Info.Size()}
		case mode&fs.ModeSymlink != 0:
			hdr = &tar.Header{Typeflag: tar.TypeSymlink, Name: e.Name, Linkname: e.Target}
		case mode&fs.ModeNamedPipe != 0:
			hdr = &tar.Header{Typeflag: tar.TypeFifo, Name: e.Name}
		default:
			return fmt.Errorf("%s: cannot copy a %s", e.Abs, typeName(mode))
		}
		perm := int64(mode.Perm())
		if mode&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		if mode&fs.ModeSetgid != 0 {
			perm |= 0o2000
		}
		if mode&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		if o.Mode != nil && hdr.Typeflag != tar.TypeSymlink {
			perm = int64(*o.Mode & 0o7777)
		}
		hdr.Mode = perm
		hdr.Uid, hdr.Gid = o.UID, o.GID
		hdr.ModTime = e.Info.ModTime()
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(e.Abs)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", e.Abs, err)
			}
			if n != hdr.Size {
				return fmt.Errorf("%s changed size while it was copied", e.Abs)
			}
		}
	}
	return tw.Close()
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
