package keystore

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Backends are the names keystore.backend may take in the config file.
func Backends() []string {
	return []string{BackendAuto, BackendTPM, BackendFile, BackendCNG, BackendMemory}
}

// Backend names, as used in the config file and in Info.Backend.
const (
	BackendAuto   = "auto"
	BackendTPM    = "tpm"
	BackendFile   = "file"
	BackendCNG    = "cng"
	BackendMemory = "memory"

	// InfoCNGPlatform and InfoCNGSoftware are the Info.Backend values of the
	// CNG backend: with the Microsoft Platform Crypto Provider (TPM) or the
	// Microsoft Software Key Storage Provider.
	InfoCNGPlatform = "cng-platform"
	InfoCNGSoftware = "cng-software"
)

// TPMFileExt is the extension of the tpm backend's blob files.
const TPMFileExt = ".tpmkey"

// DefaultTPMDevice is the Linux TPM resource manager.
const DefaultTPMDevice = "/dev/tpmrm0"

// Options select and configure a backend.
type Options struct {
	// Backend is auto, tpm, file, cng or memory. Empty means auto.
	//   - auto on Linux: tpm if the TPM device can be opened and answers,
	//     else file.
	//   - auto on Windows: cng, with the Platform Crypto Provider if present,
	//     else the Software Key Storage Provider.
	//   - auto elsewhere: file.
	Backend string
	// Dir holds the key files (file backend) or the TPM-wrapped key blobs
	// (tpm backend). It is created private (0700) if missing. Unused by cng
	// and memory.
	Dir string
	// TPMDevice is where the TPM is, for the tpm backend:
	//   - a device path, default /dev/tpmrm0 (use the resource manager, not
	//     /dev/tpm0, so the agent can share the TPM);
	//   - "tcp://HOST:PORT": the server socket of a swtpm started with
	//     --server type=tcp (tests, development);
	//   - "unix:///PATH": the server socket of a swtpm started with
	//     --server type=unixio.
	TPMDevice string
}

// Open returns the store selected by opts. The caller closes it.
func Open(opts Options) (Store, error) {
	b := strings.ToLower(strings.TrimSpace(opts.Backend))
	if b == "" {
		b = BackendAuto
	}
	if opts.TPMDevice == "" {
		opts.TPMDevice = DefaultTPMDevice
	}
	var (
		s   Store
		err error
	)
	switch b {
	case BackendAuto:
		s, err = openAuto(opts)
	case BackendTPM:
		s, err = openTPM(opts)
	case BackendFile:
		s, err = OpenFileStore(opts.Dir)
	case BackendCNG:
		s, err = openCNG(opts)
	case BackendMemory:
		s = NewMemoryStore()
	default:
		return nil, fmt.Errorf("keystore.Open: unknown backend %q (want auto, tpm, file, cng or memory)", opts.Backend)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore.Open(%s): %w", b, err)
	}
	return s, nil
}

// ErrUnsupported is returned for a backend this OS does not have, or an
// operation a backend cannot do. It wraps errors.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("keystore: %w", errors.ErrUnsupported)

// validName accepts key names that are safe as file names and CNG key names:
// 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckKeyName is the one rule for a machine key's name (config's
// keystore.key_name): the name itself and the name a rotation gives its
// pending key (PendingName) must both be valid key names. Config validation
// and doctor call it, so they refuse exactly what the key store refuses.
func CheckKeyName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkName(PendingName(name)); err != nil {
		return fmt.Errorf("keystore: key name %q is too long: a rotation names its new key %q (at most 64 characters)", name, PendingName(name))
	}
	return nil
}

func checkName(name string) error {
	if !validName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("keystore: invalid key name %q (use 1-64 letters, digits, '.', '_', '-')", name)
	}
	return nil
}
