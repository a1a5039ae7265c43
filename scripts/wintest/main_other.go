//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wintest: runs the Windows build under Wine on Linux only")
	os.Exit(2)
}
