package engine

import (
	"reflect"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCommandLine(t *testing.T) {
	empty, sh := "", "/bin/sh"
	img := imgspecv1.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"default"}}
	cases := []struct {
		name string
		cfg  imgspecv1.ImageConfig
		ep   *string
		args []string
		want []string
	}{
		{"image defaults", img, nil, nil, []string{"/ep", "default"}},
		{"args replace cmd", img, nil, []string{"a", "b"}, []string{"/ep", "a", "b"}},
		{"entrypoint replaces both", img, &sh, nil, []string{"/bin/sh"}},
		{"entrypoint and args", img, &sh, []string{"-c", "x"}, []string{"/bin/sh", "-c", "x"}},
		{"empty entrypoint clears", img, &empty, []string{"ls"}, []string{"ls"}},
		{"nothing at all", imgspecv1.ImageConfig{}, nil, nil, []string{}},
	}
	for _, c := range cases {
		if got := commandLine(c.cfg, c.ep, c.args); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	t.Setenv("NOOK_TEST_PASS", "through")
	got, err := mergeEnv([]string{"PATH=/bin", "A=1"}, nil, []string{"A=2", "B=3", "NOOK_TEST_PASS", "NOOK_TEST_UNSET_XYZ"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/bin", "A=2", "B=3", "NOOK_TEST_PASS=through"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestResolvForContainer(t *testing.T) {
	host := "search lan\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver ::1\noptions edns0\n"
	want := "search lan\nnameserver 192.0.2.1\noptions edns0\n"
	if got := resolvForContainer(host, NetNone); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := resolvForContainer(host, NetHost); got != host {
		t.Fatalf("host network must keep the host's file, got %q", got)
	}
}

func TestLooksLikeID(t *testing.T) {
	for s, want := range map[string]bool{"abc123": true, "sha256:0123abcd": true, "demo": false, "ab": false, "ABC123": false} {
		if got := looksLikeID(s); got != want {
			t.Errorf("looksLikeID(%q) = %v", s, got)
		}
	}
}
