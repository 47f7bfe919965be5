// Package spec builds the OCI runtime spec (config.json) of a rootless
// container with Docker's defaults.
package spec
