package build

import (
	"slices"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// stepsOf parses a one-stage Dockerfile body and returns its commands.
func stepsOf(t *testing.T, body string) []instructions.Command {
	t.Helper()
	p, err := Parse("Dockerfile", []byte("FROM demo\n"+body), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []instructions.Command
	for _, s := range p.Stages[0].Steps {
		out = append(out, s.Cmd)
	}
	return out
}

func apply(t *testing.T, st *StageState, body string) {
	t.Helper()
	for _, c := range stepsOf(t, body) {
		if err := st.Scope.ExpandCommand(c, st.Env()); err != nil {
			t.Fatal(err)
		}
		if ok, err := st.ApplyConfig(c); err != nil || !ok {
			t.Fatalf("ApplyConfig(%s): %v, %v", c.Name(), ok, err)
		}
	}
}

func TestApplyConfig(t *testing.T) {
	st := &StageState{Scope: NewArgs(map[string]string{"V": "2"}, "linux", "amd64", '\\').NewScope()}
	st.Config.Config.Cmd = []string{"inherited"}
	apply(t, st, `ARG V=1
ENV A=$V B="two words"
ENV C=${A}x
LABEL version=$V "k 2"=v
MAINTAINER Kto To Wie
WORKDIR /srv
WORKDIR app
USER 1000:1000
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s CMD wget -q localhost
ONBUILD RUN echo child
SHELL ["/bin/ash", "-e", "-c"]
ENTRYPOINT ["/bin/tini"]
`)
	c := st.Config.Config
	want := []string{"A=2", "B=two words", "C=2x"}
	if !slices.Equal(c.Env, want) {
		t.Errorf("Env = %q, want %q", c.Env, want)
	}
	if c.Labels["version"] != "2" || c.Labels["k 2"] != "v" {
		t.Errorf("Labels = %v", c.Labels)
	}
	if st.Config.Author != "Kto To Wie" {
		t.Errorf("Author = %q", st.Config.Author)
	}
	if c.WorkingDir != "/srv/app" || c.User != "1000:1000" || c.StopSignal != "SIGQUIT" {
		t.Errorf("WorkingDir %q User %q StopSignal %q", c.WorkingDir, c.User, c.StopSignal)
	}
	for _, p := range []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("ExposedPorts %v lacks %s", c.ExposedPorts, p)
		}
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("Volumes = %v", c.Volumes)
	}
	if c.Healthcheck == nil || c.Healthcheck.Interval.Seconds() != 5 || !slices.Equal(c.Healthcheck.Test, []string{"CMD-SHELL", "wget -q localhost"}) {
		t.Errorf("Healthcheck = %+v", c.Healthcheck)
	}
	if !slices.Equal(c.OnBuild, []string{"RUN echo child"}) {
		t.Errorf("OnBuild = %q", c.OnBuild)
	}
	if !slices.Equal(c.Entrypoint, []string{"/bin/tini"}) || c.Cmd != nil {
		t.Errorf("Entrypoint %q Cmd %q: a new ENTRYPOINT drops the inherited CMD", c.Entrypoint, c.Cmd)
	}
	apply(t, st, "CMD echo $HOME\n")
	if !slices.Equal(st.Config.Config.Cmd, []string{"/bin/ash", "-e", "-c", "echo $HOME"}) {
		t.Errorf("shell-form CMD under SHELL = %q", st.Config.Config.Cmd)
	}
	apply(t, st, "ENTRYPOINT [\"/e\"]\n")
	if st.Config.Config.Cmd == nil {
		t.Error("a CMD of this stage must survive a later ENTRYPOINT")
	}
	if got := st.Scope.RunEnv(st.Env()); !slices.Contains(got, "V=2") || !slices.Contains(got, "A=2") {
		t.Errorf("RunEnv = %q", got)
	}
}

