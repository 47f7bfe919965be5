// Package runtime is the process side of the container init: hostname,
// rlimits, session, credentials, capabilities and the final exec. It imports
// only the standard library, golang.org/x/sys/unix and the OCI runtime-spec
// types, because it is linked into the small nook-runtime binary.
package runtime
