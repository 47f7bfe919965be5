// Package engine is nook's composition layer: it opens the store, resolves images, keeps
// container records and runs containers by wiring idmap, userns, overlay, spec and runtime
// together. It runs inside nook's user namespace; cmd/nook only parses flags and prints.
package engine
