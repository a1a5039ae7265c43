//go:build !linux

package childproc

// protect has nothing to do: on Windows only administrators and the user's
// own processes at the same or higher integrity can read its memory, which
// no per-process switch narrows further.
func protect() error { return nil }
