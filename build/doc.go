// Package build is the Dockerfile half of `nook build`: it parses a Dockerfile into stages and
// steps, applies the instructions that only change an image's configuration, expands build
// arguments and variables, reads the build context (.dockerignore, globs, containment) and
// computes the layer cache's keys. It touches no store; the engine runs the steps.
package build
