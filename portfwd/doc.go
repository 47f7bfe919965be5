// Package portfwd publishes a container's ports on the host the way rootlesskit's builtin port
// driver does: it listens on the host and splices each accepted connection to a socket made
// inside the container's network namespace, connected to the port on the container's loopback.
package portfwd
