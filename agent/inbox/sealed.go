package inbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/credagent/credagent/agent/delivery"
)

// SealedState describes what in stateDir was made for an existing machine
// key: sealed records (applications, group keys) and the registration
// document named registration. It returns "" if there is none. When the
// machine key is missing but this is not "", a new key must not be made
// silently: it would open none of the records, and the portal would go on
// sealing to the lost key. The operator runs `credagent enroll --rotate`.
func SealedState(stateDir, registration string) string {
	var found []string
	for _, k := range []delivery.Kind{delivery.KindApplication, delivery.KindGroupKey} {
		ents, err := os.ReadDir(filepath.Join(stateDir, recordsDir, string(k)))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				found = append(found, fmt.Sprintf("a %s records directory that cannot be read (%v)", k, err))
			}
			continue
		}
		n := 0
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".delivery") {
				n++
			}
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%d sealed %s records", n, k))
		}
	}
	if registration != "" {
		if _, err := os.Lstat(filepath.Join(stateDir, registration)); err == nil {
			found = append(found, "a registration document ("+registration+")")
		}
	}
	return strings.Join(found, " and ")
}

// MissingKeyProblem says why a machine key called name that is missing
// while what (SealedState) exists is not created again: for the agent's
// status, doctor and credagent enroll.
func MissingKeyProblem(name, what string) string {
	return "the machine key " + name + " is missing, but " + what + " exist for a key this machine had: a new key is not created on its own (it would open none of them); run 'credagent enroll --rotate' and register the new key in the portal"
}
