package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/lockfile"

	"github.com/nook-containers/nook/internal/paths"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/overlay"
	"github.com/nook-containers/nook/userns"
)

// Options are the global settings of one nook invocation.
type Options struct {
	Paths      Paths
	RootfsMode overlay.Mode
}

// Engine is an open store plus what nook decided about this host.
type Engine struct {
	Paths   Paths
	Store   storage.Store
	Rootfs  overlay.Choice
	Driver  string
	IDMap   IDMapInfo
	runtime string // path of nook-runtime
}

// IDMapInfo is the user namespace mapping the engine runs under, as the CLI resolved it.
type IDMapInfo struct {
	Mode, UIDMap, GIDMap, Source, Warning string
}

// SingleID reports whether only the user's own ID is mapped.
func (i IDMapInfo) SingleID() bool { return i.Mode == "single-id" }

func idmapFromEnv() IDMapInfo {
	f := strings.SplitN(os.Getenv(userns.PlanEnv), ";", 5)
	for len(f) < 5 {
		f = append(f, "")
	}
	return IDMapInfo{Mode: f[0], UIDMap: f[1], GIDMap: f[2], Source: f[3], Warning: f[4]}
}

// Open opens the store. It must run inside nook's user namespace.
func Open(o Options) (*Engine, error) {
	if !userns.InEngine() {
		return nil, fmt.Errorf("internal error: the store is opened outside nook's user namespace")
	}
	userns.ClaimControl() // before any helper is started: none must inherit the CLI's pipe
	timing.Mark("engine open")
	e := &Engine{Paths: o.Paths, IDMap: idmapFromEnv()}
	rt, err := userns.RuntimePath()
	if err != nil {
		return nil, err
	}
	e.runtime = rt
	choice, err := overlay.Choose(o.RootfsMode, o.Paths.RunRoot)
	if err != nil {
		return nil, err
	}
	e.Rootfs = choice
	driver, dopts, err := overlay.StorageDriver(choice.Mode, e.IDMap.SingleID())
	if err != nil {
		return nil, err
	}
	e.Driver = driver
	store, err := storage.GetStore(storage.StoreOptions{
		RunRoot:            filepath.Join(o.Paths.RunRoot, "storage"),
		GraphRoot:          o.Paths.GraphRoot,
		GraphDriverName:    driver,
		GraphDriverOptions: dopts,
	})
	if err != nil {
		return nil, fmt.Errorf("open storage in %s (%s): %w", o.Paths.GraphRoot, choice.Mode, err)
	}
	e.Store = store
	timing.Mark("engine store open")
	removeStaleMountTemps(filepath.Join(o.Paths.RunRoot, "storage", driver+"-layers"))
	return e, nil
}

// removeStaleMountTemps deletes the temporary files containers/storage leaves next to
// mountpoints.json when a nook is killed in the middle of rewriting it. It holds the store's
// own lock for that file, so no write in progress is touched.
func removeStaleMountTemps(dir string) {
	temps, _ := filepath.Glob(filepath.Join(dir, ".tmp-mountpoints.json*"))
	if len(temps) == 0 {
		return
	}
	lock, err := lockfile.GetLockFile(filepath.Join(dir, "mountpoints.lock"))
	if err != nil {
		return
	}
	lock.Lock()
	defer lock.Unlock()
	for _, t := range temps {
		_ = os.Remove(t)
	}
}

// Close ends the engine's use of the store. It does not call the store's Shutdown: that
// unmounts the graph driver's home, which lives in this engine's own mount namespace and goes
// with it, and records a write on the store's lock, which makes every other nook reload all of
// the store's records as if this one had changed them. Every change is on disk already.
func (e *Engine) Close() {}

// Paths are where nook keeps its data (internal/paths, shared with the lean CLI).
type Paths = paths.Paths

// DefaultPaths applies the defaults and checks the runtime directory (paths.Default).
func DefaultPaths(graphRoot, runRoot string) (Paths, error) { return paths.Default(graphRoot, runRoot) }
