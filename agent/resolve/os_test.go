package resolve_test

import "runtime"

var windowsOnly = runtime.GOOS == "windows"
