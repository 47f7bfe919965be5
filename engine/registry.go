//go:build !nook_lean

package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
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

// registryContext is the containers/image configuration for talking to the registry of
// named: the user's credentials (authContext) and registries.conf where it exists, plus TLS
// as asked.
func (e *Engine) registryContext(named reference.Named, tls TLSVerify) *types.SystemContext {
	sys := e.tlsContext(reference.Domain(named), tls)
	authContext(sys, named)
	return sys
}

func (e *Engine) tlsContext(domain string, tls TLSVerify) *types.SystemContext {
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
// (no store is needed): they write the auth file the engine reads first (authFile).
func loginContext(domain string, tls TLSVerify) *types.SystemContext {
	e := &Engine{}
	sys := e.tlsContext(domain, tls)
	sys.BigFilesTemporaryDir = ""
	sys.AuthFilePath = authFile()
	return sys
}

// authFile is the auth.json that `nook login` writes and pulls and pushes read first, "" for
// containers/image's default, $XDG_RUNTIME_DIR/containers/auth.json (Podman's and Skopeo's),
// which the CLI and the engine find alike because the engine keeps the CLI's environment.
// Without XDG_RUNTIME_DIR containers/image's default is /run/containers/UID/auth.json with
// the process's own UID: the CLI's on the host, 0 in the engine (root's file). nook uses the
// lasting per-user file instead, $XDG_CONFIG_HOME/containers/auth.json
// (~/.config/containers/auth.json), which containers/image reads in every case.
func authFile() string {
	if os.Getenv("XDG_RUNTIME_DIR") != "" {
		return ""
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cfg = filepath.Join(home, ".config")
	}
	return filepath.Join(cfg, "containers", "auth.json")
}

// dockerConfigFile is Docker's client configuration, whose credentials nook reads too.
func dockerConfigFile() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// authContext sets where the credentials for named come from. With XDG_RUNTIME_DIR,
// containers/image's own search: $XDG_RUNTIME_DIR/containers/auth.json,
// $XDG_CONFIG_HOME/containers/auth.json, ~/.docker/config.json. Without it, the same files but
// the first (authFile): the engine reads them itself, because naming one file to
// containers/image (AuthFilePath) makes it read that one only.
func authContext(sys *types.SystemContext, named reference.Named) {
	p := authFile()
	if p == "" {
		return
	}
	for _, f := range []*types.SystemContext{{AuthFilePath: p}, {DockerCompatAuthFilePath: dockerConfigFile()}} {
		if f.DockerCompatAuthFilePath == "" && f.AuthFilePath == "" {
			continue
		}
		f.SystemRegistriesConfPath = sys.SystemRegistriesConfPath
		creds, err := config.GetCredentialsForRef(f, named)
		if err == nil && (creds.Username != "" || creds.IdentityToken != "") {
			sys.DockerAuthConfig = &creds
			return
		}
	}
	sys.AuthFilePath = p // no credentials: anonymous, and root's file is never read
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
	what, todo := classifyRegistryError(registry, err)
	if todo == "" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &explainedError{op: op, what: what, todo: todo, err: err}
}

// explainedError is "OP: WHAT: TODO", keeping the cause for errors.Is.
type explainedError struct {
	op, what, todo string
	err            error
}

func (e *explainedError) Error() string { return e.op + ": " + e.what + ": " + e.todo }
func (e *explainedError) Unwrap() error { return e.err }

// registryFault is what went wrong, without the operation and the advice, for a list of
// several (a short name tried at several registries).
func registryFault(err error) string {
	var ee *explainedError
	if errors.As(err, &ee) {
		return ee.what
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// classifyRegistryError says what went wrong and what to do; todo is "" when the error is
// not one it knows.
func classifyRegistryError(registry string, err error) (what, todo string) {
	var unauth docker.ErrUnauthorizedForCredentials
	msg := err.Error()
	switch {
	case strings.Contains(msg, " is blocked in "):
		return fmt.Sprintf("the registry %s is blocked in registries.conf", registry), "use another registry, or remove blocked = true from its [[registry]] entry"
	case errors.As(err, &unauth) || strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authentication required"):
		return "the registry refused the credentials (unauthorized)", fmt.Sprintf("log in with `nook login %s` (or check the user name and password)", registry)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach the registry %s (connection refused)", registry), "check the address and that the registry is running"
	case isDNSError(err):
		return fmt.Sprintf("cannot resolve the registry %s", registry), "check its name and your network"
	case isNetError(err):
		return fmt.Sprintf("cannot reach the registry %s (%v)", registry, rootCause(err)), "check the address and your network"
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("the registry %s speaks plain HTTP", registry), "use --tls-verify=false if you trust it (or insecure = true in its [[registry]] entry of registries.conf)"
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return fmt.Sprintf("TLS with the registry %s failed (%v)", registry, rootCause(err)), "install its CA certificate, or use --tls-verify=false if you trust it"
	case strings.Contains(msg, "manifest unknown") || strings.Contains(msg, "name unknown"):
		return "not found in the registry (manifest unknown)", "check the name and the tag"
	case strings.Contains(msg, "no image found in manifest list") || strings.Contains(msg, "no image found in image index"):
		return fmt.Sprintf("the image has no variant for this machine (%s/%s)", "linux", goarch()), "pick a tag built for it"
	case strings.Contains(msg, "denied"):
		return "access denied by the registry", fmt.Sprintf("check that the repository exists and that you may use it (nook login %s)", registry)
	}
	if what, todo := classifyStorageError(err); todo != "" {
		return what, todo
	}
	return "", ""
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

// classifyStorageError explains what containers/storage says when it cannot store a layer:
// its messages name the blob three times and carry a helper's raw output. todo is "" when
// the error is not one of those.
func classifyStorageError(err error) (what, todo string) {
	msg := err.Error()
	if !strings.Contains(msg, "unpacking failed") && !strings.Contains(msg, "invalid hardlink") &&
		!strings.Contains(msg, "processing tar file") && !strings.Contains(msg, "applying layer") {
		return "", ""
	}
	layer := "a layer"
	if m := layerBlobRe.FindStringSubmatch(msg); m != nil {
		layer = "layer " + m[1]
	}
	output := firstLine(msg)
	if m := unpackOutputRe.FindStringSubmatch(msg); m != nil {
		output = strings.TrimSpace(m[1])
	}
	switch {
	case errors.Is(err, syscall.ENOSPC) || strings.Contains(output, "no space left"):
		return fmt.Sprintf("%s could not be unpacked: no space left on the device", layer), "free some space where the store is (`nook info`), then try again"
	case strings.Contains(msg, "invalid hardlink") || strings.Contains(output, "no such file or directory"):
		return fmt.Sprintf("%s could not be unpacked: a hard link in it points to a file the image does not have (%s)", layer, output),
			"the image is broken or hostile: rebuild it, or use another image"
	}
	return fmt.Sprintf("%s could not be unpacked (%s)", layer, output), "the image may be broken: rebuild it or use another image; check the free space where the store is (`nook info`)"
}

var (
	layerBlobRe    = regexp.MustCompile(`adding layer with blob "sha256:([0-9a-f]{12})`)
	unpackOutputRe = regexp.MustCompile(`unpacking failed \(error: [^;]*; output: ([^\n]*)\)`)
)

// explainStoreError is explainRegistryError for transfers that do not involve a registry.
func explainStoreError(op string, err error) error {
	what, todo := classifyStorageError(err)
	if todo == "" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &explainedError{op: op, what: what, todo: todo, err: err}
}

// firstLine is the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return s
}
