package idmap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Plan.Mode values.
const (
	ModeSubordinate = "subordinate"
	ModeSingleID    = "single-id"
)

// Environment knobs (documented for users; the tests use them for the degraded paths).
const (
	EnvSubUIDFile = "NOOK_SUBUID_FILE"
	EnvSubGIDFile = "NOOK_SUBGID_FILE"
	EnvNewUIDMap  = "NOOK_NEWUIDMAP"
	EnvNewGIDMap  = "NOOK_NEWGIDMAP"
)

// SourceGetsubids is Plan.UIDSource/GIDSource when the ranges came from getsubids.
const SourceGetsubids = "getsubids"

// getsubidsTimeout bounds the one exec of getsubids per kind: it may ask NSS (LDAP, SSSD), and
// a hung directory must not hang `nook run`; on timeout the file is read instead.
const getsubidsTimeout = 5 * time.Second

// Plan is the mapping nook will use for this user.
type Plan struct {
	Mode                 string // "subordinate" or "single-id"
	UIDMap, GIDMap       []Mapping
	UIDSource, GIDSource string // "/etc/subuid", "getsubids", or the override file path; "" in single-id with no source
	NewUIDMap, NewGIDMap string // absolute paths of the helpers to run ("" in single-id mode)
	Warning              string // "" or ONE line starting "nook: warning: " saying why single-id mode and what an administrator can run
}

// Resolve builds the Plan for the current user (os.Getuid/Getgid, user name from os/user or
// /etc/passwd; if the name can't be found use the numeric id). Sources in order:
// env NOOK_SUBUID_FILE / NOOK_SUBGID_FILE if set (file only; a missing file = no ranges);
// else `getsubids` (and `getsubids -g`) if in PATH and it succeeds; else /etc/subuid, /etc/subgid.
// Helpers: env NOOK_NEWUIDMAP / NOOK_NEWGIDMAP if set, else exec.LookPath("newuidmap"/"newgidmap").
// A helper is usable if it exists, is executable, and is setuid root OR has file capabilities
// (xattr security.capability present). Single-id mode when: no UID range or no GID range, or a
// helper missing/unusable — Warning says which. If both ranges are missing, one warning.
//
// The source of a kind is "" when no ranges were found for it. An error is returned only when a
// subordinate-ID file exists but cannot be read.
func Resolve() (*Plan, error) {
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	return resolve(userName(uid), uid, gid)
}

// userName returns the login name of uid, or the decimal uid when it has none: subuid lines
// may name the user either way, and ParseSubIDs matches both.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return id
}

// lookup is what was found for one kind.
type lookup struct {
	ranges []Range
	source string // where the ranges came from; "" when none were found
	where  string // what was consulted last, for the warning
}

func resolve(name string, uid, gid uint32) (*Plan, error) {
	// Both kinds may exec getsubids; side by side they cost the start path one exec, not two.
	type result struct {
		l   lookup
		err error
	}
	gc := make(chan result, 1)
	go func() {
		l, err := lookupRanges(GID, name, gid)
		gc <- result{l, err}
	}()
	ul, uerr := lookupRanges(UID, name, uid)
	g := <-gc
	if uerr != nil {
		return nil, uerr
	}
	if g.err != nil {
		return nil, g.err
	}
	gl := g.l
	uhelper, uproblem := findHelper(UID)
	ghelper, gproblem := findHelper(GID)

	p := &Plan{UIDSource: ul.source, GIDSource: gl.source}
	if len(ul.ranges) > 0 && len(gl.ranges) > 0 && uproblem == "" && gproblem == "" {
		p.Mode = ModeSubordinate
		p.UIDMap = Build(uid, ul.ranges)
		p.GIDMap = Build(gid, gl.ranges)
		p.NewUIDMap, p.NewGIDMap = uhelper, ghelper
		return p, nil
	}
	p.Mode = ModeSingleID
	p.UIDMap = []Mapping{{ContainerID: 0, HostID: uid, Size: 1}}
	p.GIDMap = []Mapping{{ContainerID: 0, HostID: gid, Size: 1}}
	p.Warning = warning(name, ul, gl, uproblem, gproblem)
	return p, nil
}

// lookupRanges finds the subordinate ranges of one kind, in the order the documentation gives.
func lookupRanges(k Kind, name string, id uint32) (lookup, error) {
	env := EnvSubUIDFile
	if k == GID {
		env = EnvSubGIDFile
	}
	if path := os.Getenv(env); path != "" {
		return readSubIDFile(path, name, id)
	}
	// libsubid reads /etc/subuid itself unless nsswitch.conf names a "subid:" service; only
	// then can getsubids know more than the file, and only then is its exec (about 10 ms, on
	// every `nook run`) worth paying.
	if nsswitchHasSubid(nsswitchConf) {
		if rs, ok := getsubids(k, name); ok {
			return lookup{ranges: rs, source: SourceGetsubids, where: SourceGetsubids}, nil
		}
	}
	return readSubIDFile(k.file(), name, id)
}

