package engine

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/spec"
)

func TestParseUlimits(t *testing.T) {
	hard := func(string) (uint64, error) { return 20000, nil }
	got, err := parseUlimitsWith([]string{"nofile=1024:2048", "nproc=200", "core=0"}, hard)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Type != "RLIMIT_NOFILE" || got[0].Soft != 1024 || got[0].Hard != 2048 ||
		got[1].Type != "RLIMIT_NPROC" || got[1].Soft != 200 || got[1].Hard != 200 || got[2].Type != "RLIMIT_CORE" {
		t.Errorf("got %+v", got)
	}
	for flag, words := range map[string][]string{
		"nofile=30000":               {"20000", "CAP_SYS_RESOURCE"},
		"nofile=unlimited:unlimited": {"unlimited", "20000"},
		"nofile=10:5":                {"soft"},
		"bogus=1":                    {"NAME=SOFT"},
		"nofile":                     {"NAME=SOFT"},
		"nofile=x":                   {"numbers"},
	} {
		_, err := parseUlimitsWith([]string{flag}, hard)
		if err == nil {
			t.Errorf("%s accepted", flag)
			continue
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", flag, err, w)
			}
		}
	}
	if r, err := parseUlimitsWith([]string{"stack=-1"}, func(string) (uint64, error) { return unix.RLIM_INFINITY, nil }); err != nil || r[0].Soft != unix.RLIM_INFINITY {
		t.Errorf("stack=-1: %+v %v", r, err)
	}
}

func TestParseSecurityOpts(t *testing.T) {
	var so spec.Options
	if err := parseSecurityOpts(&so, []string{"seccomp=unconfined", "no-new-privileges"}); err != nil || so.Seccomp != spec.SeccompUnconfined || so.NoNewPrivileges == nil || !*so.NoNewPrivileges {
		t.Errorf("%+v %v", so, err)
	}
	if err := parseSecurityOpts(&so, []string{"no-new-privileges:false", "label=disable", "apparmor=unconfined"}); err != nil || *so.NoNewPrivileges {
		t.Errorf("%+v %v", so, err)
	}
	for _, bad := range []string{"seccomp", "seccomp=/no/such/file", "no-new-privileges=maybe", "label=type:x", "fly=1"} {
		if err := parseSecurityOpts(&so, []string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseResources(t *testing.T) {
	r, err := parseResources(LimitOptions{Memory: "256m", MemorySwap: "-1", CPUs: "1.5", PidsLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if *r.Memory.Limit != 256<<20 || *r.Memory.Swap != -1 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 100 {
		t.Errorf("%+v", r)
	}
	if r, err := parseResources(LimitOptions{}); r != nil || err != nil {
		t.Errorf("no flags: %+v %v", r, err)
	}
	for _, l := range []LimitOptions{{Memory: "1k"}, {MemorySwap: "1g"}, {CPUs: "0"}, {DeviceReadBps: []string{"/dev/null:1mb"}}, {DeviceWriteBps: []string{"nocolon"}}} {
		if _, err := parseResources(l); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}

func TestTmpfsAndBindMounts(t *testing.T) {
	m, err := tmpfsMount("/run/", "size=1m,mode=1777")
	if err != nil || m.Destination != "/run" || strings.Join(m.Options, ",") != "nosuid,nodev,noexec,size=1m,mode=1777" {
		t.Errorf("%+v %v", m, err)
	}
	for _, d := range []string{"relative", "/", "/../"} {
		if _, err := tmpfsMount(d, ""); err == nil {
			t.Errorf("tmpfs on %q accepted", d)
		}
	}
	dir := t.TempDir()
	m, err = bindMount(dir, "/data", true)
	if err != nil || m.Type != "bind" || strings.Join(m.Options, ",") != "rbind,ro,rprivate" {
		t.Errorf("%+v %v", m, err)
	}
	if _, err := bindMount(dir+"/missing", "/data", false); err == nil {
		t.Errorf("a missing bind source was accepted")
	}
}
