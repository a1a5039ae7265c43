package service

// CheckServiceFiles is what the agent checks, outside dev mode, of the
// files it trusts before it uses them: the config file, and the log and
// audit files it will write (their folders). On Windows, where the service
// runs as SYSTEM and %ProgramData% lets any user create folders, each must
// be changeable only by SYSTEM, Administrators and TrustedInstaller, and no
// folder above it replaceable by anyone else; otherwise the error says who
// else can. Under Wine, which enforces no ACLs, findings are warnings. On
// other systems it checks nothing here: the Unix log checks live in
// platform/logfile, and the config's directory is root's (/etc).
func CheckServiceFiles(configFile string, logFiles ...string) (warnings []string, err error) {
	return checkServiceFiles(configFile, logFiles)
}
