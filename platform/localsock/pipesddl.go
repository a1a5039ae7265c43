package localsock

import "strings"

// The Windows pipe's security descriptors, as text, kept free of Windows
// calls so that they are tested on every platform; pipe_windows.go resolves
// account names to SIDs and hands the result to go-winio.

// pipeSDDLBase is the security descriptor of the agent's pipe, before the
// configured principals are appended:
//
//	D:P          a protected DACL: nothing is inherited.
//	(D;;GA;;;NU) deny everything to NETWORK logons, so a caller coming in
//	             over SMB is refused even if it is otherwise allowed. Deny
//	             entries come first so that they win. (go-winio also creates
//	             the pipe with FILE_PIPE_REJECT_REMOTE_CLIENTS.)
//	(A;;GA;;;SY) allow LocalSystem, which the agent service runs as.
//	(A;;GA;;;BA) allow the built-in Administrators.
//
// Each configured user or group then gets (A;;GRGW;;;<SID>): read and write
// on the pipe, which is what a client opening it for GENERIC_READ |
// GENERIC_WRITE asks for. For a pipe, FILE_GENERIC_WRITE includes
// FILE_APPEND_DATA, which is also FILE_CREATE_PIPE_INSTANCE ("Named Pipe
// Security and Access Rights"), so the DACL alone would let those principals
// create server instances of the pipe. What stops them is the pipe's place
// under ProtectedPrefix\Administrators, where Windows lets only
// administrators (and SYSTEM) create pipes; that is why Listen insists on
// the prefix outside dev mode, and why dev mode's descriptor grants nobody
// but the user who runs the agent.
const pipeSDDLBase = "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"

// pipeSDDLFor is pipeSDDLBase with read and write for each SID string.
func pipeSDDLFor(sids []string) string {
	var b strings.Builder
	b.WriteString(pipeSDDLBase)
	for _, sid := range sids {
		b.WriteString("(A;;GRGW;;;" + sid + ")")
	}
	return b.String()
}

// devPipeSDDLFor is dev mode's descriptor: NETWORK denied, and only the user
// who started the agent (sid) allowed.
func devPipeSDDLFor(sid string) string {
	return "D:P(D;;GA;;;NU)(A;;GA;;;" + sid + ")"
}
