// Package monitor starts a container's init and watches it: the shared start path (clone of
// `nook-runtime init` into new namespaces, the "go" message, the terminal), and the per-container
// monitor process of detached containers (`nook-runtime monitor`), with its state file, log
// file and attach socket. It is linked into the lean nook-runtime, so it imports only the
// standard library, x/sys, the OCI runtime-spec types and nook's other lean packages.
package monitor
