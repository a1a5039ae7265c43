// Package agenttest is what tests (and the bench and soak harnesses) need to
// stand in for the world around the agent: the portal that seals, signs and
// drops deliveries into an inbox (Portal), a fake CCP server started for one
// test (StartCCP), an in-memory CCP for a Resolver (Fetcher), a published
// state to resolve against (State), a log sink safe for concurrent writes
// (LockedBuffer), and the scan for the planted secrets that no log or file
// may hold (Needles, NoSecrets). One helper per kind of fixture, not a copy
// per package.
package agenttest
