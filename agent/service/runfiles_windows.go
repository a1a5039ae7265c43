package service

import (
	"errors"

	"github.com/credagent/credagent/platform/winver"
)

func checkServiceFiles(configFile string, logFiles []string) (warnings []string, err error) {
	type file struct {
		what, path   string
		mayBeMissing bool
	}
	files := []file{{"the config file", configFile, false}}
	for _, l := range logFiles {
		if l != "" {
			files = append(files, file{"the log file", l, true})
		}
	}
	var errs []error
	for _, f := range files {
		fileAndDir, above, err := pathWriters(f.path, f.mayBeMissing)
		if err == nil {
			err = trustedFileVerdict(f.what, f.path, fileAndDir, above)
		}
		if err == nil {
			continue
		}
		if winver.IsWine() {
			warnings = append(warnings, err.Error()+" (a warning only under Wine, which enforces no ACLs)")
			continue
		}
		errs = append(errs, err)
	}
	return warnings, errors.Join(errs...)
}
