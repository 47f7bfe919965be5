// Package cgroups gives each container a cgroup v2 of its own, with its
// limits, under the subtree a host delegates to the user (a systemd user
// slice), and says clearly why when the host delegates nothing.
package cgroups
