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
	"strings"
	"syscall"
)

// Write writes src (a path inside root) as a tar stream whose top entry is src's base name.
func Write(w io.Writer, root *os.Root, src string) error {
	src = strings.TrimPrefix(path.Clean("/"+src), "/")
	if src == "" {
		src = "."
	}
	if _, err := root.Lstat(src); err != nil {
		return fmt.Errorf("copy %s: %w", src, stripRoot(err))
	}
	tw := tar.NewWriter(w)
	base := path.Base(src)
	if base == "/" || base == "." {
		base = "."
	}
	err := fs.WalkDir(root.FS(), src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
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
	})
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, stripRoot(err))
	}
	return tw.Close()
}

// Extract unpacks a stream made by Write at dst inside root, as `docker cp` does: into dst when
// it is an existing directory, else as dst itself (its parent must exist). Owners are not
// copied: as with `docker cp`, what is extracted belongs to whoever extracts it (the
// container's root going in, the user coming out).
func Extract(r io.Reader, root *os.Root, dst string) error {
	dst = path.Clean(strings.TrimPrefix(dst, "/"))
	if dst == "" {
		dst = "."
	}
	into := false
	if fi, err := root.Stat(dst); err == nil && fi.IsDir() {
		into = true
	} else if err == nil {
		into = false
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("copy to %s: %w", dst, stripRoot(err))
	} else if _, err := root.Stat(path.Dir(dst)); err != nil {
		return fmt.Errorf("copy to %s: the parent directory does not exist", dst)
	}
	tr := tar.NewReader(r)
	top := ""
	type dirTime struct {
		name string
		h    *tar.Header
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(h.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q leaves the destination", h.Name)
		}
		if top == "" {
			top = strings.SplitN(name, "/", 2)[0]
		}
		var target string
		if into {
			target = path.Join(dst, name)
		} else {
			rest := strings.TrimPrefix(strings.TrimPrefix(name, top), "/")
			target = path.Join(dst, rest)
		}
		mode := fs.FileMode(h.Mode) & fs.ModePerm
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(target, 0o700); err != nil {
				return fmt.Errorf("create %s: %w", target, stripRoot(err))
			}
			dirs = append(dirs, dirTime{target, h})
			continue
		case tar.TypeReg:
			_ = removeNonDir(root, target)
			f, err := root.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
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
			continue
		case tar.TypeLink:
			_ = removeNonDir(root, target)
			if err := root.Link(path.Join(dst, strings.TrimPrefix(path.Clean(h.Linkname), top)), target); err != nil {
				return fmt.Errorf("create link %s: %w", target, stripRoot(err))
			}
			continue
		default:
			continue // devices and FIFOs are not copied
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
	if top == "" {
		return errors.New("copy: the archive is empty")
	}
	return nil
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
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}
