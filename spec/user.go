package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser resolves user as Docker's --user does, against the rootfs's
// /etc/passwd and /etc/group: "" (root), "uid", "uid:gid", "name",
// "name:group" (either side numeric or a name). A numeric uid needs no
// passwd entry (its gid is then 0 and its home "/"). Supplementary groups
// are the groups listing the user by name, and only when no group is
// given, as Docker does. An unknown name is an error.
func ResolveUser(rootfs, user string) (uid, gid uint32, additionalGids []uint32, home string, err error) {
	userPart, groupPart, hasGroup := strings.Cut(user, ":")
	if hasGroup && groupPart == "" {
		return 0, 0, nil, "", fmt.Errorf("invalid user %q: empty group", user)
	}
	passwd, err := readPasswd(rootfs)
	if err != nil {
		return 0, 0, nil, "", err
	}

	home = "/"
	var name string
	var found *passwdEntry
	if userPart == "" {
		userPart = "0"
	}
	if n, ok, err := parseID(userPart); err != nil {
		return 0, 0, nil, "", fmt.Errorf("invalid user %q: %w", user, err)
	} else if ok {
		uid = n
		for i := range passwd {
			if passwd[i].uid == n {
				found = &passwd[i]
				break
			}
		}
	} else {
		for i := range passwd {
			if passwd[i].name == userPart {
				found = &passwd[i]
				break
			}
		}
		if found == nil {
			return 0, 0, nil, "", fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
		uid = found.uid
	}
	if found != nil {
		name, gid, home = found.name, found.gid, found.home
		if home == "" {
			home = "/"
		}
	}

	if !hasGroup && name == "" {
		return uid, gid, nil, home, nil
	}
	groups, err := readGroup(rootfs)
	if err != nil {
		return 0, 0, nil, "", err
	}
	if hasGroup {
		n, ok, err := parseID(groupPart)
		if err != nil {
			return 0, 0, nil, "", fmt.Errorf("invalid group %q: %w", groupPart, err)
		}
		if ok {
			return uid, n, nil, home, nil
		}
		for _, g := range groups {
			if g.name == groupPart {
				return uid, g.gid, nil, home, nil
			}
		}
		return 0, 0, nil, "", fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
	}
	seen := map[uint32]bool{}
	for _, g := range groups {
		for _, m := range g.members {
			if m == name && !seen[g.gid] {
				seen[g.gid] = true
				additionalGids = append(additionalGids, g.gid)
			}
		}
	}
	return uid, gid, additionalGids, home, nil
}

// ResolveGroups resolves --group-add's groups as Docker does: a number is
// taken as it is, a name is looked up in the rootfs's /etc/group (an
// unknown one is an error).
func ResolveGroups(rootfs string, names []string) ([]uint32, error) {
	var out []uint32
	var groups []groupEntry
	for _, name := range names {
		n, ok, err := parseID(name)
		if err != nil {
			return nil, fmt.Errorf("invalid group %q: %w", name, err)
		}
		if ok {
			out = append(out, n)
			continue
		}
		if groups == nil {
			if groups, err = readGroup(rootfs); err != nil {
				return nil, err
			}
		}
		found := false
		for _, g := range groups {
			if g.name == name {
				out, found = append(out, g.gid), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("unable to find group %s: no matching entries in group file", name)
		}
	}
	return out, nil
}

// parseID reports whether s is numeric, and its value. Docker accepts IDs
// up to 2^31-1.
func parseID(s string) (uint32, bool, error) {
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxInt32 {
		return 0, false, fmt.Errorf("%s is out of range 0-%d", s, math.MaxInt32)
	}
	return uint32(n), true, nil
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readColonFile(rootfs, "/etc/passwd", func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, ok1, _ := parseID(f[2])
		gid, ok2, _ := parseID(f[3])
		if !ok1 || !ok2 {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	})
	return out, err
}

func readGroup(rootfs string) ([]groupEntry, error) {
	var out []groupEntry
	err := readColonFile(rootfs, "/etc/group", func(f []string) {
		if len(f) < 4 {
			return
		}
		gid, ok, _ := parseID(f[2])
		if !ok {
			return
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, groupEntry{name: f[0], gid: gid, members: members})
	})
	return out, err
}

// readColonFile calls line for each entry of the file at name inside
// rootfs. A missing file has no entries.
func readColonFile(rootfs, name string, line func([]string)) error {
	f, err := openInRoot(rootfs, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(io.LimitReader(f, 64<<20))
	for {
		l, err := r.ReadString('\n')
		l = strings.TrimSpace(l)
		if l != "" && l[0] != '#' && l[0] != '+' && l[0] != '-' {
			line(strings.Split(l, ":"))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
}

// openInRoot opens name for reading inside rootfs with RESOLVE_IN_ROOT: an
// image's /etc/passwd that is a symlink cannot make nook read a host file.
func openInRoot(rootfs, name string) (*os.File, error) {
	dir, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(dir)
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(dir, strings.TrimPrefix(name, "/"), &how)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs + name, Err: err}
	}
	f := os.NewFile(uintptr(fd), rootfs+name)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("read %s: not a regular file", rootfs+name)
	}
	return f, nil
}
