package fsutil

// PrivateSDDL is the security descriptor given to private files and
// directories on Windows: a protected DACL (P: no inherited entries) that
// grants full access (FA) to Local System (SY) and the built-in
// Administrators group (BA), and to no one else. The owner is left to the
// creator (the service runs as SYSTEM). It lives in an OS-neutral file so
// that its text is tested everywhere.
const PrivateSDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"

// PrivateSDDLFor is PrivateSDDL with full access also for the account sid,
// or PrivateSDDL itself when sid is empty. Windows uses it for a process
// that is neither SYSTEM nor elevated (dev mode, run by an ordinary user):
// with PrivateSDDL alone such a user could create a file but never read it
// back, since owning a file grants only READ_CONTROL and WRITE_DAC. The
// checks on reading already trust the current account, so the two agree.
// An elevated administrator or SYSTEM passes "": BA and SY cover them, and a
// file naming one administrator's SID would be refused when the service
// (SYSTEM) reads it.
func PrivateSDDLFor(sid string) string {
	if sid == "" || sid == "S-1-5-18" {
		return PrivateSDDL
	}
	return PrivateSDDL + "(A;;FA;;;" + sid + ")"
}
