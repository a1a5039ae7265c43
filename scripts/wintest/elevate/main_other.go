//go:build !windows

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "elevate: a Windows program (make test-windows runs it under Wine)")
	os.Exit(2)
}
