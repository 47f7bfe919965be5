// Package netuser is nook's user-defined networks: their records, the keeper process that holds
// a network's bridge (nook-runtime netns-keeper), and a container's membership (a veth pair,
// an address, its name in every member's /etc/hosts). See docs/decisions.md, "User-defined
// networks".
package netuser
