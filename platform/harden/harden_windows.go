package harden

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	modkernel32                    = windows.NewLazySystemDLL("kernel32.dll")
	procSetProcessMitigationPolicy = modkernel32.NewProc("SetProcessMitigationPolicy")
)

// PROCESS_MITIGATION_POLICY values (winnt.h).
const (
	processExtensionPointDisablePolicy = 6
	processImageLoadPolicy             = 10
)

// Flag bits of PROCESS_MITIGATION_EXTENSION_POINT_DISABLE_POLICY and
// PROCESS_MITIGATION_IMAGE_LOAD_POLICY; each policy is one DWORD of flags.
const (
	disableExtensionPoints    = 1 << 0
	noRemoteImages            = 1 << 0
	noLowMandatoryLabelImages = 1 << 1
)

func setMitigation(policy uint32, flags uint32) error {
	if err := procSetProcessMitigationPolicy.Find(); err != nil {
		return err
	}
	r, _, err := procSetProcessMitigationPolicy.Call(uintptr(policy), uintptr(unsafe.Pointer(&flags)), unsafe.Sizeof(flags))
	if r == 0 {
		return err
	}
	return nil
}

// Dynamic-code, strict-handle and signature policies are left alone: they
// can break the Go runtime or the system DLLs it loads. There is no
// process-wide equivalent of mlockall: VirtualLock works on ranges and is
// bounded by the working-set size.
func apply() Report {
	var r Report
	windows.SetErrorMode(windows.SEM_FAILCRITICALERRORS | windows.SEM_NOGPFAULTERRORBOX | windows.SEM_NOOPENFILEERRORBOX)
	r.Measures = append(r.Measures, Measure{Name: NoErrorUI, Applied: true, Detail: "SetErrorMode(SEM_FAILCRITICALERRORS|SEM_NOGPFAULTERRORBOX|SEM_NOOPENFILEERRORBOX)"})

	err := setMitigation(processExtensionPointDisablePolicy, disableExtensionPoints)
	r.Measures = append(r.Measures, measure(NoExtPoints, wrap("SetProcessMitigationPolicy(ExtensionPointDisable)", err), "AppInit DLLs and other legacy extension points disabled"))

	err = setMitigation(processImageLoadPolicy, noRemoteImages|noLowMandatoryLabelImages)
	r.Measures = append(r.Measures, measure(NoRemoteImage, wrap("SetProcessMitigationPolicy(ImageLoad)", err), "no DLLs from remote shares or with a low integrity label"))

	r.Measures = append(r.Measures, Measure{Name: MemoryLocked, Detail: "not available on Windows: no process-wide mlockall"})
	return r
}
