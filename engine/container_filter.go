package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ContainerFilter is `ps --filter` (and `container prune --filter`): KEY=VALUE terms, as
// Docker's. Values of one key are OR'ed and different keys AND'ed, except label (and
// label!), whose terms must all hold, as in Docker.
type ContainerFilter struct {
	terms map[string][]string
}

// containerFilterKeys are the keys ps accepts.
var containerFilterKeys = map[string]bool{
	"id": true, "name": true, "status": true, "exited": true, "label": true, "label!": true,
	"ancestor": true, "before": true, "since": true, "volume": true, "network": true,
}

// containerStates are the states Docker knows; nook's containers are only ever in the first four.
var containerStates = map[string]bool{
	StateCreated: true, StateRunning: true, StateRestarting: true, StateExited: true,
	"removing": true, "paused": true, "dead": true,
}

// ParseContainerFilter reads --filter terms; until= is for prune only.
func ParseContainerFilter(terms []string, prune bool) (*ContainerFilter, error) {
	f := &ContainerFilter{terms: map[string][]string{}}
	for _, t := range terms {
		k, v, ok := strings.Cut(t, "=") // label!=KEY is Docker's negated label term: k is label!
		if !ok {
			return nil, fmt.Errorf("bad filter %q: use KEY=VALUE, such as status=exited or name=web", t)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if valid := containerFilterKeys[k] && k != "until"; prune && !pruneFilterKeys[k] || !prune && !valid {
			return nil, fmt.Errorf("invalid filter %q: %s", k, filterKeysHint(prune))
		}
		switch k {
		case "status":
			if !containerStates[v] {
				return nil, fmt.Errorf("invalid filter 'status=%s': use created, restarting, running, removing, paused, exited or dead", v)
			}
		case "exited":
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				return nil, fmt.Errorf("invalid filter 'exited=%s': give an exit code, a number", v)
			}
		case "until":
			if _, err := ParseLogTime(v, time.Now()); err != nil {
				return nil, fmt.Errorf("invalid filter 'until=%s': %w", v, err)
			}
		case "label", "label!", "name", "id", "ancestor", "before", "since", "volume", "network":
			if v == "" {
				return nil, fmt.Errorf("invalid filter '%s=': give a value", k)
			}
		}
		f.terms[k] = append(f.terms[k], v)
	}
	return f, nil
}

var pruneFilterKeys = map[string]bool{"label": true, "label!": true, "until": true}

func filterKeysHint(prune bool) string {
	if prune {
		return "container prune takes until=TIMESTAMP, label=KEY[=VALUE] and label!=KEY[=VALUE]"
	}
	return "use id, name, status, exited, label, ancestor, before, since, volume or network"
}

// Has tells whether the filter has a term with key.
func (f *ContainerFilter) Has(key string) bool { return f != nil && len(f.terms[key]) > 0 }

// match is Docker's value match (filters.Args.Match): the value equals s, or is a regular
// expression found in s. A value that is not a valid expression matches only itself.
func match(value, s string) bool {
	if value == s {
		return true
	}
	re, err := regexp.Compile(value)
	return err == nil && re.MatchString(s)
}

// matchLabel is one label term: KEY holds when the label is set, KEY=VALUE when it has that value.
func matchLabel(term string, labels map[string]string) bool {
	k, v, hasValue := strings.Cut(term, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == v)
}

// matches applies the terms that need nothing but the container itself; ancestor, before,
// since and volume are resolved by Filter.
func (f *ContainerFilter) matches(c *Container, now time.Time) bool {
	any := func(key string, ok func(string) bool) bool {
		vs := f.terms[key]
		if len(vs) == 0 {
			return true
		}
		for _, v := range vs {
			if ok(v) {
				return true
			}
		}
		return false
	}
	all := func(key string, ok func(string) bool) bool {
		for _, v := range f.terms[key] {
			if !ok(v) {
				return false
			}
		}
		return true
	}
	return any("id", func(v string) bool { return strings.HasPrefix(c.ID, v) || match(v, c.ID) }) &&
		any("name", func(v string) bool { return match(v, c.Name) || match(v, "/"+c.Name) }) &&
		any("status", func(v string) bool { return c.State == v }) &&
		any("exited", func(v string) bool {
			n, _ := strconv.Atoi(v)
			return c.State == StateExited && c.ExitCode == n
		}) &&
		all("label", func(v string) bool { return matchLabel(v, c.Labels) }) &&
		all("label!", func(v string) bool { return !matchLabel(v, c.Labels) }) &&
		any("network", func(v string) bool { return c.Net != nil && c.Net.Mode == v }) &&
		all("until", func(v string) bool {
			t, err := ParseLogTime(v, now)
			return err == nil && c.Created.Before(t)
		})
}

