package main

import (
	"fmt"
	"os"
	"strings"
)

// readAtFile replaces a flag value "@FILE" with the file's content.
func readAtFile(v *string) error {
	if name, ok := strings.CutPrefix(*v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		*v = string(b)
	}
	return nil
}
