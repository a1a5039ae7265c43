// Package agent is the root of the credential agent's own packages. It holds
// no code: see the subpackages, and README.md for how they fit together.
package agent
