package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is an image's configuration as Docker writes it: OCI plus Healthcheck, OnBuild and
// Shell, which the OCI specification lacks.
type Image = dockerspec.DockerOCIImage

// DefaultShell is what shell-form instructions run with when no SHELL was given.
var DefaultShell = []string{"/bin/sh", "-c"}

// proxyArgs may be given with --build-arg without an ARG; they reach RUN but, as in Docker,
// stay out of the cache key and the image's history.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
}

// Args holds the build arguments of one build: the --build-arg values, the global ARGs and
// which of the given values some ARG consumed.
type Args struct {
	given    map[string]string
	meta     map[string]string
	metaSet  map[string]bool
	consumed map[string]bool
	escape   rune
}

// NewArgs starts a build's arguments from --build-arg values and the automatic platform
// arguments (TARGETPLATFORM, TARGETOS, TARGETARCH, BUILDPLATFORM, ...) of this host.
func NewArgs(given map[string]string, goos, goarch string, escape rune) *Args {
	a := &Args{given: given, meta: map[string]string{}, metaSet: map[string]bool{}, consumed: map[string]bool{}, escape: escape}
	if a.escape == 0 {
		a.escape = '\\'
	}
	plat := goos + "/" + goarch
	for k, v := range map[string]string{
		"TARGETPLATFORM": plat, "TARGETOS": goos, "TARGETARCH": goarch, "TARGETVARIANT": "",
		"BUILDPLATFORM": plat, "BUILDOS": goos, "BUILDARCH": goarch, "BUILDVARIANT": "",
	} {
		a.meta[k], a.metaSet[k] = v, true
	}
	return a
}

// DeclareMeta applies a global ARG (before the first FROM).
func (a *Args) DeclareMeta(c *instructions.ArgCommand) error {
	for _, kv := range c.Args {
		name, err := a.expand(kv.Key, a.metaEnv())
		if err != nil {
			return err
		}
		if v, ok := a.given[name]; ok {
			a.consumed[name] = true
			a.meta[name], a.metaSet[name] = v, true
			continue
		}
		if kv.Value != nil {
			v, err := a.expand(*kv.Value, a.metaEnv())
			if err != nil {
				return err
			}
			a.meta[name], a.metaSet[name] = v, true
		} else {
			delete(a.meta, name)
			a.metaSet[name] = true
		}
	}
	return nil
}

func (a *Args) metaEnv() []string {
	var env []string
	for k, v := range a.meta {
		env = append(env, k+"="+v)
	}
	return env
}

// ExpandMeta expands a FROM line's words with the global ARGs.
func (a *Args) ExpandMeta(word string) (string, error) { return a.expand(word, a.metaEnv()) }

func (a *Args) expand(word string, env []string) (string, error) {
	lex := shell.NewLex(a.escape)
	out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(env))
	return out, err
}

