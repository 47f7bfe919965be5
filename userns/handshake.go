package userns

// The handshake between the nook CLI (outside) and the engine (inside the user namespace).
//
//	nook CLI (uid U, host)                 nook-runtime shim                      nook-engine
//	──────────────────────                 ─────────────────                      ───────────
//	plan := idmap.Resolve()
//	open EngineExe       ──── fd 4 ───┐
//	pipe                 ──── fd 3 ───┤
//	clone(NEWUSER|NEWNS, setsid,      │
//	      pdeathsig=KILL) ────────────┴──► read(fd 3) ... blocks
//	plan.Apply(pid):
//	  newuidmap pid 0 U 1 1 S N
//	  newgidmap pid 0 G 1 1 S N
//	write(fd 3, "mapped\n") ─────────────► "mapped": now uid 0 in the namespace
//	                                        execveat(fd 4) ───────────────────► a fresh exec as uid 0:
//	forward every signal to pid ────────────────────────────────────────────►  full capabilities,
//	wait(pid) ◄──────────────────────────────────────────────────────────────  exit status
//
// Why a shim: the child of clone(CLONE_NEWUSER) execs before its maps exist, as an unmapped
// user, so the kernel gives that exec no capabilities (capabilities(7), "Capabilities and
// execution of programs by root"). Only an exec made after the maps are written runs as root of
// the namespace with a full permitted set. The shim is the small nook-runtime binary so that
// this extra exec costs about a millisecond instead of the engine's package initialisation.
//
// Why fd 4: the engine binary (bin/nook-engine, found by EnginePath when the lean CLI runs this;
// /proc/self/exe when nook-engine itself is the CLI) is opened before the clone, so replacing it
// on disk meanwhile cannot change what runs inside.
//
// fd 5 is the control pipe, the engine's way to tell the CLI that a container's monitor must
// outlive it or that work is left for the host (diagram in control_linux.go).
//
// Every wait has a limit: the shim gives up when the pipe closes (the CLI died) or after
// mapTimeout; the CLI kills the shim if the helpers fail or hang.

import "time"

const (
	// StageEnv marks a process as the engine; its value is the stage name.
	StageEnv = "_NOOK_STAGE"
	// stageEngine is StageEnv's value inside the user namespace.
	stageEngine = "engine"
	// PlanEnv carries the mapping summary (mode;uidmap;gidmap;source;warning) to the engine,
	// so `nook info` can show it without resolving it again.
	PlanEnv = "_NOOK_IDMAP"

	syncFd = 3
	exeFd  = 4

	// MsgMapped is what the parent writes on the sync pipe once the maps are in place.
	MsgMapped  = "mapped\n"
	mapTimeout = 30 * time.Second
)
