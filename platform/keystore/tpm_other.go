//go:build !linux

package keystore

import "fmt"

func openTPM(Options) (Store, error) {
	return nil, fmt.Errorf("the tpm backend is Linux only (on Windows use cng): %w", ErrUnsupported)
}
