package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// CNG provider names (MS_PLATFORM_CRYPTO_PROVIDER, MS_KEY_STORAGE_PROVIDER).
const (
	cngPlatformProvider = "Microsoft Platform Crypto Provider"
	cngSoftwareProvider = "Microsoft Software Key Storage Provider"
)

// CNGProviderFile, in the key store's directory, records which CNG provider
// holds the machine key. It is written when the first key is created and
// makes the choice sticky: a TPM provider that fails to open one day must
// not make the agent quietly look in (and create a new key in) the software
// provider.
const CNGProviderFile = "cng-provider"

// cngPlan is which providers to try, in order, and whether a provider other
// than the first may still be chosen when creating the first key.
type cngPlan struct {
	providers []string
	// sticky: the providers were recorded; a failure is an error, never a
	// reason to try another one.
	sticky bool
}

// planCNG decides from the recorded provider file's content (or the error
// reading it) which providers the store may use.
func planCNG(recorded []byte, readErr error) (cngPlan, error) {
	if readErr != nil {
		if errors.Is(readErr, fs.ErrNotExist) {
			return cngPlan{providers: []string{cngPlatformProvider, cngSoftwareProvider}}, nil
		}
		return cngPlan{}, fmt.Errorf("keystore: reading the recorded CNG provider: %w", readErr)
	}
	name := strings.TrimSpace(string(recorded))
	switch name {
	case cngPlatformProvider, cngSoftwareProvider:
		return cngPlan{providers: []string{name}, sticky: true}, nil
	}
	return cngPlan{}, fmt.Errorf("keystore: %s names an unknown CNG provider %q", CNGProviderFile, name)
}

func cngProviderPath(dir string) string { return filepath.Join(dir, CNGProviderFile) }
