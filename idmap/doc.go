// Package idmap finds the current user's subordinate IDs, computes the user-namespace ID mapping
// nook uses, and writes it for a child process through newuidmap/newgidmap or, in single-ID
// mode, directly.
package idmap
