//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "soak: Linux only (it reads /proc and runs callers as other users)")
	os.Exit(2)
}
