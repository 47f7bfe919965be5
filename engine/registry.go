package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/types"
)

// TLSVerify says whether to check a registry's certificate: TLSDefault follows Docker (skip
// the check, and allow plain HTTP, only for a registry on the loopback interface or one that
// registries.conf marks insecure), the others force it.
type TLSVerify int

const (
	TLSDefault TLSVerify = iota
	TLSOn
	TLSOff
)

// ParseReference parses what a user names an image with: a name ("busybox",
// "127.0.0.1:5000/team/app:1.2") gets Docker's normalisation (docker.io, library/ for
// official images, :latest), a digest ("app@sha256:...") stays as it is.
func ParseReference(name string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %v", name, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return ref, nil
	}
	return reference.TagNameOnly(ref), nil
}

// isLoopbackRegistry says whether a registry host ("localhost:5000", "127.0.0.1", "[::1]:5000")
// is on this machine, which Docker trusts without TLS.
func isLoopbackRegistry(domain string) bool {
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// registryContext is the containers/image configuration for talking to a registry: the
// user's auth files (auth.json, ~/.docker/config.json) and registries.conf where it exists,
// plus TLS as asked.
func (e *Engine) registryContext(domain string, tls TLSVerify) *types.SystemContext {
	sys := e.transferContext()
	switch {
	case tls == TLSOff:
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	case tls == TLSOn:
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolFalse
	case isLoopbackRegistry(domain):
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	return sys
}

// transferContext is the containers/image configuration for moving image data: big temporary
// files go to the graph root (the same file system as the layers, and cleaned by nook after a
// crash), never to /var/tmp.
func (e *Engine) transferContext() *types.SystemContext {
	return &types.SystemContext{
		BigFilesTemporaryDir: e.tmpDir(),
		// Only the user's own registries.conf, if any, or the system's: sysregistriesv2 finds them;
		// without one, names resolve as Docker's do (ParseReference).
	}
}

func (e *Engine) tmpDir() string { return filepath.Join(e.Paths.GraphRoot, "tmp") }

// LoginOptions are `nook login`'s settings.
type LoginOptions struct {
	Registry           string
	Username, Password string
	TLSVerify          TLSVerify
}

// NormalizeRegistry turns what a user gives `login` ("docker.io", "https://index.docker.io/v1/",
// "127.0.0.1:5000") into the key auth.json uses.
func NormalizeRegistry(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	if i := strings.IndexByte(s, '/'); i >= 0 && (s[:i] == "index.docker.io" || s[:i] == "registry-1.docker.io") {
		s = s[:i]
	}
	switch s {
	case "", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}

// loginContext is registryContext for login and logout, which run outside the user namespace
// (no store is needed) and so see the user's own files directly.
func loginContext(domain string, tls TLSVerify) *types.SystemContext {
	e := &Engine{}
	sys := e.registryContext(domain, tls)
	sys.BigFilesTemporaryDir = ""
	return sys
}

// Login checks the credentials against the registry and stores them in auth.json.
func Login(ctx context.Context, o LoginOptions) (string, error) {
	key := NormalizeRegistry(o.Registry)
	host := strings.SplitN(key, "/", 2)[0]
	sys := loginContext(host, o.TLSVerify)
	if err := docker.CheckAuth(ctx, sys, o.Username, o.Password, host); err != nil {
		return "", explainRegistryError("log in to "+host, host, err)
	}
	path, err := config.SetCredentials(sys, key, o.Username, o.Password)
	if err != nil {
		return "", fmt.Errorf("store the credentials for %s: %w", key, err)
	}
	return path, nil
}

// Logout removes the stored credentials of a registry. It reports whether there were any.
func Logout(o LoginOptions) (bool, error) {
	key := NormalizeRegistry(o.Registry)
	sys := loginContext(key, o.TLSVerify)
	err := config.RemoveAuthentication(sys, key)
	if errors.Is(err, config.ErrNotLoggedIn) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove the credentials for %s: %w", key, err)
	}
	return true, nil
}

// explainRegistryError turns a registry failure into one line that says what went wrong and
// what to do.
func explainRegistryError(op, registry string, err error) error {
	var unauth docker.ErrUnauthorizedForCredentials
	msg := err.Error()
	switch {
	case errors.As(err, &unauth) || strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authentication required"):
		return fmt.Errorf("%s: the registry refused the credentials (unauthorized): log in with `nook login %s` (or check the user name and password)", op, registry)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: cannot reach the registry %s (connection refused): check the address and that the registry is running", op, registry)
	case isDNSError(err):
		return fmt.Errorf("%s: cannot resolve the registry %s: check its name and your network", op, registry)
	case isNetError(err):
		return fmt.Errorf("%s: cannot reach the registry %s (%v): check the address and your network", op, registry, rootCause(err))
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s: the registry %s speaks plain HTTP: use --tls-verify=false if you trust it", op, registry)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return fmt.Errorf("%s: TLS with the registry %s failed (%v): install its CA certificate, or use --tls-verify=false if you trust it", op, registry, rootCause(err))
	case strings.Contains(msg, "manifest unknown") || strings.Contains(msg, "name unknown"):
		return fmt.Errorf("%s: not found in the registry (manifest unknown): check the name and the tag", op)
	case strings.Contains(msg, "no image found in manifest list") || strings.Contains(msg, "no image found in image index"):
		return fmt.Errorf("%s: the image has no variant for this machine (%s/%s): pick a tag built for it", op, "linux", goarch())
	case strings.Contains(msg, "denied"):
		return fmt.Errorf("%s: access denied by the registry: check that the repository exists and that you may use it (nook login %s)", op, registry)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isDNSError(err error) bool {
	var d *net.DNSError
	return errors.As(err, &d)
}

func isNetError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// rootCause is the innermost error, for messages that should not repeat a whole chain.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
