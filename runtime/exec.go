package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Exit codes of the container's process when nook cannot start it, as
// Docker's and Podman's (libpod/define/exec_codes.go).
const (
	ExitRuntimeError = 125 // nook itself failed
	ExitCannotInvoke = 126 // the command exists but cannot be executed
	ExitNotFound     = 127 // the command was not found
)

// ErrNotFound is the error of a command that is not in any directory of $PATH.
var ErrNotFound = errors.New("executable file not found in $PATH")

// ExecError is a failure to start the container's command. Code is
// ExitCannotInvoke or ExitNotFound.
type ExecError struct {
	Code int
	Name string // the command as given (Args[0])
	Err  error
}

func (e *ExecError) Error() string {
	return "exec: " + quote(e.Name) + ": " + e.Err.Error()
}

func (e *ExecError) Unwrap() error { return e.Err }

func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// ExitCode maps an error of the container init to the exit status nook
// reports: 0 for nil, the ExecError's code, else ExitRuntimeError.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExecError
	if errors.As(err, &ee) && ee.Code != 0 {
		return ee.Code
	}
	return ExitRuntimeError
}

// pathFromEnv returns the value of PATH in env ("" when unset).
func pathFromEnv(env []string) string {
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v // the last one wins, as getenv in the exec'd libc
		}
	}
	return path
}

// lookPath finds file the way execvp does, in the tree under root ("/" once
// the container's root is pivoted; a temporary directory in tests). A name
// with a slash is used as is; otherwise the directories of pathEnv are
// searched and the first regular executable file wins; candidates that are
// not executable are skipped, as Go's exec.LookPath and so Docker do. The
// returned path is the one to exec inside root.
func lookPath(root, file, pathEnv string) (string, error) {
	if file == "" {
		return "", &ExecError{Code: ExitNotFound, Name: file, Err: ErrNotFound}
	}
	if strings.Contains(file, "/") {
		if err := checkExecutable(inRoot(root, file)); err != nil {
			code := ExitCannotInvoke
			if errors.Is(err, fs.ErrNotExist) {
				code = ExitNotFound
			}
			return "", &ExecError{Code: code, Name: file, Err: err}
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "." // an empty element means the working directory
		}
		p := filepath.Join(dir, file)
		if !filepath.IsAbs(p) {
			p = "./" + p // keep it relative to the working directory for execve
		}
		if checkExecutable(inRoot(root, p)) == nil {
			return p, nil
		}
	}
	return "", &ExecError{Code: ExitNotFound, Name: file, Err: ErrNotFound}
}

// inRoot places an absolute path under root; relative paths stay relative
// to the working directory.
func inRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Join(root, p)
	}
	return p
}

var (
	errIsDir         = errors.New("is a directory")
	errNotExecutable = errors.New("permission denied")
	errNoSuchFile    = errors.New("no such file or directory")
)

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &wrapped{errNoSuchFile, fs.ErrNotExist}
	case errors.Is(err, fs.ErrPermission):
		return &wrapped{errNotExecutable, fs.ErrPermission}
	case err != nil:
		return err
	case fi.IsDir():
		return errIsDir
	case fi.Mode()&0o111 == 0:
		return &wrapped{errNotExecutable, fs.ErrPermission}
	}
	return nil
}

// wrapped is an error with a short message that also matches a sentinel.
type wrapped struct{ msg, is error }

func (w *wrapped) Error() string        { return w.msg.Error() }
func (w *wrapped) Is(target error) bool { return target == w.is || target == w.msg }
