package fsutil

// PrivateSDDL is the security descriptor given to private files and
// directories on Windows: a protected DACL (P: no inherited entries) that
// grants full access (FA) to Local System (SY) and the built-in
// Administrators group (BA), and to no one else. The owner is left to the
// creator (the service runs as SYSTEM). It lives in an OS-neutral file so
// that its text is tested everywhere.
const PrivateSDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
