package localsock

// A named pipe has no directory.
func checkSocketDir(string, []string) error { return nil }
