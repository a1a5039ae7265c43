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
// Each configured user or group then gets (A;;0x12008b;;;<SID>):
// FILE_GENERIC_READ (0x120089) and FILE_WRITE_DATA (0x2), what a client
// needs to send requests and read answers, and nothing more. Not generic
// write: on a pipe FILE_GENERIC_WRITE includes FILE_APPEND_DATA, which is
// also FILE_CREATE_PIPE_INSTANCE ("Named Pipe Security and Access Rights"),
// the right to create server instances of the pipe, and with it those
// principals could pose as the agent to the next client. Create-instance
// stays with SYSTEM (the service) and Administrators, through GA. (The
// pipe's place under ProtectedPrefix\Administrators also keeps others from
// creating instances; the DACL no longer depends on it.) Clients therefore
// open the pipe for GENERIC_READ | FILE_WRITE_DATA (pipeClientAccess), not
// GENERIC_WRITE, which the DACL would refuse them.
const pipeSDDLBase = "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)"

// Access masks of the pipe's DACL and of its clients (winnt.h).
const (
	fileGenericRead        = 0x00120089 // FILE_GENERIC_READ
	fileWriteData          = 0x00000002 // FILE_WRITE_DATA
	fileAppendData         = 0x00000004 // FILE_APPEND_DATA = FILE_CREATE_PIPE_INSTANCE
	fileWriteAttributes    = 0x00000100 // FILE_WRITE_ATTRIBUTES
	genericRead            = 0x80000000 // GENERIC_READ
	clientAccessMask       = fileGenericRead | fileWriteData
	clientAccessMaskSDDL   = "0x12008b"
	pipeClientAccess       = genericRead | fileWriteData
	fileCreatePipeInstance = fileAppendData
)

// pipeSDDLFor is pipeSDDLBase with read and data-write (never
// create-instance) for each SID string.
func pipeSDDLFor(sids []string) string {
	var b strings.Builder
	b.WriteString(pipeSDDLBase)
	for _, sid := range sids {
		b.WriteString("(A;;" + clientAccessMaskSDDL + ";;;" + sid + ")")
	}
	return b.String()
}

// devPipeSDDLFor is dev mode's descriptor: NETWORK denied, and only the user
// who started the agent (sid) allowed.
func devPipeSDDLFor(sid string) string {
	return "D:P(D;;GA;;;NU)(A;;GA;;;" + sid + ")"
}
