//go:build linux && !amd64 && !arm64

package runtime

// No syscall table for this architecture: a seccomp profile is refused
// with an error rather than applied wrongly.
var seccompArches []seccompArch
