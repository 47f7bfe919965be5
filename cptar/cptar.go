// Package cptar is `nook cp`'s tar stream: it writes a file or a tree and extracts one, every
// path confined to an os.Root, so neither a container's symlinks nor an archive's names can
// reach outside the directory they are meant for. It is linked into the lean nook-runtime.
package cptar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// Owners says who owns what Extract creates.
type Owners int

const (
	// OwnExtractor leaves every entry to whoever extracts it (a copy to the host).
	OwnExtractor Owners = iota
	// OwnRoot makes every entry uid 0, gid 0 (a copy into a container, as `docker cp`).
	OwnRoot
	// OwnArchive keeps the archive's uid and gid (`docker cp -a` into a container).
	OwnArchive
)

// Options are `nook cp`'s choices for one side of the copy.
type Options struct {
	// Name is the archive's top entry (Write); empty: src's base name. `cp -L` names the
	// target of a followed link after the link.
	Name string
	// IDs, when set, maps each entry's uid and gid before Write records them: a copy made
	// in nook's user namespace records the host's ids, as one made on the host does.
	IDs func(uid, gid int) (int, int)
	// Owners: who owns the extracted entries (Extract).
	Owners Owners
	// Into: dst must be an existing directory, and the archive is unpacked into it as it
	// is (`nook cp - CONTAINER:DIR`), whatever its top entry (Extract).
	Into bool
}

// Write writes src (a path inside root) as a tar stream whose top entry is src's base name
// (o.Name when set). It returns the archive's size in bytes.
func Write(w io.Writer, root *os.Root, src string, o Options) (int64, error) {
	src = strings.TrimPrefix(path.Clean("/"+src), "/")
	if src == "" {
		src = "."
	}
	top, err := root.Lstat(src)
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", src, stripRoot(err))
	}
	cw := &counter{w: w}
	w = cw
	tw := tar.NewWriter(w)
	base := path.Base(src)
	if o.Name != "" {
		base = o.Name
	}
	if base == "/" || base == "." {
		base = "."
	}
	visit := func(p string) error {
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = root.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // sockets and the like are skipped, as tar does
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, src), "/")
		if src == "." {
			rel = p
		}
		h.Name = path.Join(base, rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		if o.IDs != nil {
			h.Uid, h.Gid = o.IDs(h.Uid, h.Gid)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := root.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	}
	if top.IsDir() {
		err = fs.WalkDir(root.FS(), src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return visit(p)
		})
	} else {
		// A file or a link (itself, not what it names: cp without -L). WalkDir would
		// follow the link first.
		err = visit(src)
	}
	if err != nil {
		return cw.n, fmt.Errorf("copy %s: %w", src, stripRoot(err))
	}
	err = tw.Close()
	return cw.n, err
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Extract unpacks a stream made by Write at dst inside root, as `docker cp` does: into dst when
// it is an existing directory, else as dst itself (its parent must exist); with o.Into, into
// dst, which must be an existing directory. Every name is resolved inside root: a ".." or
// absolute name is refused, and os.Root refuses a symlink that leads out of it. o.Owners says
// who owns what is extracted.
func Extract(r io.Reader, root *os.Root, dst string, o Options) error {
	dst = path.Clean(strings.TrimPrefix(dst, "/"))
	if dst == "" || dst == "/" {
		dst = "."
	}
	into := false
	if fi, err := root.Stat(dst); err == nil && fi.IsDir() {
		into = true
	} else if err == nil {
		if o.Into {
			return fmt.Errorf("copy to %s: the destination must be a directory", "/"+strings.TrimPrefix(dst, "."))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("copy to %s: %w", dst, stripRoot(err))
	} else if o.Into {
		return fmt.Errorf("copy to %s: no such directory: the destination of an archive from standard input must be an existing directory", "/"+strings.TrimPrefix(dst, "."))
	} else if _, err := root.Stat(path.Dir(dst)); err != nil {
		return fmt.Errorf("copy to %s: the parent directory does not exist", dst)
	}
	tr := tar.NewReader(r)
	top := ""
	// where maps a name in the archive to its path in root: under dst, or, when dst is the new
	// name of the top entry, with the top entry replaced by dst.
	where := func(name string) string {
		if into || o.Into {
			return path.Join(dst, name)
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(name, top), "/")
		return path.Join(dst, rest)
	}
	chown := func(target string, h *tar.Header) error {
		uid, gid := 0, 0
		switch o.Owners {
		case OwnExtractor:
			return nil
		case OwnArchive:
			uid, gid = h.Uid, h.Gid
		}
		if err := root.Lchown(target, uid, gid); err != nil {
			if errors.Is(err, syscall.EINVAL) {
				return fmt.Errorf("chown %s to %d:%d: the container's user namespace does not map these ids: copy without -a", target, uid, gid)
			}
			return fmt.Errorf("chown %s: %w", target, stripRoot(err))
		}
		return nil
	}
	type dirTime struct {
		name string
		h    *tar.Header
	}
	var dirs []dirTime
	entries := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		entries++
		name := path.Clean(h.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q leaves the destination", h.Name)
		}
		if top == "" {
			top = strings.SplitN(name, "/", 2)[0]
		}
		target := where(name)
		mode := fs.FileMode(h.Mode) & fs.ModePerm
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(target, 0o700); err != nil {
				return fmt.Errorf("create %s: %w", target, stripRoot(err))
			}
			if err := chown(target, h); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, h})
			continue
		case tar.TypeReg:
			_ = removeNonDir(root, target)
			f, err := root.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("create %s: %w", target, stripRoot(err))
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", target, stripRoot(err))
			}
		case tar.TypeSymlink:
			_ = removeNonDir(root, target)
			if err := root.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("create symlink %s: %w", target, stripRoot(err))
			}
			if err := chown(target, h); err != nil {
				return err
			}
			continue
		case tar.TypeLink:
			ln := path.Clean(h.Linkname)
			if path.IsAbs(ln) || ln == ".." || strings.HasPrefix(ln, "../") {
				return fmt.Errorf("archive entry %q links outside the destination (%s)", h.Name, h.Linkname)
			}
			_ = removeNonDir(root, target)
			if err := root.Link(where(ln), target); err != nil {
				return fmt.Errorf("create link %s: %w", target, stripRoot(err))
			}
			continue
		default:
			continue // devices and FIFOs are not copied
		}
		if err := chown(target, h); err != nil {
			return err
		}
		if err := root.Chmod(target, mode|fs.FileMode(h.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return fmt.Errorf("chmod %s: %w", target, stripRoot(err))
		}
		_ = root.Chtimes(target, h.ModTime, h.ModTime)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		_ = root.Chmod(d.name, fs.FileMode(d.h.Mode)&fs.ModePerm)
		_ = root.Chtimes(d.name, d.h.ModTime, d.h.ModTime)
	}
	if entries == 0 {
		return errors.New("copy: the archive is empty")
	}
	return nil
}

