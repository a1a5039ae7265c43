// Package harden applies process-wide protections for a process that holds
// secrets in memory, and reports which of them are in force.
//
// Linux: no core dumps (RLIMIT_CORE 0), not dumpable (PR_SET_DUMPABLE 0, which
// also stops other non-root users from ptracing the process or reading its
// /proc files), and memory locked against swap (mlockall) where the process
// is allowed to.
//
// Windows: no error dialogs or Windows Error Reporting UI (SetErrorMode), and
// the process mitigation policies that are safe for a Go program: no legacy
// extension-point DLLs, no images loaded from remote shares or with a low
// integrity label.
//
// A measure that cannot be applied is reported, never fatal: the agent runs,
// and doctor and /v1/status say what is missing.
package harden

import "fmt"

// Measure is one protection and whether it is in force.
type Measure struct {
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
	// Detail explains a failure, or how the measure was applied.
	Detail string `json:"detail,omitempty"`
}

// Report lists every measure Apply attempted, in order.
type Report struct {
	Measures []Measure `json:"measures"`
}

// Missing returns the names of the measures not in force.
func (r Report) Missing() []string {
	var out []string
	for _, m := range r.Measures {
		if !m.Applied {
			out = append(out, m.Name)
		}
	}
	return out
}

// Measure names, the same on every OS where they apply.
const (
	NoCoreDumps   = "no_core_dumps"
	NotDumpable   = "not_dumpable"
	MemoryLocked  = "memory_locked"
	NoErrorUI     = "no_error_ui"
	NoExtPoints   = "no_extension_point_dlls"
	NoRemoteImage = "no_remote_or_low_label_images"
)

// Apply applies every measure for this OS and reports the outcome. Call it
// once, early in the process, before secrets are loaded.
func Apply() Report { return apply() }

func measure(name string, err error, okDetail string) Measure {
	if err != nil {
		return Measure{Name: name, Detail: err.Error()}
	}
	return Measure{Name: name, Applied: true, Detail: okDetail}
}

// wrap names the call that failed; nil stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
