package fsutil

// PrivateSDDL is the security descriptor given to private files and
// directories on Windows: a protected DACL (P: no inherited entries) that
// grants full access (FA) to Local System (SY) and the built-in
// Administrators group (BA), and to no one else. It lives in an OS-neutral
// file so that its text is tested everywhere.
const PrivateSDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"

// PrivateOwner is the owner given to private files and directories made by
// SYSTEM or an elevated administrator: BUILTIN\Administrators. Left to the
// creator, the owner depends on policy ("Default owner for objects created
// by members of the Administrators group"), and where that is the object
// creator, a file written by an elevated `credagent enroll` would belong to
// that administrator's own SID, which the SYSTEM service's checks refuse.
// An elevated token holds Administrators with SE_GROUP_OWNER, so it may
// name it as owner.
const PrivateOwner = "O:BA"

// PrivateSDDLFor is PrivateSDDL with full access also for the account sid,
// or PrivateSDDL itself when sid is empty. Windows uses it for a process
// that is neither SYSTEM nor elevated (dev mode, run by an ordinary user):
// with PrivateSDDL alone such a user could create a file but never read it
// back, since owning a file grants only READ_CONTROL and WRITE_DAC. The
// checks on reading already trust the current account, so the two agree.
// An elevated administrator or SYSTEM passes "": BA and SY cover them, and a
// file naming one administrator's SID would be refused when the service
// (SYSTEM) reads it; their files get PrivateOwner as owner too.
func PrivateSDDLFor(sid string) string {
	if sid == "" || sid == "S-1-5-18" {
		return PrivateOwner + PrivateSDDL
	}
	return PrivateSDDL + "(A;;FA;;;" + sid + ")"
}
