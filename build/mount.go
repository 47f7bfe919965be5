package build

import (
	"errors"
	"fmt"
	"path"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// RunMounts returns a RUN step's --mount flags after checking that nook build can do them:
// type=cache (kept per id under the graph root), type=bind (read-only, from the context or
// from= a stage or image), type=tmpfs and type=secret (a file of `nook build --secret`, or a
// variable with env=). The command must have been expanded
// (instructions.RunCommand.Expand) for the flags to be read.
func RunMounts(c *instructions.RunCommand) ([]*instructions.Mount, error) {
	ms := instructions.GetMounts(c)
	seen := map[string]bool{}
	for _, m := range ms {
		if err := checkMount(m); err != nil {
			return nil, err
		}
		t := path.Clean(m.Target)
		if m.Type == instructions.MountTypeSecret {
			if t = SecretTarget(m); t == "" {
				continue // a variable only
			}
		}
		if seen[t] {
			return nil, fmt.Errorf("RUN --mount: %s is mounted twice", t)
		}
		seen[t] = true
	}
	return ms, nil
}

func checkMount(m *instructions.Mount) error {
	switch m.Type {
	case instructions.MountTypeCache, instructions.MountTypeBind, instructions.MountTypeTmpfs:
	case instructions.MountTypeSecret:
		if SecretID(m) == "" {
			return errors.New("RUN --mount=type=secret needs an id or a target")
		}
		if t := SecretTarget(m); t != "" && path.Clean("/"+t) == "/" {
			return errors.New("RUN --mount=type=secret: cannot mount over the container's root")
		}
		if m.Mode != nil && *m.Mode > 0o7777 {
			return fmt.Errorf("RUN --mount=type=secret: mode %o is not a file mode", *m.Mode)
		}
		return nil
	case instructions.MountTypeSSH:
		return fmt.Errorf("RUN --mount=type=%s is not supported by nook build: remove it (nook has no SSH agent forwarding)", m.Type)
	default:
		return fmt.Errorf("RUN --mount=type=%s is not supported by nook build", m.Type)
	}
	if m.Target == "" {
		return fmt.Errorf("RUN --mount=type=%s needs a target", m.Type)
	}
	if path.Clean("/"+m.Target) == "/" {
		return fmt.Errorf("RUN --mount=type=%s: cannot mount over the container's root", m.Type)
	}
	switch m.Type {
	case instructions.MountTypeBind:
		if !m.ReadOnly {
			return errors.New("RUN --mount=type=bind,rw is not supported by nook build: the source is mounted as it is, read-only (copy it with COPY to change it)")
		}
	case instructions.MountTypeCache:
		if m.From != "" || m.Source != "" {
			return errors.New("RUN --mount=type=cache with from= or source= is not supported by nook build: a cache starts empty")
		}
		if m.Mode != nil && *m.Mode > 0o7777 {
			return fmt.Errorf("RUN --mount=type=cache: mode %o is not a file mode", *m.Mode)
		}
	case instructions.MountTypeTmpfs:
		if m.From != "" || m.Source != "" {
			return errors.New("RUN --mount=type=tmpfs takes no from= or source=")
		}
	}
	return nil
}

// CacheMountID is a cache mount's identity: its id, or else its target, as BuildKit does.
func CacheMountID(m *instructions.Mount) string {
	if m.CacheID != "" {
		return m.CacheID
	}
	return path.Clean(m.Target)
}

// SecretID is the `nook build --secret` id a secret mount reads: id=, else source=, else the
// target's name, as BuildKit's.
func SecretID(m *instructions.Mount) string {
	switch {
	case m.CacheID != "":
		return m.CacheID
	case m.Source != "":
		return m.Source
	case m.Target != "":
		return path.Base(m.Target)
	}
	return ""
}

// SecretTarget is where a secret mount's file goes: target=, else /run/secrets/ID; "" when
// it is given only as a variable (env= without target=).
func SecretTarget(m *instructions.Mount) string {
	if m.Target != "" {
		return path.Clean(m.Target)
	}
	if m.Env != nil {
		return ""
	}
	return "/run/secrets/" + path.Base(SecretID(m))
}