// Resolve returns p, a path inside root, with its symlinks resolved as the container sees
// them: an absolute target starts again from root, and ".." stops at root, so the result is
// always inside it. The last element is followed only when followLast (`cp -L`, or a path
// that ends in "/"); an element that does not exist is kept as it is.
func Resolve(root *os.Root, p string, followLast bool) (string, error) {
	rest := strings.Split(p, "/")
	var done []string
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := path.Join(append(append([]string{}, done...), c)...)
		if !followLast && !hasMore(rest) {
			done = append(done, c)
			continue
		}
		fi, err := root.Lstat(cur)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("resolve %s: %w", p, syscall.ELOOP)
		}
		t, err := root.Readlink(cur)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", p, stripRoot(err))
		}
		if path.IsAbs(t) {
			done = nil
		}
		rest = append(strings.Split(t, "/"), rest...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// hasMore reports whether rest still names an element (not only "", ".").
func hasMore(rest []string) bool {
	for _, c := range rest {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

func removeNonDir(root *os.Root, p string) error {
	fi, err := root.Lstat(p)
	if err != nil || fi.IsDir() {
		return err
	}
	return root.Remove(p)
}

// stripRoot keeps an error's cause and path, without the *os.PathError's "openat" noise.
func stripRoot(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, syscall.ENOENT) {
			return fmt.Errorf("%s: no such file or directory", pe.Path)
		}
		if strings.Contains(pe.Err.Error(), "escapes") {
			return errors.New("a symbolic link on the way leads outside the destination")
		}
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

// Size is n bytes as `docker cp` reports it (go-units' HumanSize: decimal units, four
// significant digits): "20B", "1.234kB", "5.3MB".
func Size(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return strconv.FormatFloat(f, 'g', 4, 64) + units[i]
}
