// Package userns creates nook's user namespace: the parent side clones the lean nook-runtime
// shim into new user and mount namespaces and maps it with idmap; the child side waits for the
// maps and executes the nook engine inside, where it is root with full capabilities.
package userns