// FilterContainers keeps the containers of cs (newest first) that f lets through.
func (e *Engine) FilterContainers(cs []Container, f *ContainerFilter) ([]Container, error) {
	if f == nil || len(f.terms) == 0 {
		return cs, nil
	}
	// before= and since= name containers: the newest "before" and the oldest "since" bound.
	var before, since time.Time
	for _, key := range []string{"before", "since"} {
		for _, ref := range f.terms[key] {
			c, err := findIn(cs, ref)
			if err != nil {
				return nil, fmt.Errorf("filter %s=%s: %w", key, ref, err)
			}
			if key == "before" && (before.IsZero() || c.Created.After(before)) {
				before = c.Created
			}
			if key == "since" && (since.IsZero() || c.Created.Before(since)) {
				since = c.Created
			}
		}
	}
	// ancestor= names images: the container's image, or one built on it.
	var ancestors []ancestor
	for _, ref := range f.terms["ancestor"] {
		img, err := e.FindImage(ref)
		if errors.Is(err, ErrImageUnknown) {
			continue // Docker: an unknown image matches no container
		}
		if err != nil {
			return nil, fmt.Errorf("filter ancestor=%s: %w", ref, err)
		}
		ancestors = append(ancestors, ancestor{id: img.ID, topLayer: img.TopLayer})
	}
	if f.Has("ancestor") && len(ancestors) == 0 {
		return nil, nil
	}
	now := time.Now()
	var out []Container
	for _, c := range cs {
		if !f.matches(&c, now) ||
			!before.IsZero() && !c.Created.Before(before) ||
			!since.IsZero() && !c.Created.After(since) ||
			f.Has("ancestor") && !e.descendsFrom(&c, ancestors) ||
			f.Has("volume") && !e.usesVolume(&c, f.terms["volume"]) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// findIn finds a container by name, ID or unambiguous ID prefix among cs.
func findIn(cs []Container, ref string) (*Container, error) {
	var found []int
	for i := range cs {
		if cs[i].Name == ref || cs[i].ID == ref {
			return &cs[i], nil
		}
		if strings.HasPrefix(cs[i].ID, ref) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrContainerUnknown, ref)
	case 1:
		return &cs[found[0]], nil
	}
	return nil, fmt.Errorf("container ID prefix %s is ambiguous (%d containers): give more characters", ref, len(found))
}

type ancestor struct{ id, topLayer string }

// descendsFrom tells whether c's image is one of as, or has its top layer among the layers of
// c's image (an image built FROM it).
func (e *Engine) descendsFrom(c *Container, as []ancestor) bool {
	for _, a := range as {
		if c.ImageID == a.id {
			return true
		}
	}
	img, err := e.Store.Image(c.ImageID)
	if err != nil {
		return false
	}
	for layer, depth := img.TopLayer, 0; layer != "" && depth < 500; depth++ {
		for _, a := range as {
			if a.topLayer != "" && layer == a.topLayer {
				return true
			}
		}
		l, err := e.Store.Layer(layer)
		if err != nil {
			return false
		}
		layer = l.Parent
	}
	return false
}

// usesVolume tells whether c mounts one of vs: a volume by name, or anything at a destination.
func (e *Engine) usesVolume(c *Container, vs []string) bool {
	var dsts []string
	if o := c.Options; o != nil {
		for _, v := range o.Volumes {
			parts := strings.Split(v, ":")
			dst := parts[0]
			if len(parts) > 1 {
				dst = parts[1]
			}
			dsts = append(dsts, dst)
		}
		for _, m := range o.Mounts {
			for _, kv := range strings.Split(m, ",") {
				if k, v, _ := strings.Cut(kv, "="); k == "target" || k == "destination" || k == "dst" {
					dsts = append(dsts, v)
				}
			}
		}
	}
	for _, v := range vs {
		for _, d := range dsts {
			if filepath.Clean(d) == filepath.Clean(v) {
				return true
			}
		}
		if !strings.Contains(v, "/") {
			if _, err := os.Stat(filepath.Join(e.volumeDir(v), "users", c.ID)); err == nil {
				return true
			}
		}
	}
	return false
}

// LatestContainers keeps the n newest of cs (newest first), all of them when n <= 0 (Docker's
// ps -n 0 lists every container).
func LatestContainers(cs []Container, n int) []Container {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Created.After(cs[j].Created) })
	if n > 0 && len(cs) > n {
		return cs[:n]
	}
	return cs
}

// ContainerSize is `ps -s`: the size of c's own layer (what it changed), and that plus its
// image's (Docker's virtual size); -1 when unknown.
func (e *Engine) ContainerSize(c *Container) (rw, virtual int64) {
	rw, virtual = -1, -1
	sc, err := e.Store.Container(c.ID)
	if err != nil {
		return
	}
	if n, err := e.Store.DiffSize("", sc.LayerID); err == nil {
		rw = n
	}
	if n, err := e.Store.ImageSize(c.ImageID); err == nil && rw >= 0 {
		virtual = n + rw
	}
	return
}
