package build

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestParsePlan(t *testing.T) {
	df := `ARG BASE=demo
FROM $BASE AS build
RUN echo one \
    two
COPY a b /dst/
FROM scratch
COPY --from=build /x /x
CMD ["/x"]
`
	p, err := Parse("Dockerfile", []byte(df), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.MetaArgs) != 1 || len(p.Stages) != 2 {
		t.Fatalf("meta args %d, stages %d; want 1, 2", len(p.MetaArgs), len(p.Stages))
	}
	s := p.Stages[0]
	if s.Name != "build" || s.Base != "$BASE" || s.Line != 2 || len(s.Steps) != 2 {
		t.Errorf("stage 0 = %+v", s)
	}
	if got := s.Steps[0].Text; got != "RUN echo one     two" && !strings.HasPrefix(got, "RUN echo one") {
		t.Errorf("step text %q", got)
	}
	if s.Steps[1].Line != 5 {
		t.Errorf("COPY on line %d, want 5", s.Steps[1].Line)
	}
	if _, ok := s.Steps[0].Cmd.(*instructions.RunCommand); !ok {
		t.Errorf("step 0 is %T", s.Steps[0].Cmd)
	}
	if n := p.StepCount(); n != 6 {
		t.Errorf("StepCount = %d, want 6", n)
	}
	if i, ok := p.StageIndex("BUILD"); !ok || i != 0 {
		t.Errorf("StageIndex(BUILD) = %d, %v", i, ok)
	}
	if i, ok := p.StageIndex("1"); !ok || i != 1 {
		t.Errorf("StageIndex(1) = %d, %v", i, ok)
	}
}

func TestParseTarget(t *testing.T) {
	df := "FROM demo AS a\nRUN true\nFROM demo AS b\nRUN false\nFROM demo AS c\n"
	p, err := Parse("Dockerfile", []byte(df), "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages) != 2 || p.StepCount() != 4 {
		t.Errorf("target b: %d stages, %d steps; want 2, 4", len(p.Stages), p.StepCount())
	}
	_, err = Parse("Dockerfile", []byte(df), "nope")
	assertFileLineErr(t, err, "Dockerfile", 0, `target stage "nope" not found`)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, df string
		line     int
		want     string
	}{
		{"unknown instruction", "FROM demo\nRUN true\nFOO bar\n", 3, "unknown instruction: FOO"},
		{"copy one argument", "FROM demo\nCOPY onlyone\n", 2, "COPY requires at least two arguments"},
		{"from arguments", "FROM a b\n", 1, "FROM requires either one or three arguments"},
		{"before from", "# c\nRUN true\nFROM demo\n", 2, "before the first FROM"},
		{"no from", "ARG X=1\n", 0, "no FROM instruction"},
		{"empty", "", 0, "file with no instructions"},
		{"bad flag", "FROM demo\nCOPY --nope=1 a b\n", 2, "unknown flag: --nope"},
		{"duplicate stage", "FROM demo AS x\nFROM demo AS x\n", 2, "duplicate stage name"},
		{"run mount secret from", "FROM demo\nRUN true\nRUN --mount=type=secret,id=k,from=x cat /run/secrets/k\n", 3, "secret mount should not have a from"},
		{"run mount secret twice", "FROM demo\nRUN --mount=type=secret,id=k --mount=type=secret,id=j,target=/run/secrets/k true\n", 2, "mounted twice"},
		{"run mount ssh", "FROM demo\nRUN --mount=type=ssh ssh-add -l\n", 2, "RUN --mount=type=ssh is not supported"},
		{"run mount unknown", "FROM demo\nRUN --mount=type=nfs,target=/x true\n", 2, "unsupported mount type"},
		{"run mount bind rw", "FROM demo\nRUN --mount=type=bind,target=/src,rw true\n", 2, "type=bind,rw is not supported"},
		{"run mount no target", "FROM demo\nRUN --mount=type=cache,id=x true\n", 2, "needs a target"},
		{"run mount twice", "FROM demo\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/c/ true\n", 2, "mounted twice"},
		{"run network", "FROM demo\nRUN --network=none true\n", 2, "RUN --network is not supported"},
		{"shell not json", "FROM demo\nSHELL /bin/sh -c\n", 2, "SHELL requires the arguments to be in JSON form"},
		{"healthcheck interval", "FROM demo\nHEALTHCHECK --interval=abc CMD true\n", 2, "invalid duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("docker/Dockerfile", []byte(tc.df), "")
			assertFileLineErr(t, err, "docker/Dockerfile", tc.line, tc.want)
		})
	}
}

func assertFileLineErr(t *testing.T, err error, file string, line int, want string) {
	t.Helper()
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T) is not a *build.Error", err, err)
	}
	if be.File != file || be.Line != line {
		t.Errorf("error %q at %s:%d, want %s:%d", err, be.File, be.Line, file, line)
	}
	if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}

func TestParseTrigger(t *testing.T) {
	st, err := ParseTrigger("RUN echo hi")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Cmd.(*instructions.RunCommand); !ok || st.Text != "RUN echo hi" {
		t.Errorf("trigger = %T %q", st.Cmd, st.Text)
	}
	for _, bad := range []string{"ONBUILD RUN x", "FROM demo", "MAINTAINER me", "BOGUS x"} {
		if _, err := ParseTrigger(bad); err == nil {
			t.Errorf("ParseTrigger(%q) succeeded", bad)
		}
	}
}

