package harden

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

func apply() Report {
	var r Report

	err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	if err == nil {
		var got unix.Rlimit
		if err = unix.Getrlimit(unix.RLIMIT_CORE, &got); err == nil && (got.Cur != 0 || got.Max != 0) {
			err = fmt.Errorf("RLIMIT_CORE is %d/%d after setting it to 0", got.Cur, got.Max)
		}
	}
	r.Measures = append(r.Measures, measure(NoCoreDumps, wrap("setrlimit(RLIMIT_CORE)", err), "RLIMIT_CORE=0"))

	err = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err == nil {
		var v int
		if v, err = unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err == nil && v != 0 {
			err = fmt.Errorf("PR_GET_DUMPABLE is %d", v)
		}
	}
	r.Measures = append(r.Measures, measure(NotDumpable, wrap("prctl(PR_SET_DUMPABLE)", err),
		"no core dumps, no ptrace or /proc/<pid>/mem access by other users"))

	// MCL_ONFAULT locks pages as they are first touched instead of faulting
	// in every mapping at once: the Go runtime (and the race detector)
	// reserve far more address space than they use, and pre-faulting all of
	// it would waste memory or fail. Every page that ever holds a secret has
	// been touched, so it is locked all the same.
	err = unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	if errors.Is(err, unix.EINVAL) {
		// Kernels before 4.4 have no MCL_ONFAULT.
		err = unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
	}
	switch {
	case errors.Is(err, unix.EPERM):
		err = errors.New("mlockall: not permitted (needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK; set LimitMEMLOCK=infinity in the unit)")
	case errors.Is(err, unix.ENOMEM):
		err = errors.New("mlockall: RLIMIT_MEMLOCK too small (set LimitMEMLOCK=infinity in the unit)")
	default:
		err = wrap("mlockall", err)
	}
	r.Measures = append(r.Measures, measure(MemoryLocked, err, "mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT)"))
	return r
}
