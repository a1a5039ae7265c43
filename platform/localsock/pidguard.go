package localsock

import "time"

// createdInTime is the Windows PID-reuse rule: the process whose executable
// is reported must have been created no later than the moment the
// connection was accepted (notAfter). A process created later holds a
// recycled PID and cannot be the client. The time is fixed at accept, not
// when the caller is first identified, which the client controls.
func createdInTime(created, notAfter time.Time) bool { return !created.After(notAfter) }
