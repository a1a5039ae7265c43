// Command elevate runs a program with an elevated token, for the steps of
// make test-windows that need an administrator (credagent install, msiexec):
// Wine's default token is an administrator's, but not elevated, and only a
// ShellExecuteEx with the "runas" verb gives an elevated one, as on Windows
// after a UAC prompt.
//
//	elevate.exe PROGRAM ARGS...
//
// If the token is elevated already it runs PROGRAM itself. Otherwise it
// starts itself with "runas", which runs PROGRAM with its output in a file
// (ShellExecuteEx does not pass on standard handles), waits, copies that
// output to its own, and exits with PROGRAM's exit code. The CREDAGENT_
// environment variables are handed to the elevated process on its command
// line, since an elevated process need not inherit its requester's
// environment.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

func main() {
	out := flag.String("out", "", "write PROGRAM's output to this file (set by the unelevated parent)")
	child := flag.Bool("child", false, "started by runas: refuse to run unless elevated")
	flag.Func("env", "set NAME=VALUE for PROGRAM (repeatable)", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("-env %q: want NAME=VALUE", kv)
		}
		return os.Setenv(k, v)
	})
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: elevate.exe PROGRAM ARGS...")
		os.Exit(2)
	}
	if windows.GetCurrentProcessToken().IsElevated() {
		os.Exit(run(flag.Args(), *out))
	}
	if *child {
		fmt.Fprintln(os.Stderr, "elevate: runas gave a token that is not elevated")
		os.Exit(125)
	}
	os.Exit(runas(flag.Args()))
}

// run runs args, with its output to out (or to ours), and returns its exit
// code.
func run(args []string, out string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "elevate:", err)
			return 125
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintln(cmd.Stderr, "elevate:", err)
		return 125
	}
	return 0
}

// shellExecuteInfo is SHELLEXECUTEINFOW.
type shellExecuteInfo struct {
	cbSize        uint32
	fMask         uint32
	hwnd          windows.Handle
	verb          *uint16
	file          *uint16
	parameters    *uint16
	directory     *uint16
	show          int32
	instApp       windows.Handle
	idList        uintptr
	class         *uint16
	keyClass      windows.Handle
	hotKey        uint32
	iconOrMonitor windows.Handle
	process       windows.Handle
}

const (
	seeMaskNoCloseProcess = 0x00000040
	seeMaskNoAsync        = 0x00000100
	seeMaskFlagNoUI       = 0x00000400
)

var procShellExecuteExW = windows.NewLazySystemDLL("shell32.dll").NewProc("ShellExecuteExW")

// runas starts this program again with the runas verb and waits for it.
func runas(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "elevate:", err)
		return 125
	}
	tmp, err := os.CreateTemp("", "elevate-*.out")
	if err != nil {
		fmt.Fprintln(os.Stderr, "elevate:", err)
		return 125
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	params := []string{"-child", "-out", syscall.EscapeArg(tmp.Name())}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CREDAGENT_") {
			params = append(params, "-env", syscall.EscapeArg(kv))
		}
	}
	for _, a := range args {
		params = append(params, syscall.EscapeArg(a))
	}
	cwd, _ := os.Getwd()
	info := shellExecuteInfo{
		fMask:      seeMaskNoCloseProcess | seeMaskNoAsync | seeMaskFlagNoUI,
		verb:       windows.StringToUTF16Ptr("runas"),
		file:       windows.StringToUTF16Ptr(self),
		parameters: windows.StringToUTF16Ptr(strings.Join(params, " ")),
		directory:  windows.StringToUTF16Ptr(cwd),
		show:       windows.SW_HIDE,
	}
	info.cbSize = uint32(unsafe.Sizeof(info))
	if r, _, err := procShellExecuteExW.Call(uintptr(unsafe.Pointer(&info))); r == 0 {
		fmt.Fprintln(os.Stderr, "elevate: ShellExecuteEx runas:", err)
		return 125
	}
	if info.process == 0 {
		fmt.Fprintln(os.Stderr, "elevate: ShellExecuteEx returned no process")
		return 125
	}
	defer windows.CloseHandle(info.process)
	if _, err := windows.WaitForSingleObject(info.process, windows.INFINITE); err != nil {
		fmt.Fprintln(os.Stderr, "elevate: waiting:", err)
		return 125
	}
	var code uint32
	if err := windows.GetExitCodeProcess(info.process, &code); err != nil {
		fmt.Fprintln(os.Stderr, "elevate:", err)
		return 125
	}
	if f, err := os.Open(tmp.Name()); err == nil {
		io.Copy(os.Stdout, f)
		f.Close()
	}
	return int(code)
}
