package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/moby/patternmatcher"
)

// Exclude is COPY and ADD's --exclude: patterns with .dockerignore's syntax and matching
// (patternmatcher: `*` stays inside a component, `**` crosses them, `!` re-includes, a
// directory that matches takes its contents with it). A nil *Exclude excludes nothing.
type Exclude struct {
	pm *patternmatcher.PatternMatcher
}

// NewExclude compiles --exclude patterns; none gives nil.
func NewExclude(patterns []string) (*Exclude, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	clean := make([]string, 0, len(patterns))
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		p = strings.TrimLeft(filepath.ToSlash(p), "/") // relative to the source, as in .dockerignore
		if p == "" {
			return nil, errors.New("--exclude needs a pattern")
		}
		if neg {
			p = "!" + p
		}
		clean = append(clean, p)
	}
	pm, err := patternmatcher.New(clean)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	return &Exclude{pm: pm}, nil
}

// Match tells whether rel (a slash path below the source) or one of its parents is excluded.
func (x *Exclude) Match(rel string) bool {
	if x == nil || rel == "" || rel == "." {
		return false
	}
	m, err := x.pm.MatchesOrParentMatches(rel)
	return err == nil && m
}

func (x *Exclude) exclusions() bool { return x != nil && x.pm.Exclusions() }

// ResolveParents expands a source of COPY --parents as BuildKit does: the path is a pattern
// (patternmatcher's syntax, so `**` works) matched below the tree's root, or below the pivot
// when the path holds `/./` (`a/./b/*.txt` keeps `b/...`), and every match keeps its path
// below that point. It returns the directories leading to the matches (and the matched
// directories themselves), parents first, and the matches, whose Name and Match are the path
// kept. Paths below the pivot are walked without following symlinks; a symlink that matches
// is copied as a link. A path without wildcards must exist; a pattern must match something.
func (t *Tree) ResolveParents(src string, x *Exclude) ([]Entry, []Source, error) {
	if t.Context && escapes(src) {
		return nil, nil, fmt.Errorf("%s: %w", src, ErrOutsideContext)
	}
	pivot, pattern, ok := strings.Cut(filepath.ToSlash(src), "/./")
	if !ok {
		pivot, pattern = ".", src
	}
	pivotRel, err := t.resolve(splitClean(path.Clean("/" + pivot)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	if t.Context && t.Ignored(pivotRel) {
		return nil, nil, fmt.Errorf("%s: %w (excluded by .dockerignore)", src, fs.ErrNotExist)
	}
	if fi, err := os.Stat(t.abs(pivotRel)); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s: %s is not a directory", src, pivot)
	}
	comps := splitClean(path.Clean("/" + pattern))
	pat := strings.Join(comps, "/")
	var pm *patternmatcher.PatternMatcher
	if pat != "" {
		if pm, err = patternmatcher.New([]string{pat}); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src, err)
		}
	}
	deep := strings.Contains(pat, "**")
	// The components before the first wildcard are walked to directly, one at a time and
	// without following symlinks.
	fixed := 0
	for fixed < len(comps) && !hasMeta(comps[fixed]) {
		fixed++
	}
	if fixed == len(comps) && fixed > 0 {
		fixed-- // the last component is the match itself
	}
	start := ""
	for _, c := range comps[:fixed] {
		next := path.Join(start, c)
		fi, err := os.Lstat(t.abs(path.Join(pivotRel, next)))
		if err != nil || !fi.IsDir() {
			start = "\x00" // no match can be below it
			break
		}
		start = next
	}
	var found []Source
	exists := false
	var visit func(rel string, fi fs.FileInfo, depth int) error
	visit = func(rel string, fi fs.FileInfo, depth int) error {
		full := path.Join(pivotRel, rel)
		if rel != "" && t.Ignored(full) {
			if !fi.IsDir() || !t.ignore.Exclusions() {
				return nil
			}
		} else if rel != "" && (pm == nil || matches(pm, rel)) {
			exists = true
			if !x.Match(rel) {
				found = append(found, Source{Rel: full, Name: rel, Info: fi, Match: rel})
				return nil
			}
			if !fi.IsDir() || !x.exclusions() {
				return nil
			}
		}
		if !fi.IsDir() || !deep && depth >= len(comps) && pm != nil {
			return nil
		}
		ents, err := os.ReadDir(t.abs(full))
		if err != nil {
			return fmt.Errorf("read %s: %w", full, err)
		}
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				return err
			}
			if err := visit(path.Join(rel, e.Name()), info, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if start != "\x00" {
		fi, err := os.Lstat(t.abs(path.Join(pivotRel, start)))
		if err != nil {
			return nil, nil, err
		}
		if err := visit(start, fi, fixed); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src, err)
		}
	}
	if !exists {
		if !hasMeta(pivot) && !hasMeta(pat) {
			return nil, nil, fmt.Errorf("%s: %w", src, fs.ErrNotExist)
		}
		return nil, nil, fmt.Errorf("%s: no source files were specified (nothing matches)", src)
	}
	// The directories leading to each match, and matched directories, with their own
	// metadata.
	seen := map[string]bool{}
	var dirs []Entry
	for _, s := range found {
		var names []string
		for d := path.Dir(s.Name); d != "."; d = path.Dir(d) {
			names = append(names, d)
		}
		if s.Info.IsDir() {
			names = append(names, s.Name)
		}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			abs := t.abs(path.Join(pivotRel, n))
			fi, err := os.Lstat(abs)
			if err != nil {
				return nil, nil, err
			}
			dirs = append(dirs, Entry{Name: n, Abs: abs, Info: fi})
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Name < dirs[j].Name })
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	return dirs, found, nil
}

func matches(pm *patternmatcher.PatternMatcher, rel string) bool {
	m, err := pm.MatchesOrParentMatches(rel)
	return err == nil && m
}

// Materialize writes entries (as Entries lists them, named relative to dir) into dir, an
// empty directory: files are hard links when the file system allows, else copies; modes and
// modification times are kept. It is how a RUN bind mount of the context shows only what
// .dockerignore lets through.
func Materialize(dir string, entries []Entry) error {
	var dirs []Entry
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.Name))
		mode := e.Info.Mode()
		switch {
		case mode.IsDir():
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, e)
			continue
		case mode.IsRegular():
			if err := os.Link(e.Abs, p); err == nil {
				continue
			}
			if err := copyFile(e.Abs, p); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			if err := os.Symlink(e.Target, p); err != nil {
				return err
			}
			continue
		case mode&fs.ModeNamedPipe != 0:
			if err := syscall.Mkfifo(p, uint32(mode.Perm())); err != nil {
				return err
			}
		default:
			continue // sockets and devices are not part of a build context's copy
		}
		if err := os.Chmod(p, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		_ = os.Chtimes(p, e.Info.ModTime(), e.Info.ModTime())
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest last written, so times stay
		e := dirs[i]
		p := filepath.Join(dir, filepath.FromSlash(e.Name))
		if err := os.Chmod(p, e.Info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		_ = os.Chtimes(p, e.Info.ModTime(), e.Info.ModTime())
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
