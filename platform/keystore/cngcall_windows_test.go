//go:build windows

package keystore

import (
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// osVersionInfo is OSVERSIONINFOW, which RtlGetVersion fills.
type osVersionInfo struct {
	size, major, minor, build, platformID uint32
	csdVersion                            [128]uint16
}

var procRtlGetVersion = windows.NewLazySystemDLL("ntdll.dll").NewProc("RtlGetVersion")

// TestCallOutParamsSurviveStackGrowth is the regression test of call's
// //go:uintptrescapes. Each call is made from a fresh goroutine (a small
// stack) after a recursion of a different depth, so that at some depths the
// stack has to grow inside call, after the caller converted its
// out-parameter's address to a uintptr. Without the directive the
// out-parameter stays on the stack, the stack is copied, and the API writes
// into the old copy: the caller reads back zeros. RtlGetVersion (NTSTATUS 0
// on success, like a SECURITY_STATUS) runs under Wine as well as on
// Windows, and its answer is known from windows.RtlGetVersion; ncrypt's own
// NCryptOpenStorageProvider is checked for a non-zero handle the same way.
func TestCallOutParamsSurviveStackGrowth(t *testing.T) {
	want := windows.RtlGetVersion()
	if want.MajorVersion == 0 {
		t.Fatal("RtlGetVersion gives major version 0")
	}
	var stale, calls atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for depth := 0; depth < 1500; depth++ {
				done := make(chan bool, 1)
				go func() { done <- growThenCall(depth, want.MajorVersion, want.BuildNumber) }()
				if !<-done {
					stale.Add(1)
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := stale.Load(); n > 0 {
		t.Fatalf("%d of %d calls read back a stale out-parameter after the stack grew", n, calls.Load())
	}
	for i := 0; i < 200; i++ {
		done := make(chan bool, 1)
		go func() { done <- growThenOpenProvider(i) }()
		if !<-done {
			t.Fatalf("NCryptOpenStorageProvider at depth %d: zero handle", i)
		}
	}
}

//go:noinline
func growThenCall(depth int, major, build uint32) bool {
	if depth > 0 {
		return growThenCall(depth-1, major, build)
	}
	return versionThroughCall(major, build)
}

// versionThroughCall keeps info on its stack (nothing else takes its
// address) and passes it to call as the ncrypt calls pass their handles.
//
//go:noinline
func versionThroughCall(major, build uint32) bool {
	var info osVersionInfo
	info.size = uint32(unsafe.Sizeof(info))
	if err := call(procRtlGetVersion, "RtlGetVersion", uintptr(unsafe.Pointer(&info))); err != nil {
		return false
	}
	return info.major == major && info.build == build
}

//go:noinline
func growThenOpenProvider(depth int) bool {
	if depth > 0 {
		return growThenOpenProvider(depth - 1)
	}
	return openProviderThroughCall()
}

//go:noinline
func openProviderThroughCall() bool {
	var h ncryptHandle
	if err := call(procOpenStorageProvider, "NCryptOpenStorageProvider",
		uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(utf16(cngSoftwareProvider))), 0); err != nil {
		return true // no ncrypt to speak of: nothing to check here
	}
	defer freeObject(h)
	return h != 0
}
