package build

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Plan is a parsed Dockerfile: the global ARGs before the first FROM, and the stages up to and
// including the target.
type Plan struct {
	File        string // the Dockerfile's name, for messages
	MetaArgs    []*Step
	Stages      []*Stage
	EscapeToken rune
}

// Stage is one FROM and the instructions under it.
type Stage struct {
	Index    int
	Name     string // lower case, "" when the stage has no AS
	Base     string // the FROM argument, not yet expanded
	Platform string // the --platform flag, not yet expanded
	Line     int
	Text     string
	Steps    []*Step
}

// Step is one instruction with where it came from.
type Step struct {
	Line int
	Text string // the instruction as written (continuation lines joined)
	Cmd  instructions.Command
}

// Error is a Dockerfile error with its file and line (0 when not tied to a line).
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an Error for a step.
func (p *Plan) Errorf(line int, format string, args ...any) error {
	return &Error{File: p.File, Line: line, Err: fmt.Errorf(format, args...)}
}

// Parse reads a Dockerfile and keeps the stages up to target ("" means the last stage).
func Parse(file string, data []byte, target string) (*Plan, error) {
	p := &Plan{File: file}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, &Error{File: file, Line: errorLine(err), Err: cleanParseError(err)}
	}
	p.EscapeToken = res.EscapeToken
	for _, n := range res.AST.Children {
		v, err := instructions.ParseInstruction(n)
		if err != nil {
			return nil, &Error{File: file, Line: n.StartLine, Err: cleanParseError(err)}
		}
		text := strings.TrimSpace(n.Original)
		switch c := v.(type) {
		case *instructions.Stage:
			for _, s := range p.Stages {
				if c.Name != "" && s.Name == c.Name {
					return nil, &Error{File: file, Line: n.StartLine, Err: fmt.Errorf("duplicate stage name %q (also on line %d)", c.Name, s.Line)}
				}
			}
			p.Stages = append(p.Stages, &Stage{Index: len(p.Stages), Name: c.Name, Base: c.BaseName, Platform: c.Platform, Line: n.StartLine, Text: text})
		case *instructions.ArgCommand:
			st := &Step{Line: n.StartLine, Text: text, Cmd: c}
			if len(p.Stages) == 0 {
				p.MetaArgs = append(p.MetaArgs, st)
			} else {
				cur := p.Stages[len(p.Stages)-1]
				cur.Steps = append(cur.Steps, st)
			}
		case instructions.Command:
			if len(p.Stages) == 0 {
				return nil, &Error{File: file, Line: n.StartLine, Err: fmt.Errorf("%s before the first FROM: a Dockerfile must start with FROM (only ARG may come before it)", strings.ToUpper(c.Name()))}
			}
			if err := checkSupported(c); err != nil {
				return nil, &Error{File: file, Line: n.StartLine, Err: err}
			}
			cur := p.Stages[len(p.Stages)-1]
			cur.Steps = append(cur.Steps, &Step{Line: n.StartLine, Text: text, Cmd: c})
		default:
			return nil, &Error{File: file, Line: n.StartLine, Err: fmt.Errorf("unsupported instruction %s", n.Value)}
		}
	}
	if len(p.Stages) == 0 {
		return nil, &Error{File: file, Err: errors.New("no FROM instruction: a Dockerfile needs at least one")}
	}
	if target != "" {
		i, ok := p.StageIndex(target)
		if !ok {
			var names []string
			for _, s := range p.Stages {
				if s.Name != "" {
					names = append(names, s.Name)
				}
			}
			return nil, &Error{File: file, Err: fmt.Errorf("target stage %q not found (stages: %s)", target, strings.Join(names, ", "))}
		}
		p.Stages = p.Stages[:i+1]
	}
	return p, nil
}

