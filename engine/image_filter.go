//go:build !nook_lean

package engine

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"go.podman.io/image/v5/docker/reference"
)

// ImageFilter is `images --filter`: KEY=VALUE terms, as Docker's. dangling and reference terms
// are OR'ed among themselves, label terms must all hold, and before/since bound the creation
// time; different keys are AND'ed.
type ImageFilter struct {
	terms map[string][]string
}

// ParseImageFilter reads --filter terms: dangling=true|false, reference=PATTERN,
// label=KEY[=VALUE], before=IMAGE, since=IMAGE.
func ParseImageFilter(terms []string) (*ImageFilter, error) {
	f := &ImageFilter{terms: map[string][]string{}}
	for _, t := range terms {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", t)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "dangling":
			v = strings.ToLower(v)
			if v != "true" && v != "false" && v != "1" && v != "0" {
				return nil, fmt.Errorf("invalid filter 'dangling=%s': use dangling=true or dangling=false", v)
			}
			if v == "1" {
				v = "true"
			} else if v == "0" {
				v = "false"
			}
		case "reference", "label", "before", "since":
			if v == "" {
				return nil, fmt.Errorf("invalid filter '%s=': give a value", k)
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s': use dangling, reference, label, before or since", k)
		}
		f.terms[k] = append(f.terms[k], v)
	}
	return f, nil
}

// FilterImages keeps the rows of Images that f lets through (f nil: all). An image named by
// before= or since= must exist.
func (e *Engine) FilterImages(ctx context.Context, rows []ImageSummary, f *ImageFilter) ([]ImageSummary, error) {
	if f == nil || len(f.terms) == 0 {
		return rows, nil
	}
	var before, since time.Time
	for _, b := range f.terms["before"] {
		img, err := e.FindImage(b)
		if err != nil {
			return nil, err
		}
		if before.IsZero() || img.Created.Before(before) {
			before = img.Created
		}
	}
	for _, s := range f.terms["since"] {
		img, err := e.FindImage(s)
		if err != nil {
			return nil, err
		}
		if img.Created.After(since) {
			since = img.Created
		}
	}
	labels := map[string]map[string]string{} // image ID -> its config's labels, read once
	var out []ImageSummary
	for _, r := range rows {
		dangling := r.Repository == "<none>" && r.Tag == "<none>"
		if ds := f.terms["dangling"]; len(ds) > 0 {
			match := false
			for _, d := range ds {
				match = match || (d == "true") == dangling
			}
			if !match {
				continue
			}
		}
		if ps := f.terms["reference"]; len(ps) > 0 {
			if dangling || !referenceMatches(ps, r) {
				continue
			}
		}
		if !before.IsZero() && !r.Created.Before(before) {
			continue
		}
		if !since.IsZero() && !r.Created.After(since) {
			continue
		}
		if ls := f.terms["label"]; len(ls) > 0 {
			l, ok := labels[r.ID]
			if !ok {
				img, err := e.Store.Image(r.ID)
				if err != nil {
					continue // removed meanwhile
				}
				cfg, err := e.ImageConfig(ctx, img)
				if err != nil {
					return nil, err
				}
				l = cfg.Config.Labels
				labels[r.ID] = l
			}
			if !labelsMatch(ls, l) {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// referenceMatches says whether one of the patterns matches the row's name, as Docker's
// reference filter: the pattern is matched (path.Match) against the familiar NAME:TAG and NAME.
func referenceMatches(patterns []string, r ImageSummary) bool {
	name := r.Repository
	if r.Tag != "<none>" {
		name += ":" + r.Tag
	}
	ref, err := reference.ParseNormalizedNamed(name)
	for _, p := range patterns {
		if err == nil {
			if ok, _ := reference.FamiliarMatch(p, ref); ok {
				return true
			}
		} else if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// labelsMatch says whether every KEY or KEY=VALUE term holds for labels.
func labelsMatch(terms []string, labels map[string]string) bool {
	for _, t := range terms {
		k, v, hasValue := strings.Cut(t, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}
