//go:build !nook_lean

package engine

import (
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// Short names ("busybox", "team/app:1") are resolved against the user's registries.conf with
// containers/image's pkg/sysregistriesv2, the way Podman's pkg/shortnames resolves them, with
// two differences that make nook behave as Docker where registries.conf says nothing:
//
//   - without a short-name alias and without unqualified-search-registries, a short name is
//     Docker's: docker.io, with library/ for official images;
//   - nook never prompts: with several search registries it tries them in order (Podman's
//     "permissive" mode without a terminal); short-name-mode = "enforcing" refuses an
//     ambiguous name instead.
//
// (pkg/shortnames itself links a terminal-prompt library for the prompt nook never shows;
// the resolution is the few lines below.)
//
// registries.conf is read where containers/image reads it: $CONTAINERS_REGISTRIES_CONF if
// set, else $XDG_CONFIG_HOME/containers/registries.conf (~/.config/...), else
// /etc/containers/registries.conf, plus the registries.conf.d drop-ins. [[registry]] entries
// (insecure, blocked, mirrors, location rewrites) apply to every pull and push through the
// docker transport itself.

// resolution is what a name to pull resolved to: the names to try in order, and how.
type resolution struct {
	candidates  []reference.Named
	description string // said before pulling; "" when the name was resolved as Docker does
	searched    bool   // the candidates come from unqualified-search-registries
	origin      string // the configuration that gave them
}

// qualify completes a short repository with a registry (or replaces it with an alias) and
// adds the tag back (":latest" when there was none).
func qualify(prefix, tag string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(prefix)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		if named, err = reference.WithTag(reference.TrimNamed(named), tag); err != nil {
			return nil, err
		}
	}
	return reference.TagNameOnly(named), nil
}

// resolvePull resolves a name to pull.
func (e *Engine) resolvePull(name string) (*resolution, error) {
	ref, err := ParseReference(name)
	if err != nil {
		return nil, err
	}
	short, repo, tag, _, err := shortName(name)
	if err != nil {
		return nil, err
	}
	docker := &resolution{candidates: []reference.Named{ref}}
	if !short {
		return docker, nil
	}
	sys := e.transferContext()
	alias, aliasOrigin, err := sysregistriesv2.ResolveShortNameAlias(sys, repo)
	if err != nil {
		return nil, registriesConfError(sys, err)
	}
	if alias != nil {
		c, err := qualify(alias.String(), tag)
		if err != nil {
			return nil, registriesConfError(sys, err)
		}
		return &resolution{candidates: []reference.Named{c}, origin: aliasOrigin,
			description: fmt.Sprintf("Resolved %q as an alias (%s)", repo, aliasOrigin)}, nil
	}
	search, origin, err := sysregistriesv2.UnqualifiedSearchRegistriesWithOrigin(sys)
	if err != nil {
		return nil, registriesConfError(sys, err)
	}
	if len(search) == 0 {
		return docker, nil
	}
	res := &resolution{searched: true, origin: origin,
		description: fmt.Sprintf("Resolving %q using unqualified-search registries (%s)", repo, origin)}
	for _, reg := range search {
		c, err := qualify(reg+"/"+repo, tag)
		if err != nil {
			return nil, registriesConfError(sys, fmt.Errorf("unqualified-search registry %q: %w", reg, err))
		}
		res.candidates = append(res.candidates, c)
	}
	if len(res.candidates) > 1 {
		mode, err := sysregistriesv2.GetShortNameMode(sys)
		if err != nil {
			return nil, registriesConfError(sys, err)
		}
		if mode == types.ShortNameModeEnforcing {
			return nil, fmt.Errorf("the short name %q is ambiguous (unqualified-search-registries: %s) and short-name-mode is \"enforcing\" in %s: give the full name, e.g. %s",
				name, strings.Join(search, ", "), origin, res.candidates[0].String())
		}
	}
	return res, nil
}

// lookupCandidates are the names a local image may have been stored under, most likely first:
// Docker's normalisation (docker.io/library/NAME, what nook tags, builds and loads as), then,
// for a short name, what registries.conf makes of it (the alias, localhost/NAME, each search
// registry), as Podman looks up local images.
// name must be valid (ParseName).
func (e *Engine) lookupCandidates(name string) []reference.Named {
	ref, err := ParseName(name)
	if err != nil {
		return nil
	}
	out := []reference.Named{ref}
	short, repo, tag, _, err := shortName(name)
	if err != nil || !short {
		return out
	}
	add := func(prefix string) {
		if c, err := qualify(prefix, tag); err == nil && c.String() != ref.String() {
			out = append(out, c)
		}
	}
	// An unreadable registries.conf must not hide images named the Docker way: its errors
	// are reported by pulls, not here.
	sys := e.transferContext()
	if alias, _, err := sysregistriesv2.ResolveShortNameAlias(sys, repo); err == nil && alias != nil {
		add(alias.String())
	}
	add("localhost/" + repo)
	if search, err := sysregistriesv2.UnqualifiedSearchRegistries(sys); err == nil {
		for _, reg := range search {
			add(reg + "/" + repo)
		}
	}
	return out
}

// otherCandidates are lookupCandidates after Docker's name, which findImage tries first.
func (e *Engine) otherCandidates(name string) ([]reference.Named, error) {
	return e.lookupCandidates(name)[1:], nil
}

// registriesConfError says which configuration is at fault.
func registriesConfError(sys *types.SystemContext, err error) error {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	return fmt.Errorf("registries.conf: %s: fix it (nook reads %s)", msg, sysregistriesv2.ConfigurationSourceDescription(sys))
}
