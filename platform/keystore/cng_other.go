//go:build !windows

package keystore

import "fmt"

func openCNG(Options) (Store, error) {
	return nil, fmt.Errorf("the cng backend is Windows only: %w", ErrUnsupported)
}