// FuzzParse checks that no Dockerfile makes the parser or the planner panic, and that an
// accepted plan is consistent.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"FROM demo\nRUN echo hi\n",
		"ARG A=1\nFROM demo AS x\nENV B=$A\nCOPY --from=x a /b\nFROM x\nCMD [\"a\"]\n",
		"FROM scratch\nADD --chown=1:2 --chmod=644 a.tar /\nHEALTHCHECK --interval=5s CMD true\nONBUILD RUN x\n",
		"# syntax=docker/dockerfile:1\n# escape=`\nFROM demo\nRUN echo `\n  hi\n",
		"FROM demo\nRUN <<EOF\necho hi\nEOF\n",
		"FROM demo\nEXPOSE 80 53/udp\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/sh\",\"-c\"]\nVOLUME /v\nUSER 1:1\nWORKDIR a\nLABEL k=v\nMAINTAINER m\nENTRYPOINT e\n",
	} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, df, target string) {
		p, err := Parse("Dockerfile", []byte(df), target)
		if err != nil {
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *build.Error", err)
			}
			return
		}
		if len(p.Stages) == 0 {
			t.Fatal("a plan without stages")
		}
		n := 0
		for i, s := range p.Stages {
			if s.Index != i {
				t.Fatalf("stage %d has index %d", i, s.Index)
			}
			n += 1 + len(s.Steps)
			for _, st := range s.Steps {
				if st.Cmd == nil || st.Line < s.Line {
					t.Fatalf("step %q on line %d in the stage of line %d", st.Text, st.Line, s.Line)
				}
				// Expansion and cache keys must not panic either.
				scope := NewArgs(map[string]string{"A": "1"}, "linux", "amd64", p.EscapeToken).NewScope()
				_ = scope.ExpandCommand(st.Cmd, []string{"X=y"})
				if _, err := CacheKey("parent", st.Cmd, scope.KV(), ""); err != nil {
					t.Fatalf("CacheKey(%q): %v", st.Text, err)
				}
			}
		}
		if n != p.StepCount() {
			t.Fatalf("StepCount %d, counted %d", p.StepCount(), n)
		}
	})
}

func TestRunMounts(t *testing.T) {
	p, err := Parse("Dockerfile", []byte("FROM demo\nARG V=1\n"+
		"RUN --mount=type=cache,target=/root/.cache,id=go-$V,sharing=locked,uid=1000,gid=1000,mode=0700 "+
		"--mount=type=bind,source=src,target=/src --mount=type=bind,from=base,target=/b,source=/etc "+
		"--mount=type=tmpfs,target=/t,size=1m true\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	step := p.Stages[0].Steps[1]
	scope := NewArgs(nil, "linux", "amd64", '\\').NewScope()
	if err := scope.Declare(p.Stages[0].Steps[0].Cmd.(*instructions.ArgCommand), nil); err != nil {
		t.Fatal(err)
	}
	if err := scope.ExpandCommand(step.Cmd, nil); err != nil {
		t.Fatal(err)
	}
	ms, err := RunMounts(step.Cmd.(*instructions.RunCommand))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("%d mounts, want 4", len(ms))
	}
	c := ms[0]
	if c.Type != instructions.MountTypeCache || CacheMountID(c) != "go-1" || c.CacheSharing != instructions.MountSharingLocked ||
		*c.UID != 1000 || *c.GID != 1000 || *c.Mode != 0o700 || c.ReadOnly {
		t.Errorf("cache mount %+v", c)
	}
	if b := ms[1]; b.Type != instructions.MountTypeBind || b.Source != "src" || b.Target != "/src" || !b.ReadOnly || b.From != "" {
		t.Errorf("bind mount %+v", b)
	}
	if b := ms[2]; b.From != "base" || b.Source != "/etc" {
		t.Errorf("bind mount from a stage %+v", b)
	}
	if tm := ms[3]; tm.Type != instructions.MountTypeTmpfs || tm.SizeLimit != 1<<20 {
		t.Errorf("tmpfs mount %+v", tm)
	}
	if id := CacheMountID(&instructions.Mount{Type: instructions.MountTypeCache, Target: "/var/cache/apt/"}); id != "/var/cache/apt" {
		t.Errorf("default cache id %q, want the target", id)
	}
}

// FuzzParseChange checks that no --change line makes the parser panic, that every error is
// one line naming --change, and that what it accepts is one of the instructions a commit
// may apply.
func FuzzParseChange(f *testing.F) {
	for _, s := range []string{`CMD ["echo","hi"]`, "ENV A=1 B=2", "EXPOSE 80/udp", "LABEL a=b", "USER 1:1",
		"WORKDIR /w", "VOLUME /v", "STOPSIGNAL SIGKILL", "ONBUILD RUN x", "ENTRYPOINT sh", "RUN x", "", "CMD [\"a\"\nRUN b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseChange(line)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "invalid --change ") {
				t.Fatalf("ParseChange(%q): error %q does not name --change", line, msg)
			}
			return
		}
		if !slices.Contains(changeInstructions, strings.ToUpper(c.Name())) {
			t.Fatalf("ParseChange(%q) accepted %s", line, c.Name())
		}
	})
}