// Unconsumed lists the --build-arg names that no ARG declared (proxy variables excepted).
func (a *Args) Unconsumed() []string {
	var out []string
	for k := range a.given {
		if !a.consumed[k] && !proxyArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Scope is the ARGs declared in one stage, in order.
type Scope struct {
	args  *Args
	names []string
	vals  map[string]string
}

// NewScope starts a stage's argument scope.
func (a *Args) NewScope() *Scope { return &Scope{args: a, vals: map[string]string{}} }

// Declare applies a stage's ARG, with env the stage's environment at that point.
func (s *Scope) Declare(c *instructions.ArgCommand, env []string) error {
	for _, kv := range c.Args {
		name, err := s.Expand(kv.Key, env)
		if err != nil {
			return err
		}
		val, set := "", false
		if v, ok := s.args.given[name]; ok {
			s.args.consumed[name] = true
			val, set = v, true
		} else if kv.Value != nil {
			if val, err = s.Expand(*kv.Value, env); err != nil {
				return err
			}
			set = true
		} else if v, ok := s.args.meta[name]; ok {
			val, set = v, true
		}
		if !slices.Contains(s.names, name) {
			s.names = append(s.names, name)
		}
		if set {
			s.vals[name] = val
		} else {
			delete(s.vals, name)
		}
	}
	return nil
}

// KV lists the declared arguments that have a value, as NAME=VALUE, in declaration order.
func (s *Scope) KV() []string {
	var out []string
	for _, n := range s.names {
		if v, ok := s.vals[n]; ok {
			out = append(out, n+"="+v)
		}
	}
	return out
}

// RunEnv is the environment of a RUN: the image's, plus the declared arguments and given
// proxy variables that the image does not set.
func (s *Scope) RunEnv(env []string) []string {
	out := slices.Clone(env)
	have := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	for _, kv := range s.KV() {
		if k, _, _ := strings.Cut(kv, "="); !have[k] {
			out = append(out, kv)
		}
	}
	for k, v := range s.args.given {
		if proxyArgs[k] && !have[k] && s.vals[k] == "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Expand substitutes variables in word; ENV values win over ARG values of the same name.
func (s *Scope) Expand(word string, env []string) (string, error) {
	return s.args.expand(word, append(s.KV(), env...))
}

// ExpandWords is Expand followed by splitting into words, as EXPOSE needs.
func (s *Scope) ExpandWords(word string, env []string) ([]string, error) {
	lex := shell.NewLex(s.args.escape)
	return lex.ProcessWords(word, shell.EnvsFromSlice(append(s.KV(), env...)))
}

// ExpandCommand expands the variables of a command in place, for the commands Docker expands.
func (s *Scope) ExpandCommand(c instructions.Command, env []string) error {
	ex := func(w string) (string, error) { return s.Expand(w, env) }
	if e, ok := c.(*instructions.ExposeCommand); ok {
		var ports []string
		for _, p := range e.Ports {
			ws, err := s.ExpandWords(p, env)
			if err != nil {
				return err
			}
			ports = append(ports, ws...)
		}
		e.Ports = ports
		return nil
	}
	if r, ok := c.(*instructions.RunCommand); ok {
		// The shell expands RUN's command, with the arguments in its environment; only the
		// --mount flags are expanded here, as BuildKit does.
		return r.Expand(ex)
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(ex); err != nil {
			return err
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Here-documents of COPY and ADD whose delimiter is not quoted: variables are expanded,
		// quotes are kept as written (BuildKit's SkipProcessQuotes).
		return e.ExpandRaw(func(w string) (string, error) {
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			out, _, err := lex.ProcessWord(w, shell.EnvsFromSlice(append(s.KV(), env...)))
			return out, err
		})
	}
	return nil
}

// ShellCommand is what a shell-form command line runs: the image's SHELL (or /bin/sh -c)
// followed by the line.
func ShellCommand(cfg *Image, line []string) []string {
	sh := cfg.Config.Shell
	if len(sh) == 0 {
		sh = DefaultShell
	}
	return append(slices.Clone(sh), strings.Join(line, " "))
}

// RunArgs is the command a RUN step executes.
func RunArgs(cfg *Image, c *instructions.RunCommand) []string {
	if len(c.Files) > 0 && len(c.CmdLine) == 1 {
		if _, _, ok := RunScript(c); ok {
			return []string{ScriptDir + c.Files[0].Name}
		}
		if parser.MustParseHeredoc(c.CmdLine[0]) != nil {
			// RUN <<EOF alone: the document is the shell's script, as BuildKit runs it, so
			// that it works with shells without here-documents too.
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			return ShellCommand(cfg, []string{data})
		}
		// A command that reads here-documents (RUN cat <<EOF >/f, RUN python3 <<EOF): the
		// line and its documents go back together to the shell, which reads them itself.
		full := c.CmdLine[0]
		for _, f := range c.Files {
			full += "\n" + f.Data + f.Name
		}
		return ShellCommand(cfg, []string{full})
	}
	if c.PrependShell {
		return ShellCommand(cfg, c.CmdLine)
	}
	return slices.Clone(c.CmdLine)
}

// ScriptDir is where a RUN here-document that starts with #! is mounted in the step's
// container, as an executable file named after its delimiter (BuildKit's place for it).
const ScriptDir = "/dev/pipes/"

// RunScript reports a RUN step that is a single here-document starting with #!: it runs as an
// executable file (its interpreter named by the #! line), with the given name and content.
func RunScript(c *instructions.RunCommand) (name, data string, ok bool) {
	if len(c.Files) != 1 || len(c.CmdLine) != 1 || parser.MustParseHeredoc(c.CmdLine[0]) == nil {
		return "", "", false
	}
	data = c.Files[0].Data
	if c.Files[0].Chomp {
		data = parser.ChompHeredocContent(data)
	}
	if !strings.HasPrefix(data, "#!") {
		return "", "", false
	}
	return c.Files[0].Name, data, true
}

// SetEnv sets NAME=VALUE in env, replacing an earlier value.
func SetEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if n, _, _ := strings.Cut(kv, "="); n == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// StageState is what a stage's instructions change as they run.
type StageState struct {
	Config Image
	Scope  *Scope
	CmdSet bool // CMD was given in this stage (ENTRYPOINT then keeps it)
}

// Env is the stage's environment (the image's Env).
func (st *StageState) Env() []string { return st.Config.Config.Env }

// Workdir resolves p against the stage's working directory.
func (st *StageState) Workdir(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	wd := st.Config.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	return path.Join(wd, p)
}

// ApplyConfig applies an instruction that changes only the configuration (every instruction
// except FROM, RUN, COPY and ADD; WORKDIR also creates its directory, which is the engine's
// part). It reports false for instructions it does not handle. The command must be expanded.
func (st *StageState) ApplyConfig(c instructions.Command) (bool, error) {
	cfg := &st.Config.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = SetEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		st.Config.Author = c.Maintainer
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = st.Workdir(c.Path)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			ports, err := parsePorts(p)
			if err != nil {
				return true, err
			}
			for _, q := range ports {
				cfg.ExposedPorts[q] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return true, errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		if err := checkSignal(c.Signal); err != nil {
			return true, err
		}
		cfg.StopSignal = c.Signal
	case *instructions.ShellCommand:
		cfg.Shell = slices.Clone(c.Shell)
	case *instructions.HealthCheckCommand:
		h := *c.Health
		cfg.Healthcheck = &h
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.CmdCommand:
		if c.PrependShell {
			cfg.Cmd = ShellCommand(&st.Config, c.CmdLine)
		} else {
			cfg.Cmd = slices.Clone(c.CmdLine)
		}
		st.CmdSet = true
	case *instructions.EntrypointCommand:
		switch {
		case c.CmdLine == nil:
			cfg.Entrypoint = nil
		case c.PrependShell:
			cfg.Entrypoint = ShellCommand(&st.Config, c.CmdLine)
		default:
			cfg.Entrypoint = slices.Clone(c.CmdLine)
		}
		if !st.CmdSet {
			cfg.Cmd = nil // as Docker: an inherited CMD does not survive a new ENTRYPOINT
		}
	case *instructions.ArgCommand:
		return true, st.Scope.Declare(c, cfg.Env)
	default:
		return false, nil
	}
	return true, nil
}

// parsePorts turns "80", "80/udp", "8000-8002/tcp" into Docker's port keys.
func parsePorts(p string) ([]string, error) {
	num, proto, _ := strings.Cut(p, "/")
	proto = strings.ToLower(proto)
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid port %q: protocol must be tcp, udp or sctp", p)
	}
	lo, hi, isRange := strings.Cut(num, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || a == 0 {
		return nil, fmt.Errorf("invalid port %q", p)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return nil, fmt.Errorf("invalid port range %q", p)
		}
	}
	var out []string
	for i := a; i <= b; i++ {
		out = append(out, fmt.Sprintf("%d/%s", i, proto))
	}
	return out, nil
}

var signalNames = map[string]bool{"ABRT": true, "ALRM": true, "BUS": true, "CHLD": true, "CONT": true, "FPE": true, "HUP": true,
	"ILL": true, "INT": true, "IO": true, "IOT": true, "KILL": true, "PIPE": true, "PROF": true, "PWR": true, "QUIT": true, "SEGV": true,
	"STKFLT": true, "STOP": true, "SYS": true, "TERM": true, "TRAP": true, "TSTP": true, "TTIN": true, "TTOU": true, "URG": true,
	"USR1": true, "USR2": true, "VTALRM": true, "WINCH": true, "XCPU": true, "XFSZ": true}

func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return fmt.Errorf("invalid signal %q", s)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if signalNames[name] || strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return nil
	}
	return fmt.Errorf("invalid signal %q", s)
}

// AddHistory records a step in the image's history.
func AddHistory(cfg *Image, createdBy string, empty bool, now time.Time) {
	cfg.Created = &now
	cfg.History = append(cfg.History, imgspecv1.History{Created: &now, CreatedBy: createdBy, Comment: "nook build", EmptyLayer: empty})
}

// CacheKeyVersion changes when what a cached step produces changes meaning.
const CacheKeyVersion = "nook-build-cache-v1"

// CacheKey is the key of a step's result in the layer cache: the parent image, the
// instruction after expansion, the build arguments it sees, and (COPY, ADD) the digest of the
// files it reads. Anything else a step depends on is part of its parent image.
func CacheKey(parentID string, c instructions.Command, args []string, filesDigest string) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	h := sha256.New()
	for _, part := range []string{CacheKeyVersion, parentID, strings.ToUpper(c.Name()), string(body), strings.Join(args, "\x00"), filesDigest} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
