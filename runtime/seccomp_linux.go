//go:generate go run mksysnum.go $GOMODCACHE/golang.org/x/sys@v0.50.0/unix

package runtime

import (
	"errors"
	"fmt"
	"sort"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// This file compiles the OCI description of a seccomp filter
// (specs.LinuxSeccomp: default action, architectures, per-syscall actions
// with argument comparisons) to a classic BPF program, and loads it. It is
// what libseccomp does for runc, in pure Go so that nook-runtime stays a
// static binary without cgo (see docs/decisions.md).
//
// The program, per architecture the profile names and this build has a
// table for (the native one always):
//
//	ld  [arch]                     seccomp_data.arch
//	jeq AUDIT_ARCH_X, +1           not this arch: ja to the next block
//	ja  next
//	ld  [nr]                       seccomp_data.nr
//	(x86_64) jset 0x40000000       the x32 ABI: refused with ENOSYS
//	jeq NR, ret ACTION             a syscall with an unconditional rule
//	jeq NR, +1 / ja skip / rules   a syscall with argument comparisons:
//	                               each rule's comparisons, then ret ACTION;
//	                               the first rule that matches wins
//	ret DEFAULT
//	next: ...
//	ret KILL_PROCESS               an architecture the profile does not name
//
// Arguments are 64-bit in seccomp_data on every architecture (zero-extended
// for 32-bit ones); classic BPF compares 32 bits at a time, so each
// comparison looks at the high word, then the low word.

const (
	bpfMaxInsns     = 4096       // BPF_MAXINSNS
	x32SyscallBit   = 0x40000000 // __X32_SYSCALL_BIT
	seccompDataNr   = 0
	seccompDataArch = 4
	seccompDataArgs = 16

	auditArchX86_64  = unix.AUDIT_ARCH_X86_64
	auditArchI386    = unix.AUDIT_ARCH_I386
	auditArchAARCH64 = unix.AUDIT_ARCH_AARCH64
	auditArchARM     = unix.AUDIT_ARCH_ARM
)

type sysnum struct {
	name string
	nr   int
}

// seccompArch is one architecture's syscall table, sorted by name
// (seccomp_sysnum_GOARCH.go); the first of seccompArches is the native one.
type seccompArch struct {
	name     specs.Arch
	audit    uint32
	syscalls []sysnum
}

func (a *seccompArch) lookup(name string) (int, bool) {
	i := sort.Search(len(a.syscalls), func(i int) bool { return a.syscalls[i].name >= name })
	if i < len(a.syscalls) && a.syscalls[i].name == name {
		return a.syscalls[i].nr, true
	}
	return 0, false
}

// SeccompProgram is a compiled filter, ready for seccomp(2).
type SeccompProgram struct {
	Insns []unix.SockFilter
	Flags uintptr // SECCOMP_FILTER_FLAG_*
}

// seccompAction returns the SECCOMP_RET_* value of an OCI action.
func seccompAction(a specs.LinuxSeccompAction, errnoRet *uint, defaultErrno uint) (uint32, error) {
	errno := func() uint32 {
		e := defaultErrno
		if errnoRet != nil {
			e = *errnoRet
		}
		return uint32(e) & unix.SECCOMP_RET_DATA
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | errno(), nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | errno(), nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, errors.New("seccomp action SCMP_ACT_NOTIFY: nook has no seccomp agent")
	}
	return 0, fmt.Errorf("seccomp action %q: unknown", a)
}

var seccompFlags = map[specs.LinuxSeccompFlag]uintptr{
	"SECCOMP_FILTER_FLAG_TSYNC":      unix.SECCOMP_FILTER_FLAG_TSYNC,
	"SECCOMP_FILTER_FLAG_LOG":        unix.SECCOMP_FILTER_FLAG_LOG,
	"SECCOMP_FILTER_FLAG_SPEC_ALLOW": unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

const (
	opLd   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAnd  = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgt  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opJa   = unix.BPF_JMP | unix.BPF_JA
	opRet  = unix.BPF_RET | unix.BPF_K
)

// failJump marks a jump target "the end of the rule" until patched.
const failJump = 0xff

// compareArg returns the instructions of one argument comparison; a jump
// offset of failJump means "this rule does not match".
func compareArg(a specs.LinuxSeccompArg) ([]unix.SockFilter, error) {
	if a.Index > 5 {
		return nil, fmt.Errorf("seccomp argument index %d: a system call has 6 arguments", a.Index)
	}
	lo := uint32(seccompDataArgs + 8*a.Index) // little endian: the low word first
	hi := lo + 4
	vlo, vhi := uint32(a.Value), uint32(a.Value>>32)
	const F = failJump
	switch a.Op {
	case specs.OpEqualTo:
		return []unix.SockFilter{stmt(opLd, hi), jump(opJeq, vhi, 0, F), stmt(opLd, lo), jump(opJeq, vlo, 0, F)}, nil
	case specs.OpNotEqual:
		return []unix.SockFilter{stmt(opLd, hi), jump(opJeq, vhi, 0, 2), stmt(opLd, lo), jump(opJeq, vlo, F, 0)}, nil
	case specs.OpMaskedEqual:
		// OCI (as libseccomp): value is the mask, valueTwo the datum.
		mlo, mhi := uint32(a.Value), uint32(a.Value>>32)
		dlo, dhi := uint32(a.ValueTwo), uint32(a.ValueTwo>>32)
		return []unix.SockFilter{
			stmt(opLd, hi), stmt(opAnd, mhi), jump(opJeq, dhi, 0, F),
			stmt(opLd, lo), stmt(opAnd, mlo), jump(opJeq, dlo, 0, F),
		}, nil
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		last := jump(opJgt, vlo, 0, F)
		if a.Op == specs.OpGreaterEqual {
			last = jump(opJge, vlo, 0, F)
		}
		// hi > vhi: match; hi < vhi: no match; equal: compare the low word.
		return []unix.SockFilter{stmt(opLd, hi), jump(opJgt, vhi, 3, 0), jump(opJeq, vhi, 0, F), stmt(opLd, lo), last}, nil
	case specs.OpLessThan, specs.OpLessEqual:
		last := jump(opJge, vlo, F, 0)
		if a.Op == specs.OpLessEqual {
			last = jump(opJgt, vlo, F, 0)
		}
		// hi < vhi: match; hi > vhi: no match; equal: compare the low word.
		return []unix.SockFilter{stmt(opLd, hi), jump(opJge, vhi, 0, 3), jump(opJeq, vhi, 0, F), stmt(opLd, lo), last}, nil
	}
	return nil, fmt.Errorf("seccomp operator %q: unknown", a.Op)
}

// rule is one syscall entry of the profile, for one syscall number.
type rule struct {
	action uint32
	args   []specs.LinuxSeccompArg
}

// ruleBlock compiles a rule: its comparisons (all must hold), then its
// action. A failed comparison jumps past the block.
func ruleBlock(r rule) ([]unix.SockFilter, error) {
	var b []unix.SockFilter
	for _, a := range r.args {
		c, err := compareArg(a)
		if err != nil {
			return nil, err
		}
		b = append(b, c...)
	}
	b = append(b, stmt(opRet, r.action))
	end := len(b)
	for i := range b {
		if b[i].Code&0x07 != unix.BPF_JMP {
			continue
		}
		for _, j := range []*uint8{&b[i].Jt, &b[i].Jf} {
			if *j == failJump {
				off := end - (i + 1)
				if off > 0xfe {
					return nil, errors.New("seccomp rule too long")
				}
				*j = uint8(off)
			}
		}
	}
	return b, nil
}

// CompileSeccomp compiles s for the architectures of this build. Syscall
// names the architecture does not have are skipped, as libseccomp does
// (profiles list every architecture's names).
func CompileSeccomp(s *specs.LinuxSeccomp) (*SeccompProgram, error) {
	return compileSeccomp(s, seccompArches)
}

func compileSeccomp(s *specs.LinuxSeccomp, arches []seccompArch) (*SeccompProgram, error) {
	if len(arches) == 0 {
		return nil, errors.New("seccomp: nook has no syscall table for this architecture")
	}
	p := &SeccompProgram{}
	for _, f := range s.Flags {
		v, ok := seccompFlags[f]
		if !ok {
			return nil, fmt.Errorf("seccomp flag %q: not supported", f)
		}
		p.Flags |= v
	}
	if s.ListenerPath != "" {
		return nil, errors.New("seccomp listenerPath: nook has no seccomp agent")
	}
	defErrno := uint(unix.EPERM)
	if s.DefaultErrnoRet != nil {
		defErrno = *s.DefaultErrnoRet
	}
	def, err := seccompAction(s.DefaultAction, nil, defErrno)
	if err != nil {
		return nil, fmt.Errorf("default action: %w", err)
	}
	// The native architecture always, then the others the profile names.
	var use []*seccompArch
	for i := range arches {
		if i == 0 || len(s.Architectures) == 0 {
			if i == 0 {
				use = append(use, &arches[i])
			}
			continue
		}
		for _, a := range s.Architectures {
			if a == arches[i].name {
				use = append(use, &arches[i])
				break
			}
		}
	}

	var prog []unix.SockFilter
	for _, arch := range use {
		block, err := archBlock(s, arch, def)
		if err != nil {
			return nil, err
		}
		prog = append(prog, stmt(opLd, seccompDataArch), jump(opJeq, arch.audit, 1, 0), stmt(opJa, uint32(len(block))))
		prog = append(prog, block...)
	}
	prog = append(prog, stmt(opRet, unix.SECCOMP_RET_KILL_PROCESS))
	if len(prog) > bpfMaxInsns {
		return nil, fmt.Errorf("seccomp profile too large: %d BPF instructions, the kernel takes %d", len(prog), bpfMaxInsns)
	}
	p.Insns = prog
	return p, nil
}

func archBlock(s *specs.LinuxSeccomp, arch *seccompArch, def uint32) ([]unix.SockFilter, error) {
	rules := map[int][]rule{}
	var order []int
	for _, sc := range s.Syscalls {
		errnoDefault := uint(unix.EPERM)
		act, err := seccompAction(sc.Action, sc.ErrnoRet, errnoDefault)
		if err != nil {
			return nil, fmt.Errorf("syscalls %v: %w", sc.Names, err)
		}
		for _, name := range sc.Names {
			nr, ok := arch.lookup(name)
			if !ok {
				continue
			}
			if _, seen := rules[nr]; !seen {
				order = append(order, nr)
			}
			rules[nr] = append(rules[nr], rule{action: act, args: sc.Args})
		}
	}
	b := []unix.SockFilter{stmt(opLd, seccompDataNr)}
	if arch.audit == auditArchX86_64 {
		b = append(b, jump(opJset, x32SyscallBit, 0, 1), stmt(opRet, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)))
	}
	for _, nr := range order {
		rs := rules[nr]
		if len(rs[0].args) == 0 {
			// The first rule matches always: the others can't be reached.
			b = append(b, jump(opJeq, uint32(nr), 0, 1), stmt(opRet, rs[0].action))
			continue
		}
		var body []unix.SockFilter
		for _, r := range rs {
			rb, err := ruleBlock(r)
			if err != nil {
				return nil, err
			}
			body = append(body, rb...)
			if len(r.args) == 0 {
				break
			}
		}
		body = append(body, stmt(opRet, def))
		b = append(b, jump(opJeq, uint32(nr), 1, 0), stmt(opJa, uint32(len(body))))
		b = append(b, body...)
	}
	return append(b, stmt(opRet, def)), nil
}

// LoadSeccomp installs p on the calling thread (on every thread with
// SECCOMP_FILTER_FLAG_TSYNC). The caller must have set no_new_privs or
// hold CAP_SYS_ADMIN in its user namespace.
func LoadSeccomp(p *SeccompProgram) error {
	if p == nil || len(p.Insns) == 0 {
		return nil
	}
	fprog := unix.SockFprog{Len: uint16(len(p.Insns)), Filter: &p.Insns[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.Flags, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("load seccomp filter (%d instructions): %w", len(p.Insns), errno)
	}
	return nil
}
