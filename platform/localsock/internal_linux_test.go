package localsock

import (
	"os"
	"testing"
)

func TestProcReaders(t *testing.T) {
	a, err := startTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("startTime: %d, %v", a, err)
	}
	if b, _ := startTime(os.Getpid()); a != b {
		t.Errorf("start time moved: %d then %d", a, b)
	}
	p, err := readProc(os.Getpid(), uint32(os.Geteuid()))
	if err != nil || p.exe == "" {
		t.Fatalf("readProc: %+v, %v", p, err)
	}
	// A different uid than the process's is a recycled pid.
	if _, err := readProc(os.Getpid(), uint32(os.Geteuid())+1); err == nil {
		t.Error("readProc accepted a uid mismatch")
	}
	if _, err := startTime(1 << 30); err == nil {
		t.Error("startTime of a missing pid succeeded")
	}
}
