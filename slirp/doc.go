// Package slirp gives a container's network namespace a user-mode network — slirp4netns or pasta,
// started from outside the container against its init's pid — and publishes its ports (package
// portfwd, pasta's own forwarder, or slirp4netns' API socket).
package slirp