// StageIndex finds a stage by name (case-insensitive) or by index.
func (p *Plan) StageIndex(name string) (int, bool) {
	for i, s := range p.Stages {
		if s.Name != "" && strings.EqualFold(s.Name, name) {
			return i, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < len(p.Stages) {
		return n, true
	}
	return -1, false
}

// StepCount is the number of steps a build of the plan prints: every FROM and every
// instruction of the stages kept.
func (p *Plan) StepCount() int {
	n := 0
	for _, s := range p.Stages {
		n += 1 + len(s.Steps)
	}
	return n
}

// checkSupported refuses what parses but nook does not do, rather than ignoring it.
func checkSupported(c instructions.Command) error {
	switch c := c.(type) {
	case *instructions.RunCommand:
		for _, f := range c.FlagsUsed {
			if f != "mount" {
				return fmt.Errorf("RUN --%s is not supported by nook build", f)
			}
		}
		if slices.Contains(c.FlagsUsed, "mount") {
			// Checked here with the words as written, so that an unsupported mount fails before
			// any step runs; the step checks them again after expanding its variables.
			probe := *c
			if err := probe.Expand(func(w string) (string, error) { return w, nil }); err != nil {
				return err
			}
			if _, err := RunMounts(&probe); err != nil {
				return err
			}
		}
		if len(c.Files) > 0 && !(c.PrependShell && len(c.CmdLine) == 1) {
			return errors.New("RUN with here-documents needs the shell form (RUN <<EOF, or RUN COMMAND <<EOF)")
		}
	case *instructions.AddCommand:
		if c.KeepGitDir != nil {
			return errors.New("ADD --keep-git-dir is not supported by nook build")
		}

	case *instructions.CmdCommand:
		if len(c.Files) > 0 {
			return errors.New("CMD with here-documents is not supported")
		}
	case *instructions.EntrypointCommand:
		if len(c.Files) > 0 {
			return errors.New("ENTRYPOINT with here-documents is not supported")
		}
	}
	return nil
}

// errorLine finds the line an error of buildkit's parser points at.
func errorLine(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) {
		for _, rs := range le.Locations {
			for _, r := range rs {
				if r.Start.Line > 0 {
					return r.Start.Line
				}
			}
		}
	}
	var ue *instructions.UnknownInstructionError
	if errors.As(err, &ue) {
		return ue.Line
	}
	return 0
}

// cleanParseError drops the location wrappers (the line is printed separately) but keeps the
// message, including buildkit's "did you mean" suggestion.
func cleanParseError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "dockerfile parse error on line ")
	if i := strings.Index(msg, ": "); i > 0 {
		if _, err := strconv.Atoi(msg[:i]); err == nil {
			msg = msg[i+2:]
		}
	}
	return errors.New(msg)
}

// changeInstructions are the instructions `nook commit --change` applies, as Docker's.
var changeInstructions = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// ParseChange parses one `nook commit --change` value: a Dockerfile instruction that changes
// only the image's configuration.
func ParseChange(line string) (instructions.Command, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid --change %q: %s", line, fmt.Sprintf(format, args...))
	}
	res, err := parser.Parse(strings.NewReader(line + "\n"))
	if err != nil {
		return nil, bad("%v", cleanParseError(err))
	}
	if len(res.AST.Children) != 1 {
		return nil, bad("give one instruction per --change")
	}
	n := res.AST.Children[0]
	if !slices.Contains(changeInstructions, strings.ToUpper(n.Value)) {
		return nil, bad("%s cannot be applied by a commit: use one of %s", strings.ToUpper(n.Value), strings.Join(changeInstructions, ", "))
	}
	v, err := instructions.ParseInstruction(n)
	if err != nil {
		return nil, bad("%v", cleanParseError(err))
	}
	c, ok := v.(instructions.Command)
	if !ok {
		return nil, bad("not an instruction")
	}
	return c, nil
}

// ParseTrigger parses an ONBUILD trigger of a base image as the instruction it holds.
func ParseTrigger(expr string) (*Step, error) {
	res, err := parser.Parse(strings.NewReader(expr + "\n"))
	if err != nil {
		return nil, cleanParseError(err)
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("trigger %q is not one instruction", expr)
	}
	n := res.AST.Children[0]
	v, err := instructions.ParseInstruction(n)
	if err != nil {
		return nil, cleanParseError(err)
	}
	c, ok := v.(instructions.Command)
	if !ok {
		return nil, fmt.Errorf("trigger %q: FROM cannot be a trigger", expr)
	}
	switch c.(type) {
	case *instructions.OnbuildCommand, *instructions.MaintainerCommand:
		return nil, fmt.Errorf("trigger %q: %s is not allowed as a trigger", expr, strings.ToUpper(c.Name()))
	}
	if err := checkSupported(c); err != nil {
		return nil, err
	}
	return &Step{Text: strings.TrimSpace(n.Original), Cmd: c}, nil
}
