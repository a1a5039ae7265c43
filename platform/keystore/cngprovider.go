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
	// why is the recorded reason the key is in the software provider when
	// the TPM's was tried first (status and doctor show it).
	why string
}

// cngWhyPrefix starts the optional second line of CNGProviderFile.
const cngWhyPrefix = "why: "

// planCNG decides from the recorded provider file's content (or the error
// reading it) which providers the store may use. The file is the provider's
// name on the first line and, optionally, "why: <reason>" on the second.
func planCNG(recorded []byte, readErr error) (cngPlan, error) {
	if readErr != nil {
		if errors.Is(readErr, fs.ErrNotExist) {
			return cngPlan{providers: []string{cngPlatformProvider, cngSoftwareProvider}}, nil
		}
		return cngPlan{}, fmt.Errorf("keystore: reading the recorded CNG provider: %w", readErr)
	}
	lines := strings.Split(strings.TrimSpace(string(recorded)), "\n")
	name := strings.TrimSpace(lines[0])
	var why string
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, cngWhyPrefix) {
			return cngPlan{}, fmt.Errorf("keystore: %s: unexpected line %q", CNGProviderFile, l)
		}
		why = strings.TrimPrefix(l, cngWhyPrefix)
	}
	switch name {
	case cngPlatformProvider, cngSoftwareProvider:
		return cngPlan{providers: []string{name}, sticky: true, why: why}, nil
	}
	return cngPlan{}, fmt.Errorf("keystore: %s names an unknown CNG provider %q", CNGProviderFile, name)
}

// cngProviderRecord is CNGProviderFile's content for provider, with the
// reason it was chosen when that is worth telling.
func cngProviderRecord(provider, why string) []byte {
	why = strings.Join(strings.Fields(why), " ") // one line
	if why == "" {
		return []byte(provider + "\n")
	}
	return []byte(provider + "\n" + cngWhyPrefix + why + "\n")
}

// cngCreateFallback decides, when creating the first key in the TPM's
// provider failed with err, whether to move to the software provider. Only
// "this provider cannot do it" (ErrProviderUnusable: cngUnsupported, or a
// wrong known answer) moves; a transient TPM error (busy, locked out, TBS
// starting) must not send a machine's key to software for good, and
// anything else is an error to see. firstKey is false once the store holds
// a key, and sticky once the provider is recorded.
func cngCreateFallback(err error, sticky, firstKey bool) bool {
	return err != nil && !sticky && firstKey && errors.Is(err, ErrProviderUnusable)
}

func cngProviderPath(dir string) string { return filepath.Join(dir, CNGProviderFile) }