// nsswitchConf is a variable so tests can point it at their own file.
var nsswitchConf = "/etc/nsswitch.conf"

// nsswitchHasSubid reports whether the NSS configuration routes subordinate IDs to a service
// (sss, LDAP), as shadow's libsubid reads it.
func nsswitchHasSubid(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "subid" && strings.TrimSpace(v) != "" && strings.TrimSpace(v) != "files" {
			return true
		}
	}
	return false
}

// getsubids asks the shadow tool, which also sees ranges served by NSS (LDAP, SSSD). It exits 1
// with "Error fetching ranges" for a user without ranges; that, a missing tool, a timeout or
// output nook cannot parse all mean "fall back to the file".
func getsubids(k Kind, name string) ([]Range, bool) {
	path, err := exec.LookPath("getsubids")
	if err != nil {
		return nil, false
	}
	args := []string{name}
	if k == GID {
		args = []string{"-g", name}
	}
	ctx, cancel := context.WithTimeout(context.Background(), getsubidsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, false
	}
	rs, err := ParseGetsubids(out)
	if err != nil || len(rs) == 0 {
		return nil, false
	}
	return rs, true
}

func readSubIDFile(path, name string, id uint32) (lookup, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return lookup{where: path + " (file not found)"}, nil
	}
	if err != nil {
		return lookup{}, fmt.Errorf("read subordinate ids: %w", err)
	}
	defer f.Close()
	rs, err := ParseSubIDs(f, name, id)
	if err != nil {
		return lookup{}, fmt.Errorf("%s: %w", path, err)
	}
	l := lookup{ranges: rs, where: path}
	if len(rs) > 0 {
		l.source = path
	}
	return l, nil
}

// findHelper returns the absolute path of the kind's helper, or a phrase saying why it can't
// be used.
func findHelper(k Kind) (path, problem string) {
	env := EnvNewUIDMap
	if k == GID {
		env = EnvNewGIDMap
	}
	if v := os.Getenv(env); v != "" {
		path = v
	} else {
		p, err := exec.LookPath(k.helper())
		if err != nil {
			return "", k.helper() + " not found in PATH"
		}
		path = p
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, helperProblem(path)
}

// helperProblem returns "" when path can write another process's map for an unprivileged
// caller, else the reason it can't.
func helperProblem(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return path + " does not exist"
		}
		return path + ": " + err.Error()
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return path + " is not a regular file"
	}
	if st.Mode&0o111 == 0 || unix.Access(path, unix.X_OK) != nil {
		return path + " is not executable"
	}
	// The kernel ignores both the setuid bit and file capabilities of a program on a nosuid
	// mount (security/commoncap.c, get_file_caps; fs/exec.c, bprm_fill_uid), so such a helper
	// would run without privilege and fail.
	var sfs unix.Statfs_t
	if unix.Statfs(path, &sfs) == nil && sfs.Flags&unix.ST_NOSUID != 0 {
		return path + " is on a nosuid mount"
	}
	if st.Mode&unix.S_ISUID != 0 && st.Uid == 0 {
		return ""
	}
	// Fedora and others ship the helpers with cap_setuid/cap_setgid instead of setuid.
	if n, err := unix.Getxattr(path, "security.capability", nil); err == nil && n > 0 {
		return ""
	}
	return path + " is not setuid root and has no file capabilities"
}

// warning says in one line why nook falls back to a single-ID mapping and what an
// administrator can do about it.
func warning(name string, ul, gl lookup, uproblem, gproblem string) string {
	var reasons []string
	noU, noG := len(ul.ranges) == 0, len(gl.ranges) == 0
	switch {
	case noU && noG:
		reasons = append(reasons, fmt.Sprintf("no subordinate UIDs or GIDs for user %s in %s and %s", name, ul.where, gl.where))
	case noU:
		reasons = append(reasons, fmt.Sprintf("no subordinate UIDs for user %s in %s", name, ul.where))
	case noG:
		reasons = append(reasons, fmt.Sprintf("no subordinate GIDs for user %s in %s", name, gl.where))
	}
	for _, p := range []string{uproblem, gproblem} {
		if p != "" {
			reasons = append(reasons, p)
		}
	}
	usermod := "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + name
	var advice string
	switch helpers := uproblem != "" || gproblem != ""; {
	case (noU || noG) && helpers:
		advice = "Ask an administrator to install the uidmap package (newuidmap, newgidmap) and run: " + usermod
	case helpers:
		advice = "Ask an administrator to install the uidmap package (setuid newuidmap, newgidmap)"
	default:
		advice = "Ask an administrator: " + usermod
	}
	w := "nook: warning: " + strings.Join(reasons, "; ") +
		"; running with a single-ID mapping (only root in the container). " + advice
	// Paths come from the environment; keep the promise of exactly one line.
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(w)
}
