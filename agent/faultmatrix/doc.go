// Package faultmatrix is the agent's fault matrix: one test per thing that
// goes wrong in the field (CCP down, slow or failing, bad certificates,
// corrupt or replayed deliveries, a full disk, an unusable key store, a
// flooded socket, a kill in the middle of an apply), each run in-process
// against the real parts (daemon.Run, the fake CCP, the local socket, real
// files) and asserting what the agent actually does: the error class, the HTTP
// status, the state it keeps.
//
// The table in the README is generated from the tests, not typed by hand:
//
//	FAULTMATRIX_UPDATE=1 go test ./agent/faultmatrix/
//
// rewrites the lines between the "<!-- fault-matrix:begin -->" and
// "<!-- fault-matrix:end -->" markers of README.md at the module root with
// each fault, its expected behaviour, the result of the run and its date.
// Without the markers it writes MATRIX.md in this directory instead. A plain
// `go test` run asserts the rows and writes nothing.
package faultmatrix
