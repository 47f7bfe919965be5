//go:build !nook_lean

package engine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"go.podman.io/storage"

	"github.com/nook-containers/nook/netuser"
)

// DiskUsageRow is one row of `nook system df`: Docker's TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE.
type DiskUsageRow struct {
	Type              string
	Total, Active     int
	Size, Reclaimable int64
}

// DiskUsage is `nook system df`.
//   - Images: every image `images -a` lists; active, those a container uses; the size counts a
//     layer that images share once (each image alone is what `images` says); reclaimable is
//     what removing every unused image would free.
//   - Containers: every container; active, those running; sizes are their own layers' (`ps -s`'s
//     first number); reclaimable is the stopped ones'.
//   - Local Volumes: every volume; active, those a container uses; their directories' sizes.
//   - Build Cache: the directories of RUN --mount=type=cache, kept between builds; no build
//     uses them while none runs, so all of it is reclaimable (by removing build-cache/).
func (e *Engine) DiskUsage() ([]DiskUsageRow, error) {
	imgs, err := e.Store.Images()
	if err != nil {
		return nil, err
	}
	cs, err := e.Containers()
	if err != nil {
		return nil, err
	}
	usedImg := map[string]bool{}
	for _, c := range cs {
		usedImg[c.ImageID] = true
	}
	var active []storage.Image
	for _, img := range imgs {
		if usedImg[img.ID] {
			active = append(active, img)
		}
	}
	all := e.imagesSize(imgs)
	rows := []DiskUsageRow{{Type: "Images", Total: len(imgs), Active: len(active), Size: all, Reclaimable: all - e.imagesSize(active)}}

	ctr := DiskUsageRow{Type: "Containers", Total: len(cs)}
	for i := range cs {
		rw, _ := e.ContainerSize(&cs[i])
		rw = max(rw, 0)
		ctr.Size += rw
		if cs[i].Active() {
			ctr.Active++
		} else {
			ctr.Reclaimable += rw
		}
	}
	rows = append(rows, ctr)

	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	vol := DiskUsageRow{Type: "Local Volumes", Total: len(vs)}
	for _, v := range vs {
		n := dirSize(v.Mountpoint)
		vol.Size += n
		if len(e.volumeUsers(v.Name)) > 0 {
			vol.Active++
		} else {
			vol.Reclaimable += n
		}
	}
	rows = append(rows, vol)

	bc := DiskUsageRow{Type: "Build Cache"}
	ents, _ := os.ReadDir(e.cacheDir())
	for _, d := range ents {
		if d.IsDir() {
			bc.Total++
			bc.Size += dirSize(filepath.Join(e.cacheDir(), d.Name()))
		}
	}
	bc.Reclaimable = bc.Size
	return append(rows, bc), nil
}

// imagesSize is what imgs take together: each image's size (ImageSize: its layers and its
// manifests and configuration), with a layer that several of them share counted once.
func (e *Engine) imagesSize(imgs []storage.Image) int64 {
	refs := map[string]int{} // layer ID → how many of imgs have it
	var size int64
	for _, img := range imgs {
		n, err := e.Store.ImageSize(img.ID)
		if err != nil {
			continue
		}
		size += n
		for id := img.TopLayer; id != ""; {
			l, err := e.Store.Layer(id)
			if err != nil {
				break
			}
			refs[id]++
			id = l.Parent
		}
	}
	for id, k := range refs {
		if k < 2 {
			continue
		}
		if l, err := e.Store.Layer(id); err == nil {
			n := l.UncompressedSize
			if l.UncompressedDigest == "" || n < 0 {
				if n, err = e.Store.DiffSize("", id); err != nil {
					continue
				}
			}
			size -= int64(k-1) * n
		}
	}
	return size
}

// dirSize is the apparent size of the files under dir, a file with several links counted once.
func dirSize(dir string) int64 {
	var n int64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		n += fi.Size()
		return nil
	})
	return n
}

// SystemPruneReport is what `nook system prune` removed.
type SystemPruneReport struct {
	Containers []string
	Networks   []string
	Volumes    []string
	Images     *PruneReport
	Freed      int64 // bytes, all of it
}

// SystemPrune is `nook system prune`: the stopped containers (container prune), the user
// networks no remaining container uses (network prune), with volumes every volume no container
// uses (volume prune), and the dangling images, or with all every image no container uses
// (image prune), in that order, so that what the removed containers held goes too.
func (e *Engine) SystemPrune(all, volumes bool) (*SystemPruneReport, error) {
	rep := &SystemPruneReport{}
	var errs []error
	cs, err := e.Containers()
	if err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for i := range cs {
		if !cs[i].Active() {
			rw, _ := e.ContainerSize(&cs[i])
			sizes[cs[i].ID] = max(rw, 0)
		}
	}
	removed, err := e.Prune(nil)
	errs = append(errs, err)
	rep.Containers = removed
	for _, id := range removed {
		rep.Freed += sizes[id]
	}

	// A network is used while a container that remains is on it, running or not (one that its
	// restart policy starts again soon holds no lease in between).
	if cs, err = e.Containers(); err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	used := map[string]bool{}
	for _, c := range cs {
		if c.Net != nil && c.Net.Bridge != "" {
			used[c.Net.Bridge] = true
		}
	}
	nets, err := netuser.Prune(e.Paths.GraphRoot, e.Paths.RunRoot, func(name string) bool { return used[name] })
	errs = append(errs, err)
	rep.Networks = nets

	if volumes {
		vsize := map[string]int64{}
		if vs, err := e.Volumes(); err == nil {
			for _, v := range vs {
				vsize[v.Name] = dirSize(v.Mountpoint)
			}
		}
		gone, err := e.VolumePrune()
		errs = append(errs, err)
		rep.Volumes = gone
		for _, n := range gone {
			rep.Freed += vsize[n]
		}
	}

	ir, err := e.PruneImages(all)
	errs = append(errs, err)
	rep.Images = ir
	if ir != nil {
		rep.Freed += ir.Freed
	}
	return rep, errors.Join(errs...)
}