func TestArgs(t *testing.T) {
	a := NewArgs(map[string]string{"GIVEN": "g", "UNUSED": "u", "HTTP_PROXY": "http://p"}, "linux", "arm64", '\\')
	p, err := Parse("Dockerfile", []byte("ARG BASE=demo\nARG GIVEN=default\nARG TAG=${BASE}-1\nFROM $BASE:$TAG\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.MetaArgs {
		if err := a.DeclareMeta(s.Cmd.(*instructions.ArgCommand)); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := a.ExpandMeta(p.Stages[0].Base); got != "demo:demo-1" {
		t.Errorf("FROM expands to %q", got)
	}
	if got, _ := a.ExpandMeta("$TARGETARCH/$GIVEN"); got != "arm64/g" {
		t.Errorf("meta expansion %q", got)
	}
	s := a.NewScope()
	// A global ARG is visible in a stage only when declared there.
	if got, _ := s.Expand("[$BASE]", nil); got != "[]" {
		t.Errorf("undeclared global ARG expands to %q", got)
	}
	for _, c := range stepsOf(t, "ARG BASE\nARG LOCAL=l\nARG NOVALUE\n") {
		if err := s.Declare(c.(*instructions.ArgCommand), nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.KV(); !slices.Equal(got, []string{"BASE=demo", "LOCAL=l"}) {
		t.Errorf("KV = %q", got)
	}
	// ENV wins over ARG.
	if got, _ := s.Expand("$LOCAL", []string{"LOCAL=env"}); got != "env" {
		t.Errorf("ENV should win over ARG: %q", got)
	}
	if got := a.Unconsumed(); !slices.Equal(got, []string{"UNUSED"}) {
		t.Errorf("Unconsumed = %q (proxy variables need no ARG)", got)
	}
	if env := s.RunEnv(nil); !slices.Contains(env, "HTTP_PROXY=http://p") {
		t.Errorf("RunEnv lacks the proxy: %q", env)
	}
}

func TestRunArgs(t *testing.T) {
	cfg := &Image{}
	cmds := stepsOf(t, "RUN echo $HOME && ls\nRUN [\"/bin/echo\", \"a b\"]\nRUN <<EOF\necho one\necho two\nEOF\n")
	got := RunArgs(cfg, cmds[0].(*instructions.RunCommand))
	if !slices.Equal(got, []string{"/bin/sh", "-c", "echo $HOME && ls"}) {
		t.Errorf("shell form: %q", got)
	}
	got = RunArgs(cfg, cmds[1].(*instructions.RunCommand))
	if !slices.Equal(got, []string{"/bin/echo", "a b"}) {
		t.Errorf("exec form: %q", got)
	}
	got = RunArgs(cfg, cmds[2].(*instructions.RunCommand))
	if len(got) != 3 || got[2] != "echo one\necho two\n" {
		t.Errorf("here-document: %q", got)
	}
}

func TestBadValues(t *testing.T) {
	for _, body := range []string{"EXPOSE 0\n", "EXPOSE 80/xyz\n", "EXPOSE 90-80\n", "STOPSIGNAL SIGNOPE\n", "STOPSIGNAL 99\n"} {
		st := &StageState{Scope: NewArgs(nil, "linux", "amd64", '\\').NewScope()}
		c := stepsOf(t, body)[0]
		if _, err := st.ApplyConfig(c); err == nil {
			t.Errorf("%q was accepted", body)
		}
	}
}

func TestCacheKey(t *testing.T) {
	key := func(parent, body string, args []string, files string) string {
		t.Helper()
		c := stepsOf(t, body)[0]
		scope := NewArgs(nil, "linux", "amd64", '\\').NewScope()
		if err := scope.ExpandCommand(c, []string{"V=1"}); err != nil {
			t.Fatal(err)
		}
		k, err := CacheKey(parent, c, args, files)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key("p1", "RUN echo hi\n", []string{"A=1"}, "")
	if again := key("p1", "RUN echo hi\n", []string{"A=1"}, ""); again != base {
		t.Error("the same step gave two keys")
	}
	for name, k := range map[string]string{
		"parent":      key("p2", "RUN echo hi\n", []string{"A=1"}, ""),
		"instruction": key("p1", "RUN echo ho\n", []string{"A=1"}, ""),
		"arg value":   key("p1", "RUN echo hi\n", []string{"A=2"}, ""),
		"arg added":   key("p1", "RUN echo hi\n", []string{"A=1", "B=1"}, ""),
		"files":       key("p1", "RUN echo hi\n", []string{"A=1"}, "sha256:x"),
		"exec form":   key("p1", "RUN [\"echo\", \"hi\"]\n", []string{"A=1"}, ""),
	} {
		if k == base {
			t.Errorf("changing the %s did not change the key", name)
		}
	}
	// Expansion happens before the key: the same text with a different variable value differs,
	// and two spellings of the same value agree.
	if key("p", "ENV X=$V\n", nil, "") != key("p", "ENV X=1\n", nil, "") {
		t.Error("ENV X=$V (V=1) and ENV X=1 should share a key")
	}
	if key("p", "COPY a /b\n", nil, "sha256:1") == key("p", "COPY a /c\n", nil, "sha256:1") {
		t.Error("the COPY destination is not in the key")
	}
}
